"""The grids shipped in benchmarks/grids describe runs of installed components (they are not run here)."""

from pathlib import Path

import pytest

from nasx.plugins import Plugins
from nasx_cli.experiment import expand, load_grid

GRIDS = sorted((Path(__file__).parent.parent / "benchmarks" / "grids").glob("*.toml"))


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_grid_expands_to_runs_of_installed_components(path):
    grid = load_grid(str(path))
    runs = expand(grid)
    assert runs
    plugins = Plugins()
    plugins.get("space", grid["space"])
    for run in runs:
        plugins.get("searcher", run["search"])
        plugins.get("combiner", run["combiner"])
        for proxy in run["proxies"]:
            plugins.get("proxy", proxy)


def test_there_are_grids():
    assert len(GRIDS) >= 4
