"""The contract suites catch broken components (their checks can fail), and pass a correct torch space."""

import math
import random
import subprocess
import sys

import numpy as np
import pytest

from nasx.interfaces import Cost
from nasx.testing.contracts import CombinerContract, ProxyContract, SpaceContract, SumCombiner
from nasx.testing.toy import BitSpace, OnesProxy


class MethodShapeBits(BitSpace):
    def input_shape(self):  # a method where the interface asks for a property
        return (1, 1, self.length)


class NoClassesBits(BitSpace):
    num_classes = 0


class UnversionedBits(BitSpace):
    version = ""


class ForeignDefaultBits(BitSpace):
    default_dataset = "cifar10"


class ListedDatasetsBits(BitSpace):
    datasets = ["toy"]


@pytest.mark.parametrize(
    "space_class", [MethodShapeBits, NoClassesBits, UnversionedBits, ForeignDefaultBits, ListedDatasetsBits]
)
def test_space_contract_rejects_ill_typed_facts(space_class):
    with pytest.raises(AssertionError):
        SpaceContract().test_declares_well_typed_facts(space_class(dataset="toy"))


class LinearBits(BitSpace):
    """Bits as the input of one linear layer: a space with real networks and an exact parameter count."""

    cost_is_exact = True

    def build(self, genotype):
        import torch

        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(self.length, self.num_classes))

    def cost(self, genotype):
        return Cost(flops_m=float(sum(self.bits(genotype))), params_m=(self.length + 1) * self.num_classes / 1e6)


class MiscountedBits(LinearBits):
    def cost(self, genotype):
        return Cost(flops_m=0.0, params_m=(self.length + 1) * self.num_classes / 1e6 + 1e-6)  # one too many


class WrongLogitsBits(LinearBits):
    def build(self, genotype):
        import torch

        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(self.length, self.num_classes + 1))


class TestLinearBits(SpaceContract):
    @pytest.fixture
    def space(self):
        pytest.importorskip("torch")
        return LinearBits(dataset="toy")


def test_space_contract_checks_the_parameter_count_of_an_exact_cost():
    pytest.importorskip("torch")
    with pytest.raises(AssertionError):
        SpaceContract().test_exact_cost_counts_the_networks_parameters(MiscountedBits(dataset="toy"))


def test_space_contract_checks_the_shape_of_the_logits():
    pytest.importorskip("torch")
    with pytest.raises(AssertionError):
        SpaceContract().test_networks_give_one_logit_per_class(WrongLogitsBits(dataset="toy"))


def test_space_contract_skips_network_checks_for_a_space_without_networks():
    with pytest.raises(pytest.skip.Exception):
        SpaceContract().test_networks_give_one_logit_per_class(BitSpace(dataset="toy"))


class AlwaysNaN(OnesProxy):
    name = "always-nan"

    def score_genotype(self, space, genotype):
        return math.nan


class NaNOnFirstBit(OnesProxy):
    name = "nan-on-first-bit"

    def score_genotype(self, space, genotype):
        return math.nan if space.bits(genotype)[0] else super().score_genotype(space, genotype)


class Noisy(OnesProxy):
    name = "noisy"

    def score_genotype(self, space, genotype):
        return random.random()


def test_proxy_contract_rejects_a_proxy_that_is_never_finite():
    contract, space = ProxyContract(), BitSpace(dataset="toy")
    contract.test_scores_are_floats_and_reproducible(AlwaysNaN(), space, None)  # NaN twice is reproducible
    with pytest.raises(AssertionError):
        contract.test_some_sampled_genotype_scores_finitely(AlwaysNaN(), space, None)


def test_proxy_contract_rejects_a_non_reproducible_proxy():
    with pytest.raises(AssertionError):
        ProxyContract().test_scores_are_floats_and_reproducible(Noisy(), BitSpace(dataset="toy"), None)


class TestProxyNaNOnDegenerateGenotypes(ProxyContract):
    """NaN on some genotypes is allowed."""

    @pytest.fixture
    def proxy(self):
        return NaNOnFirstBit()

    @pytest.fixture
    def space(self):
        return BitSpace(dataset="toy")

    @pytest.fixture
    def batch(self):
        return None


class UnmaskedMaxNormalised:
    """Divides by max |score| including non-finite ones: one NaN or infinity changes every fitness."""

    name = "unmasked"

    def combine(self, scores, higher_is_better):
        values = np.asarray(scores, dtype=float) * np.where(higher_is_better, 1.0, -1.0)
        return (values / np.max(np.abs(values), axis=0)).sum(axis=1)


class DirectionBlind:
    name = "direction-blind"

    def combine(self, scores, higher_is_better):
        return np.nan_to_num(np.asarray(scores, dtype=float), nan=-1e9, posinf=-1e9, neginf=-1e9).sum(axis=1)


class ArgsortAsRank:
    """The classic mistake: argsort gives the order of the rows, not each row's rank."""

    name = "argsort"

    def combine(self, scores, higher_is_better):
        values = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
        return np.argsort(values, axis=0).sum(axis=1).astype(float)


class IntegerRanks:
    name = "integer-ranks"

    def combine(self, scores, higher_is_better):
        return np.argsort(np.argsort(np.asarray(scores)[:, 0]))


class ZeroesNaNInPlace:
    name = "zeroes-nan-in-place"

    def combine(self, scores, higher_is_better):
        scores[~np.isfinite(scores)] = 0.0
        return scores.sum(axis=1)


@pytest.mark.parametrize(
    "combiner, check",
    [
        (UnmaskedMaxNormalised(), "test_non_finite_scores_do_not_poison_others"),
        (SumCombiner(), "test_non_finite_scores_do_not_poison_others"),
        (DirectionBlind(), "test_follows_each_proxys_direction"),
        (ArgsortAsRank(), "test_is_invariant_to_row_order"),
        (IntegerRanks(), "test_gives_one_float_per_row"),
        (ZeroesNaNInPlace(), "test_leaves_its_input_unchanged"),
    ],
)
def test_combiner_contract_rejects_a_broken_combiner(combiner, check):
    with pytest.raises(AssertionError):
        getattr(CombinerContract(), check)(combiner)


def test_contracts_import_without_pytest():
    code = (
        "import sys\n"
        "sys.modules['pytest'] = sys.modules['_pytest'] = None  # makes `import pytest` fail\n"
        "import nasx.testing.contracts, nasx.testing.toy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    blocked = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['pytest'] = None; import pytest"], capture_output=True
    )
    assert blocked.returncode != 0  # the blocking itself works
