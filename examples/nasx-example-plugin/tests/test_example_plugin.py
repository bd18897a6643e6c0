"""The example plugin is installed into a scratch folder and found through its entry point, end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasx.testing.contracts import ProxyContract

HERE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(HERE)],
        check=True,
    )
    return target


def nasx(site, *args, **environment):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), **environment}
    return subprocess.run([sys.executable, "-m", "nasx_cli.main", *args], capture_output=True, text=True, env=env)


def test_listed_with_its_distribution(site):
    done = nasx(site, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(done.stdout)}
    assert rows[("proxy", "example-l2norm")]["distribution"] == "nasx-example-plugin"
    assert rows[("proxy", "example-l2norm")]["plugin"] == "proxy.example-l2norm"


def test_usable_in_a_search(site, tmp_path):
    out = tmp_path / "result.json"
    done = nasx(site, "run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "example-l2norm",
                "--search", "random", "--max-evals", "3", "--no-cache", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["evaluated"] == 3 and result["scores"]["example-l2norm"] > 0


def test_can_be_blocked(site):
    """Found without the block (so its absence is the block's doing), gone with it, by entry point or by name."""
    found = nasx(site, "plugins", "--json")
    assert found.returncode == 0, found.stderr
    assert "example-l2norm" in {r["name"] for r in json.loads(found.stdout)}
    for blocked in ("proxy.example-l2norm", "example-l2norm"):
        done = nasx(site, "plugins", "--json", NASX_BLOCK_PLUGINS=blocked)
        assert done.returncode == 0, done.stderr
        names = {r["name"] for r in json.loads(done.stdout)}
        assert "example-l2norm" not in names and "naswot" in names, blocked  # only the blocked plugin is gone


@pytest.fixture(scope="module")
def l2norm_class():
    """The proxy class from the source folder (the plugin is not installed in the test environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(HERE))
        from nasx_example.l2norm import L2Norm
    return L2Norm


class TestL2NormContract(ProxyContract):
    @pytest.fixture
    def proxy(self, l2norm_class):
        return l2norm_class()

    @pytest.fixture
    def space(self):
        from nasx_nats.tss import NatsTopologySpace

        return NatsTopologySpace(dataset="cifar10")

    @pytest.fixture
    def batch(self):
        return None  # the proxy needs no data
