import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasx.testing.contracts import CombinerContract, SearcherContract
from nasx_search.combiners import FreeREACombiner, LogRankCombiner, RankCombiner
from nasx_search.evolution import AssistedREA, FreeREA, RegularizedEvolution
from nasx_search.exhaustive import Exhaustive
from nasx_search.genetic import GeneticAlgorithm, SimulatedAnnealing
from nasx_search.random_search import RandomSearch


@pytest.mark.parametrize(
    "searcher_class",
    [FreeREA, RegularizedEvolution, RandomSearch, AssistedREA, GeneticAlgorithm, SimulatedAnnealing],
)
class TestSearchers(SearcherContract):
    @pytest.fixture
    def searcher(self, searcher_class):
        return searcher_class()


class TestExhaustive(SearcherContract):
    @pytest.fixture
    def searcher(self):
        return Exhaustive()

    def test_finds_the_optimum_of_an_easy_space(self, searcher):
        from nasx.search import Budget

        # index order reaches the all-ones genotype last: the whole space is the budget it needs
        result, _ = self.watched_run(searcher, self.make_context(Budget(max_evals=256)))
        assert result.arch == "1" * 8


@pytest.mark.parametrize("combiner_class", [FreeREACombiner, RankCombiner, LogRankCombiner])
class TestCombiners(CombinerContract):
    @pytest.fixture
    def combiner(self, combiner_class):
        return combiner_class()


def test_random_search_scores_n():
    contract = SearcherContract()
    from nasx.search import Budget, run_search

    result = run_search(RandomSearch(n=10), contract.make_context(Budget(max_evals=100)))
    assert result.evaluated == 10


def test_freerea_combiner_is_max_normalised_sum():
    scores = np.array([[2.0, -4.0], [1.0, -2.0], [4.0, -1.0]])
    fitness = FreeREACombiner().combine(scores, [True, False])  # second proxy: lower is better
    expected = scores[:, 0] / 4 + (-scores[:, 1]) / 4
    assert np.allclose(fitness, expected)


@pytest.mark.parametrize("bad", [-math.inf, math.inf, math.nan])
@pytest.mark.parametrize("combiner", [FreeREACombiner(), RankCombiner(), LogRankCombiner()])
def test_non_finite_scores_do_not_poison_others(combiner, bad):
    clean = np.array([[700.0, 3.0], [720.0, 1.0], [710.0, 2.0]])
    dirty = np.vstack([clean, [[bad, 3.0]]])
    dirty_fitness = combiner.combine(dirty, [True, True])
    assert np.all(np.isfinite(dirty_fitness))
    # on the proxy with the non-finite score, the others keep their values' order and that candidate is worst
    alone = combiner.combine(dirty[:, :1], [True])
    assert list(np.argsort(alone[:3])) == list(np.argsort(clean[:, 0]))
    assert alone[3] < alone[:3].min()
    if isinstance(combiner, FreeREACombiner):  # max-normalisation ignores the non-finite score entirely
        assert np.allclose(alone[:3], clean[:, 0] / 720.0)


def test_rank_combiner_sums_ranks_with_directions():
    scores = np.array([[1.0, 30.0], [2.0, 20.0], [3.0, 10.0]])
    assert list(RankCombiner().combine(scores, [True, False])) == [1 + 1, 2 + 2, 3 + 3]


def test_logrank_combiner_sums_log_ranks_with_directions():
    scores = np.array([[1.0, 30.0], [2.0, 20.0], [3.0, 10.0]])
    expected = [2 * math.log(1), 2 * math.log(2), 2 * math.log(3)]
    assert np.allclose(LogRankCombiner().combine(scores, [True, False]), expected)


@pytest.mark.parametrize("seed", range(8))
def test_area_starts_from_the_best_half_of_2p_random_architectures(seed):
    """The first 2P explored are the context's first 2P random draws; the first mutated parent, picked by a
    tournament of one from the starting population, is one of the best P of them."""
    from nasx.search import Budget, run_search

    contract, size = SearcherContract(), 3
    context = contract.make_context(Budget(max_evals=2 * size + 1), seed=seed, length=10)
    space = context.space
    replay = contract.make_context(Budget(max_evals=1), seed=seed, length=10)
    draws = []
    while len(draws) < 2 * size:  # what draw_new keeps: distinct draws, in order
        arch = replay.space.encode(replay.sample())
        draws += [arch] if arch not in draws else []
    parents = []
    mutate = space.mutate
    space.mutate = lambda genotype, rng: parents.append(space.encode(genotype)) or mutate(genotype, rng)
    run_search(AssistedREA(population_size=size, sample_size=1), context)
    explored = [evaluation.arch for evaluation in context.explored.values()]
    assert explored[: 2 * size] == draws
    assert len(explored) == 2 * size + 1 and parents
    ones = sorted((arch.count("1") for arch in draws), reverse=True)
    assert parents[0] in draws and parents[0].count("1") >= ones[size - 1], (parents[0], draws)


def test_exhaustive_scores_every_feasible_architecture_once():
    import itertools

    from nasx.constraints import MaxFlops
    from nasx.search import Budget

    contract = SearcherContract()
    context = contract.make_context(Budget(max_evals=10_000), length=6, constraints=[MaxFlops(limit=4)])
    result, watch = contract.watched_run(Exhaustive(), context)
    feasible = ["".join(bits) for bits in itertools.product("01", repeat=6) if bits.count("1") <= 4]
    assert [evaluation.arch for evaluation in watch.scored] == feasible  # each once, in index order
    assert result.stop_reason == "space exhausted"
    assert result.arch == "001111"  # the first of the fittest (four ones) in index order


def test_annealing_restarts_when_its_walk_is_stuck_and_spends_the_budget():
    from nasx.search import Budget, run_search

    contract = SearcherContract()
    options = {"initial_temperature": 0.001, "patience": 20}  # a cold walk that gets stuck on the one-max peak
    stuck = run_search(SimulatedAnnealing(restart=False, **options), contract.make_context(Budget(max_evals=150)))
    assert stuck.evaluated < 150 and stuck.stop_reason.startswith("no new architecture")
    restarted = run_search(SimulatedAnnealing(**options), contract.make_context(Budget(max_evals=150)))
    assert restarted.evaluated == 150 and restarted.stop_reason == "max-evals"


# ---------------------------------------------------------------------------------------------------------------
# combiners over generated score matrices

COMBINERS = [FreeREACombiner(), RankCombiner(), LogRankCombiner()]
finite_scores = st.one_of(st.integers(-5, 5).map(float), st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))
any_scores = st.one_of(finite_scores, st.sampled_from([math.nan, math.inf, -math.inf]))


@st.composite
def score_matrices(draw, scores=any_scores, min_rows=1):
    rows = draw(st.integers(min_rows, 10))
    columns = draw(st.integers(1, 3))
    values = draw(st.lists(st.lists(scores, min_size=columns, max_size=columns), min_size=rows, max_size=rows))
    directions = draw(st.lists(st.booleans(), min_size=columns, max_size=columns))
    return np.array(values, dtype=float).reshape(rows, columns), directions


@pytest.mark.parametrize("combiner", COMBINERS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(score_matrices(), st.randoms(use_true_random=False))
def test_fitness_does_not_depend_on_row_order(combiner, matrix, rng):
    scores, directions = matrix
    order = list(range(len(scores)))
    rng.shuffle(order)
    assert np.allclose(combiner.combine(scores[order], directions), combiner.combine(scores, directions)[order],
                       equal_nan=True)


@pytest.mark.parametrize("combiner", COMBINERS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(score_matrices(), st.data())
def test_a_better_score_never_lowers_a_rows_fitness(combiner, matrix, data):
    scores, directions = matrix
    row = data.draw(st.integers(0, len(scores) - 1))
    column = data.draw(st.integers(0, scores.shape[1] - 1))
    step = data.draw(st.floats(0.5, 100))
    improved = scores.copy()
    value = scores[row, column]
    better = (step if directions[column] else -step) + (value if math.isfinite(value) else 0.0)
    improved[row, column] = better  # a finite score is better than a non-finite one, and than the one it replaces
    before, after = combiner.combine(scores, directions)[row], combiner.combine(improved, directions)[row]
    assert after >= before - 1e-9 * max(1.0, abs(before)), (before, after)


@pytest.mark.parametrize("combiner", COMBINERS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(score_matrices(), st.lists(st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), min_size=3,
                                           max_size=3), min_size=1, max_size=3))
def test_rows_without_a_finite_score_are_worst_and_change_nothing(combiner, matrix, worthless):
    scores, directions = matrix
    extra = np.array(worthless)[:, : scores.shape[1]]
    fitness = combiner.combine(np.vstack([scores, extra]), directions)
    assert np.allclose(fitness[: len(scores)], combiner.combine(scores, directions))
    assert np.all(fitness[len(scores):] <= fitness[: len(scores)].min())


@pytest.mark.parametrize("combiner", COMBINERS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(score_matrices())
def test_lower_is_better_is_the_negated_score(combiner, matrix):
    scores, directions = matrix
    flipped = scores * np.where(directions, 1.0, -1.0)
    assert np.allclose(combiner.combine(scores, directions), combiner.combine(flipped, [True] * len(directions)),
                       equal_nan=True)
