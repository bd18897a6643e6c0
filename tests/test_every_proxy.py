"""The proxy contract over every installed proxy, on every installed space that builds networks and defines the
proxy there (``space.proxy_problem``): a proxy or space installed later is covered without editing a list.

Each pair gets the inputs its proxy needs (the space's own batch, e.g. token ids, else synthetic images), kept
small for time: a few examples, one initialisation, a few sampled cells, and the smaller networks a space offers.
"""

from __future__ import annotations

import functools

import pytest

from nasx._build import input_batch
from nasx.plugins import Plugins
from nasx.testing.contracts import ProxyContract

#: examples each proxy takes from the batch (where it has a ``batch_size`` option): two is the fewest that every
#: proxy's computation over a batch accepts (a correlation, a kernel, two mini-batches for zico)
BATCH_SIZE = 2
#: proxies that need more: epsilon min-max normalises its outputs over the batch and drops the zero, so two images
#: leave one output per weight, often NaN; zico splits its batch in two, and one image alone in training mode gives
#: mobile's last 1x1 feature maps (at 32x32) one value per BatchNorm channel
LARGER_BATCH = {"epsilon": 8, "zico": 4}
#: other options that only make a proxy slower (more samples, more repeats), never different in kind
QUICK = {"repeats": 1, "samples": 64}
#: smaller networks where a space offers them as options (darts: the proxies' network is already its small one;
#: mobile: a quarter of its width at CIFAR's 32x32 instead of ImageNet's 224x224 with 1000 classes)
SPACE_OPTIONS = {"darts": {"proxy_channels": 8, "proxy_layers": 5},
                 "mobile": {"dataset": "cifar10", "width_mult": 0.25}}


def installed(kind: str) -> list[str]:
    return sorted(Plugins().names(kind))


@functools.lru_cache(maxsize=None)
def space_named(name: str):
    space = Plugins().get("space", name)(**SPACE_OPTIONS.get(name, {}))
    import random

    try:
        space.build(space.sample(random.Random(0)))
    except NotImplementedError as reason:
        return space, f"space '{name}' builds no networks: {reason}"
    return space, None


@functools.lru_cache(maxsize=None)
def batch_for(space_name: str):
    space, _ = space_named(space_name)
    return input_batch(space, [_NeedsData()], None).take(max(BATCH_SIZE, *LARGER_BATCH.values()))


class _NeedsData:
    needs_data = True


@pytest.fixture(params=installed("proxy"))
def proxy_name(request):
    return request.param


@pytest.fixture(params=installed("space"))
def space_name(request):
    return request.param


class TestEveryInstalledProxy(ProxyContract):
    """Checks that need a space run once per (proxy, space) pair; the others once per proxy."""

    finite_samples = 2

    @pytest.fixture
    def proxy(self, proxy_name):
        cls = Plugins().get("proxy", proxy_name)
        quick = {k: v for k, v in QUICK.items() if k in cls.defaults}
        if "batch_size" in cls.defaults:
            quick["batch_size"] = LARGER_BATCH.get(proxy_name, BATCH_SIZE)
        return cls(**quick)

    @pytest.fixture
    def space(self, space_name, proxy):
        space, no_networks = space_named(space_name)
        if no_networks and proxy.needs_network:
            pytest.skip(no_networks)
        problem = space.proxy_problem(proxy)
        if problem:
            pytest.skip(f"proxy '{proxy.name}' is not defined on '{space_name}': {problem}")
        return space

    @pytest.fixture
    def batch(self, proxy, space, space_name):
        return batch_for(space_name) if proxy.needs_data else None


def test_the_matrix_is_built_from_the_installed_plugins():
    """A plugin that failed to load would silently shrink the matrix: the built-in distributions are all in it."""
    distributions = {info.distribution for info in Plugins().all() if info.kind in ("proxy", "space")}
    assert {"nasx-proxies", "nasx-nats", "nasx-nb101", "nasx-nbnlp", "nasx-darts"} <= distributions
    assert len(installed("proxy")) >= 29 and len(installed("space")) >= 5
