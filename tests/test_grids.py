"""The grids shipped in benchmarks/grids describe runs of installed components (they are not run here)."""

from pathlib import Path

import pytest

from nasx._build import DEFAULT_COMBINER
from nasx.errors import NasxError
from nasx.grid import expand, images_for, load_grid
from nasx.plugins import Plugins

GRIDS = sorted((Path(__file__).parent.parent / "benchmarks" / "grids").glob("*.toml"))


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_grid_expands_to_runs_of_installed_components(path):
    grid = load_grid(str(path))
    runs = expand(grid)
    for dataset in grid["datasets"]:
        images_for(grid, dataset)
    assert runs
    plugins = Plugins()
    plugins.get("space", grid["space"])
    for run in runs:
        plugins.get("searcher", run["search"])
        plugins.get("combiner", run["combiner"] or DEFAULT_COMBINER)  # None: the default
        for proxy in run["proxies"]:
            plugins.get("proxy", proxy)


def test_there_are_grids():
    assert len(GRIDS) >= 4


def test_images_per_dataset(monkeypatch):
    monkeypatch.setenv("NASX_DATA", "/data")
    grid = {"datasets": ["cifar10", "cifar100"], "images": {"cifar10": "$NASX_DATA/c10.npz"}}
    assert images_for(grid, "cifar10") == "/data/c10.npz"
    assert images_for(grid, "cifar100") is None
    assert images_for({"datasets": ["cifar100"], "images": "x.npz"}, "cifar100") == "x.npz"


@pytest.mark.parametrize("images, message", [
    ({"cifar1O": "x.npz"}, "'cifar1O' is not one of the grid's datasets"),
    ("$NASX_UNSET_FOR_TEST/x.npz", "environment variable that is not set"),
    (3, "expected a path"),
])
def test_bad_images_are_refused(monkeypatch, images, message):
    monkeypatch.delenv("NASX_UNSET_FOR_TEST", raising=False)
    with pytest.raises(NasxError, match=message):
        images_for({"datasets": ["cifar10"], "images": images}, "cifar10")
