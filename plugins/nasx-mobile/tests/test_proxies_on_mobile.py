"""Every installed proxy scores mobile networks: two sampled networks of a narrow space at 64x64 (own data), small
batches. This checks that each proxy runs on these networks and gives a number, not what it measures."""

import math
import random

import pytest

from nasx.data import synthetic_batch
from nasx.errors import NasxError
from nasx.evaluator import Evaluator
from nasx.interfaces import Task
from nasx.plugins import Plugins
from nasx_mobile.space import MobileSpace

SMALL = {"batch_size": 8, "samples": 50, "repeats": 1}
# per proxy: the NTK of 8 images is often singular; epsilon needs its constant pair on this space
OPTIONS = {"ntk": {"batch_size": 16}, "epsilon": {"weights": "0.01,1"}}


def test_every_installed_proxy_scores_mobile_networks():
    plugins = Plugins()
    names = plugins.names("proxy")
    assert {"naswot", "logsynflow", "skip", "synflow", "snip", "grasp", "ntk", "zen", "az_expressivity"} <= set(names)
    space = MobileSpace(width_mult=0.25).for_data(Task("small", 10, (3, 64, 64)))
    proxies = []
    for name in names:
        cls = plugins.get("proxy", name)
        proxies.append(cls(**{**{k: v for k, v in SMALL.items() if k in cls.defaults}, **OPTIONS.get(name, {})}))
    evaluator = Evaluator(space, proxies, synthetic_batch(space.input_shape, space.num_classes), init_seed=0)
    rng = random.Random(0)
    for genotype in (space.sample(rng), space.sample(rng)):
        evaluation = evaluator.evaluate(genotype)
        assert set(evaluation.scores) == set(names)
        assert all(math.isfinite(score) for score in evaluation.scores.values()), evaluation.scores
        assert evaluation.scores["skip"] == 2.0  # each residual bypasses a block's three convolutions
        assert evaluation.scores["params"] == space.cost(genotype).params_m


@pytest.mark.parametrize("name, options, shape, message", [
    ("epsilon", {}, (3, 64, 64), "give a pair, e.g. -o epsilon.weights=0.01,1"),
    ("gradsign", {}, (3, 32, 32), "at 32x32 the last stages' 1x1 feature maps"),
    ("az_trainability", {}, (3, 40, 40), "40x40 is not a multiple of 32"),
])
def test_proxies_undefined_here_are_refused_in_one_line(name, options, shape, message):
    space = MobileSpace().for_data(Task("data", 10, shape))
    proxy = Plugins().get("proxy", name)(**options)
    with pytest.raises(NasxError, match=f"proxy '{name}' is not defined for space 'mobile': .*{message}"):
        Evaluator(space, [proxy], synthetic_batch(space.input_shape, space.num_classes), init_seed=0)
