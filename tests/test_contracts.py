"""The contract suites catch broken components: every check fails on a component broken in the way it guards
against (kept here, as scikit-learn keeps broken estimators for its estimator checks), and passes a correct one."""

import inspect
import math
import random
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

from nasx import Searcher
from nasx.errors import BudgetExhausted
from nasx.interfaces import Cost
from nasx.testing.contracts import CombinerContract, ProxyContract, SearcherContract, SpaceContract, SumCombiner
from nasx.testing.toy import BitSpace, OnesProxy


def fails(check, *arguments, reason=""):
    """Running ``check`` fails as a test does (an assertion, or pytest's failure), with ``reason`` in its message."""
    with pytest.raises((AssertionError, pytest.fail.Exception)) as failure:
        check(*arguments)
    assert reason in str(failure.value), str(failure.value)


# ---------------------------------------------------------------------------------------------------------------
# spaces


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
    fails(SpaceContract().test_declares_well_typed_facts, space_class(dataset="toy"))


class NamelessBits(BitSpace):
    name = ""


class DuckBits:
    """Every member of a space, but not a nasx.Space (the plugin loader and run_search would refuse it)."""

    name, dataset, datasets = "duck-bits", "toy", ("toy",)


class LossyBits(BitSpace):
    """decode drops the last bit: a genotype does not survive its string."""

    def decode(self, text):
        return super().decode(text[:-1] + "0")


class IdentityKeyBits(BitSpace):
    """key of the object, not of the architecture: a decoded genotype gets another key."""

    def key(self, genotype):
        return str(id(genotype))


class ThawedBits(BitSpace):
    def from_bits(self, bits):
        return nx.DiGraph(super().from_bits(bits))  # an unfrozen copy


class LenientBits(BitSpace):
    """Reads any text: what is not a '1' is a 0, the text is cut or padded to the length."""

    def decode(self, text):
        return self.from_bits(int(c == "1") for c in text[: self.length].ljust(self.length, "0"))


class ValueErrorBits(BitSpace):
    def decode(self, text):
        if set(text) - {"0", "1"}:
            raise ValueError(f"bad bits {text!r}")
        return super().decode(text)


class NaNCostBits(BitSpace):
    def cost(self, genotype):
        return Cost(flops_m=math.nan, params_m=1.0)


class NegativeCostBits(BitSpace):
    def cost(self, genotype):
        return Cost(flops_m=-1.0, params_m=1.0)


class TupleCostBits(BitSpace):
    def cost(self, genotype):
        return (1.0, 1.0)


class FreeBits(BitSpace):
    """A cost model that forgot the parameters."""

    def cost(self, genotype):
        return Cost(flops_m=1.0, params_m=0.0)


class SubsetBits(BitSpace):
    subsets = {"leading-one": "genotypes whose first bit is set"}

    def in_subset(self, subset, genotype):
        self.check_subset(subset)
        return self.bits(genotype)[0] == 1


class UndescribedSubsetBits(SubsetBits):
    subsets = {"leading-one": ""}


class IntegerMembershipBits(SubsetBits):
    def in_subset(self, subset, genotype):
        self.check_subset(subset)
        return self.bits(genotype)[0]  # 0 or 1, not a bool


class UntestedSubsetBits(BitSpace):
    subsets = {"leading-one": "genotypes whose first bit is set"}  # in_subset left to the base class


class AnySubsetBits(SubsetBits):
    def in_subset(self, subset, genotype):
        return self.bits(genotype)[0] == 1  # never checks the name


class GlobalRandomBits(BitSpace):
    def sample(self, rng):
        return super().sample(random)  # the global generator, not the one given


class ConstantBits(BitSpace):
    def sample(self, rng):
        return self.from_bits([1, 0] * (self.length // 2))


class IdleMutationBits(BitSpace):
    def mutate(self, genotype, rng):
        return genotype


class GlobalRandomMutationBits(BitSpace):
    def mutate(self, genotype, rng):
        return super().mutate(genotype, random)


class InventiveCrossoverBits(BitSpace):
    """The child's genes are the parents' genes flipped: none comes from a parent."""

    def crossover(self, first, second, rng):
        return self.from_bits(1 - bit for bit in self.bits(super().crossover(first, second, rng)))


class InPlaceMutationBits(BitSpace):
    """Flips the bit in the parent's own node data (a frozen graph still lets its attribute dicts change)."""

    def mutate(self, genotype, rng):
        position = rng.randrange(self.length)
        genotype.nodes[position]["bit"] = 1 - genotype.nodes[position]["bit"]
        return self.from_bits(self.bits(genotype))


class ThawedMutationBits(BitSpace):
    def mutate(self, genotype, rng):
        return nx.DiGraph(super().mutate(genotype, rng))


class OffByOneBits(BitSpace):
    def index_of(self, genotype):
        return (super().index_of(genotype) + 1) % len(self)


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


class LossyCategoricalBits(BitSpace):
    """Declares one gene per bit, but reads them back in the wrong order."""

    def categorical(self):
        return [(f"bit_{i}", (0, 1)) for i in range(self.length)]

    def to_categorical(self, genotype):
        return {f"bit_{i}": bit for i, bit in enumerate(self.bits(genotype))}

    def from_categorical(self, values):
        return self.from_bits(reversed([values[f"bit_{i}"] for i in range(self.length)]))


class DeafBits(LinearBits):
    """Says it adapts to any data, but its networks keep two classes."""

    adapts_to_data = True


class UnfusedBits(LinearBits):
    """Says it fuses, but its fused network repeats the first genotype's network for every genotype."""

    fusable = True

    def build(self, genotype):  # networks that differ by genotype: the logits scaled by 1 + the number of ones
        import torch

        class Scaled(torch.nn.Sequential):
            def __init__(self, scale, *layers):
                super().__init__(*layers)
                self.scale = scale

            def forward(self, images):
                return super().forward(images) * self.scale

        return Scaled(1.0 + sum(self.bits(genotype)), torch.nn.Flatten(), torch.nn.Linear(self.length, 2))

    def build_fused(self, genotypes):
        import torch

        class FirstOnly(torch.nn.Module):
            def __init__(self, networks):
                super().__init__()
                self.networks, self.models = torch.nn.ModuleList(networks), len(networks)

            def load_networks(self):
                pass

            def forward(self, images):
                return torch.cat([self.networks[0](images)] * self.models, dim=1)

        return FirstOnly([self.build(genotype) for genotype in genotypes])


BROKEN_SPACES = [
    (NamelessBits, "test_is_a_space", "needs a name"),
    (DuckBits, "test_is_a_space", "does not subclass nasx.Space"),
    (LossyBits, "test_sample_round_trips", "decode(encode(g)) is not g"),
    (IdentityKeyBits, "test_sample_round_trips", "changed the key"),
    (ThawedBits, "test_genotypes_are_frozen", "not frozen"),
    (LenientBits, "test_malformed_string_is_rejected", "accepted malformed text"),
    (ValueErrorBits, "test_malformed_string_is_rejected", "raised ValueError"),
    (NaNCostBits, "test_costs_are_finite_and_non_negative", "finite"),
    (NegativeCostBits, "test_costs_are_finite_and_non_negative", "not negative"),
    (TupleCostBits, "test_costs_are_finite_and_non_negative", "not a nasx.Cost"),
    (FreeBits, "test_costs_are_finite_and_non_negative", "no parameters"),
    (UndescribedSubsetBits, "test_subsets_are_described_and_test_membership", "description"),
    (IntegerMembershipBits, "test_subsets_are_described_and_test_membership", "must give bools"),
    (UntestedSubsetBits, "test_subsets_are_described_and_test_membership", "declared subset raised"),
    (AnySubsetBits, "test_subsets_are_described_and_test_membership", "unknown subset"),
    (GlobalRandomBits, "test_sampling_is_reproducible", "one seed gave different genotypes"),
    (ConstantBits, "test_sampling_is_reproducible", "gave one genotype"),
    (IdleMutationBits, "test_mutation_and_crossover_give_valid_genotypes", "unchanged"),
    (GlobalRandomMutationBits, "test_mutation_and_crossover_give_valid_genotypes", "mutate with one rng state"),
    (InventiveCrossoverBits, "test_mutation_and_crossover_give_valid_genotypes", "crossover(g, g) is not g"),
    (ThawedMutationBits, "test_mutation_and_crossover_give_valid_genotypes", "not frozen"),
    (InPlaceMutationBits, "test_mutation_and_crossover_give_valid_genotypes", "mutate changed its parent"),
    (OffByOneBits, "test_enumeration_is_consistent", "index_of(genotype_at"),
    (WrongLogitsBits, "test_networks_give_one_logit_per_class", ""),
    (MiscountedBits, "test_exact_cost_counts_the_networks_parameters", ""),
    (LossyCategoricalBits, "test_categorical_encoding_round_trips", "from_categorical(to_categorical(g)) is not g"),
    (DeafBits, "test_adapts_to_data_or_refuses", "not the task's 7"),
    (UnfusedBits, "test_a_fused_network_computes_each_genotypes_network", ""),
]


@pytest.mark.parametrize("space_class, check, reason", BROKEN_SPACES, ids=[c[0].__name__ for c in BROKEN_SPACES])
def test_space_contract_rejects_a_broken_space(space_class, check, reason):
    if "network" in check:
        pytest.importorskip("torch")
    space = space_class() if space_class is DuckBits else space_class(dataset="toy")
    fails(getattr(SpaceContract(), check), space, reason=reason)


class TestLinearBits(SpaceContract):
    @pytest.fixture
    def space(self):
        pytest.importorskip("torch")
        return LinearBits(dataset="toy")


class TestSubsetBits(SpaceContract):
    """A space with a subset passes the subset check (the toy spaces above have none: they skip it)."""

    @pytest.fixture
    def space(self):
        return SubsetBits(dataset="toy")


def test_space_contract_skips_network_checks_for_a_space_without_networks():
    with pytest.raises(pytest.skip.Exception):
        SpaceContract().test_networks_give_one_logit_per_class(BitSpace(dataset="toy"))


# ---------------------------------------------------------------------------------------------------------------
# proxies


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


class Raising(OnesProxy):
    """Raises where it should return NaN: the evaluator hides that as a NaN score, with the error."""

    name = "raising"

    def score_genotype(self, space, genotype):
        raise ZeroDivisionError("no ones to divide by")


class ArrayScore(OnesProxy):
    name = "array-score"

    def score_genotype(self, space, genotype):
        return np.array(super().score_genotype(space, genotype))  # a 0-d array: float() takes it, not a number


class IntegerDirection(OnesProxy):
    name = "integer-direction"
    higher_is_better = 1


class Unversioned(OnesProxy):
    name = "unversioned"
    version = ""


class AbsoluteWeights(OnesProxy):
    """A SynFlow-like proxy that makes the weights positive in place and forgets to restore them."""

    name = "absolute-weights"
    needs_network = True

    def score_network(self, network, batch, space):
        import torch

        with torch.no_grad():
            return float(sum(p.abs_().sum() for p in network.parameters()))


class LeftoverGradients(OnesProxy):
    """A gradient-norm proxy that never clears the gradients it leaves on the network: scored again, it counts the
    old ones too."""

    name = "leftover-gradients"
    needs_network = True

    def score_network(self, network, batch, space):
        import torch

        network(torch.ones(1, space.length)).sum().backward()
        return float(sum(p.grad.norm() for p in network.parameters()))


BROKEN_PROXIES = [
    (IntegerDirection, BitSpace, "test_declares_its_traits", "higher_is_better"),
    (Unversioned, BitSpace, "test_declares_its_traits", "version"),
    (Noisy, BitSpace, "test_scores_are_floats_and_reproducible", ""),
    (Raising, BitSpace, "test_scores_are_floats_and_reproducible", "ZeroDivisionError"),
    (ArrayScore, BitSpace, "test_scores_are_floats_and_reproducible", "ndarray"),
    (AlwaysNaN, BitSpace, "test_some_sampled_genotype_scores_finitely", "no finite score"),
    (AbsoluteWeights, LinearBits, "test_leaves_the_network_as_it_found_it", "changed"),
    (LeftoverGradients, LinearBits, "test_leaves_the_network_as_it_found_it", "scored again"),
]


@pytest.mark.parametrize("proxy_class, space_class, check, reason", BROKEN_PROXIES,
                         ids=[c[0].__name__ for c in BROKEN_PROXIES])
def test_proxy_contract_rejects_a_broken_proxy(proxy_class, space_class, check, reason):
    if space_class is LinearBits:
        pytest.importorskip("torch")
    contract, space = ProxyContract(), space_class(dataset="toy")
    arguments = {"proxy": proxy_class(), "space": space, "batch": None}
    check = getattr(contract, check)
    fails(check, *(arguments[name] for name in inspect.signature(check).parameters), reason=reason)


def test_proxy_contract_counts_nan_twice_as_reproducible():
    ProxyContract().test_scores_are_floats_and_reproducible(AlwaysNaN(), BitSpace(dataset="toy"), None)


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


class WeightNorm(OnesProxy):
    """A correct network proxy: reads the weights, changes nothing."""

    name = "weight-norm"
    needs_network = True

    def score_network(self, network, batch, space):
        return float(sum(p.detach().norm() for p in network.parameters()))


class TestWeightNorm(ProxyContract):
    @pytest.fixture
    def proxy(self):
        pytest.importorskip("torch")
        return WeightNorm()

    @pytest.fixture
    def space(self):
        return LinearBits(dataset="toy")

    @pytest.fixture
    def batch(self):
        return None


# ---------------------------------------------------------------------------------------------------------------
# combiners


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


class OrientsTheFirstColumn:
    """Turns round the first column when any proxy is lower-is-better (an indexing slip): right for one proxy,
    wrong for two."""

    name = "orients-the-first-column"

    def combine(self, scores, higher_is_better):
        values = np.array(scores, dtype=float)
        if not all(higher_is_better):
            values[:, 0] *= -1
        return values.sum(axis=1)


BROKEN_COMBINERS = [
    (UnmaskedMaxNormalised(), "test_non_finite_scores_do_not_poison_others"),
    (SumCombiner(), "test_non_finite_scores_do_not_poison_others"),
    (DirectionBlind(), "test_follows_each_proxys_direction"),
    (ArgsortAsRank(), "test_is_invariant_to_row_order"),
    (IntegerRanks(), "test_gives_one_float_per_row"),
    (ZeroesNaNInPlace(), "test_leaves_its_input_unchanged"),
    (OrientsTheFirstColumn(), "test_a_row_better_on_every_proxy_is_not_less_fit"),
]


@pytest.mark.parametrize("combiner, check", BROKEN_COMBINERS, ids=[c[0].name for c in BROKEN_COMBINERS])
def test_combiner_contract_rejects_a_broken_combiner(combiner, check):
    fails(getattr(CombinerContract(), check), combiner)


# ---------------------------------------------------------------------------------------------------------------
# searchers


class HillClimber(Searcher):
    """A correct searcher: from a random genotype, move to a mutant that is not worse; stop after ``patience``
    steps in a row that find nothing new. The broken searchers below each change one thing."""

    name = "hill-climber"
    patience = 50

    def search(self, context):
        current = context.sample()
        context.evaluate(current)
        stalled = 0
        while stalled < self.patience:
            child = self.propose(context, current)
            stalled = 0 if context.evaluate_is_new(child) else stalled + 1
            if self.keeps(context, child, current):
                current = child
        context.stop_reason = f"no new architecture in {self.patience} steps"

    def propose(self, context, current):
        return context.feasible(lambda: context.space.mutate(current, context.rng))

    def keeps(self, context, child, current):
        return context.fitness(child) >= context.fitness(current)


class TestHillClimber(SearcherContract):
    @pytest.fixture
    def searcher(self):
        return HillClimber()


class NoPatience(HillClimber):
    """Restarts whenever a step finds nothing new, and never gives up: on an exhausted space it asks for explored
    genotypes forever (the context raises nothing for those)."""

    name = "no-patience"
    patience = 1

    def search(self, context):
        while True:
            super().search(context)


class SwallowsTheBudget(HillClimber):
    """Catches BudgetExhausted to climb again."""

    name = "swallows-the-budget"

    def search(self, context):
        for _ in range(3):
            try:
                super().search(context)
            except BudgetExhausted:
                continue


class ReturnsOnTheBudget(NoPatience):
    """Catches BudgetExhausted and returns, as if the search had ended by itself."""

    name = "returns-on-the-budget"

    def search(self, context):
        try:
            super().search(context)
        except BudgetExhausted:
            return


class ScoresAroundTheContext(HillClimber):
    """Scores its mutants through context.evaluator too: no budget holds there, nothing is recorded."""

    name = "scores-around-the-context"

    def propose(self, context, current):
        child = super().propose(context, current)
        context.evaluator.evaluate(context.space.mutate(child, context.rng))  # a peek one step further
        return child


class Rescores(HillClimber):
    """Asks again for its current genotype at every step, to read its scores."""

    name = "rescores"

    def propose(self, context, current):
        context.evaluate(current)  # explored: answered from the explored set, but no progress
        return super().propose(context, current)


class ForgetsItsElders(Searcher):
    """Keeps context.explored as small as its population by deleting the oldest evaluations."""

    name = "forgets-its-elders"

    def search(self, context):
        for _ in range(40):
            context.evaluate(context.sample())
            if len(context.explored) > 5:
                oldest = next(iter(context.explored))
                del context.explored[oldest], context.genotypes[oldest]


class GlobalRandom(HillClimber):
    """Mutates with the global random module instead of context.rng: a seed does not reproduce the search."""

    name = "global-random"

    def propose(self, context, current):
        return context.feasible(lambda: context.space.mutate(current, random))


class ProposesInfeasible(HillClimber):
    """Mutates straight through the space, past context.feasible."""

    name = "proposes-infeasible"

    def propose(self, context, current):
        return context.space.mutate(current, context.rng)


class Descends(HillClimber):
    """Keeps the worse of parent and child (a sign error)."""

    name = "descends"

    def keeps(self, context, child, current):
        return context.fitness(child) <= context.fitness(current)


BROKEN_SEARCHERS = [
    (SwallowsTheBudget, "test_respects_max_evals", "after the context raised BudgetExhausted"),
    (ReturnsOnTheBudget, "test_respects_max_evals", "caught BudgetExhausted"),
    (ScoresAroundTheContext, "test_respects_max_evals", "scored"),
    (Rescores, "test_never_scores_twice", "requests for explored genotypes"),
    (ForgetsItsElders, "test_returns_the_best_explored", "history is not what was scored"),
    (GlobalRandom, "test_is_reproducible", "one seed"),
    (ProposesInfeasible, "test_honours_constraints", "infeasible"),
    (NoPatience, "test_stops_when_the_space_is_exhausted", "loops without finding anything new"),
    (Descends, "test_finds_the_optimum_of_an_easy_space", ""),
]


@pytest.mark.parametrize("searcher_class, check, reason", BROKEN_SEARCHERS,
                         ids=[c[0].__name__ for c in BROKEN_SEARCHERS])
def test_searcher_contract_rejects_a_broken_searcher(searcher_class, check, reason):
    fails(getattr(SearcherContract(), check), searcher_class(), reason=reason)


@pytest.mark.parametrize("searcher_class", [NoPatience, GlobalRandom, Rescores, ProposesInfeasible, Descends])
def test_broken_searchers_pass_the_checks_they_are_not_kept_for(searcher_class):
    """Each of these fails one check only: the others do not reject a searcher for no reason."""
    contract = SearcherContract()
    failing = {check for broken, check, _ in BROKEN_SEARCHERS if broken is searcher_class}
    for name in [n for n in dir(contract) if n.startswith("test_") and n not in failing]:
        getattr(contract, name)(searcher_class())


class TestNoPatienceOnAnInfiniteBudget:
    """The watch stops a search that would never end: the check fails in bounded time instead of hanging."""

    def test_a_runaway_search_fails(self):
        from nasx.search import Budget
        from nasx.testing.contracts import SearchWatch

        contract = SearcherContract()
        watch = SearchWatch(contract.make_context(Budget(max_evals=10_000), length=3), max_requests=500)
        with pytest.raises(pytest.fail.Exception, match="more than 500 times"):
            watch.run(NoPatience())
        assert watch.repeated_requests() == 501 and len(watch.scored) == 8


# ---------------------------------------------------------------------------------------------------------------


def test_every_check_has_a_broken_component_that_fails_it():
    """A check that no broken component here fails could be a check that cannot fail."""
    shown = {("space", check) for _, check, _ in BROKEN_SPACES} | {("space", "test_declares_well_typed_facts")}
    shown |= {("proxy", check) for _, _, check, _ in BROKEN_PROXIES}
    shown |= {("combiner", check) for _, check in BROKEN_COMBINERS}
    shown |= {("searcher", check) for _, check, _ in BROKEN_SEARCHERS}
    # fused scoring needs a real fused space: its broken proxy (scores in the wrong order) is in tests/test_fusion.py
    shown |= {("proxy", "test_fused_scores_are_those_of_each_network")}
    suites = {"space": SpaceContract, "proxy": ProxyContract, "combiner": CombinerContract,
              "searcher": SearcherContract}
    checks = {(kind, name) for kind, suite in suites.items() for name in dir(suite) if name.startswith("test_")}
    assert checks - shown == set()


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
