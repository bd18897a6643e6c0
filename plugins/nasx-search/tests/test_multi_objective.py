"""NSGA-II and multi-objective FreeREA: the searcher contract (scalar fitness), determinism, and fronts that can be
checked by hand on the toy bit space."""

import itertools

import pytest

import nasx
from nasx.evaluator import Evaluator
from nasx.interfaces import Proxy
from nasx.objectives import Objective
from nasx.search import Budget, SearchContext, run_search
from nasx.testing.contracts import SearcherContract, SumCombiner
from nasx.testing.toy import BitSpace, OnesProxy
from nasx_search.evolution import FreeREA, MultiObjectiveFreeREA
from nasx_search.nsga2 import NSGA2


@pytest.mark.parametrize("searcher_class", [NSGA2, MultiObjectiveFreeREA])
class TestMultiObjectiveSearchers(SearcherContract):
    @pytest.fixture
    def searcher(self, searcher_class):
        return searcher_class()


class LeftOnes(Proxy):
    """Ones among the first half of the bits (higher is better)."""

    name = "toy-left"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        bits = space.bits(genotype)
        return float(sum(bits[: len(bits) // 2]))


def context_for(length, objectives, budget, seed=0):
    space = BitSpace(dataset="toy", length=length)
    evaluator = Evaluator(space, [LeftOnes(), OnesProxy()], None)
    return SearchContext(space, evaluator, SumCombiner(), [], Budget(max_evals=budget), seed=seed,
                         objectives=objectives)


# maximise the ones of the left half while minimising all ones (params = ones / 10): a one on the right only
# costs, so the front is every cell whose right half is zero, each trading left ones against cost
LEFT = Objective("toy-left", True, "proxy")
PARAMS = Objective("params", False, "cost")


def hand_checked_front(length):
    half = length // 2
    return {"".join(bits) + "0" * (length - half) for bits in itertools.product("01", repeat=half)}


@pytest.mark.parametrize("searcher", [NSGA2(population_size=8), MultiObjectiveFreeREA(population_size=8)])
def test_the_whole_space_gives_the_hand_checked_front(searcher):
    result = nasx.run(space=BitSpace(dataset="toy", length=6), proxies=[LeftOnes, OnesProxy], search=searcher,
                      objectives=["toy-left", "params"], max_evals=64, cache=False)
    assert {member["arch"] for member in result.front} == hand_checked_front(6)
    assert all(member["objectives"]["params"] == member["arch"].count("1") / 10 for member in result.front)


def test_nsga2_population_converges_on_the_front():
    context = context_for(8, [LEFT, PARAMS], budget=100, seed=3)
    run_search(NSGA2(population_size=10), context)
    # the 16 front cells of 256; NSGA-II's final population lies on the front, and finds most of it
    front = hand_checked_front(8)
    population = NSGA2.survivors(context, list(context.genotypes.values()), 10)
    assert {context.space.encode(g) for g in population} <= front
    assert len(front & {e.arch for e in context.explored.values()}) >= 12


def test_tournament_prefers_rank_then_crowding():
    import random

    population = ["a", "b"]
    assert NSGA2.tournament(random.Random(0), population, [1, 0], [9.0, 0.0]) == "b"  # lower rank wins
    assert NSGA2.tournament(random.Random(0), population, [0, 0], [0.5, 2.0]) == "b"  # then larger crowding
    assert NSGA2.tournament(random.Random(0), population, [0, 0], [2.0, 0.5]) == "a"


def test_survivors_fill_fronts_then_take_the_least_crowded():
    # the toy cells by (left ones, -params): whole first fronts are kept, the last one cut by crowding
    context = context_for(4, [LEFT, PARAMS], budget=16)
    space = context.space
    cells = [space.decode(text) for text in ("0000", "1000", "1100", "0100", "1001", "0011")]
    context.evaluate_many(cells)
    # front 1: 0000 (0, 0), 1000 (1, -.1), 0100 (1, -.1), 1100 (2, -.2); front 2: 1001 (1, -.2); front 3: 0011
    survivors = [space.encode(g) for g in NSGA2.survivors(context, cells, 5)]
    assert survivors == ["0000", "1000", "1100", "0100", "1001"]
    # three of the first front: its two extremes (infinite crowding), then the first of the tied middle pair
    assert [space.encode(g) for g in NSGA2.survivors(context, cells, 3)] == ["0000", "1100", "1000"]


@pytest.mark.parametrize("searcher_class", [NSGA2, MultiObjectiveFreeREA])
def test_multi_objective_searches_are_deterministic(searcher_class):
    runs = []
    for _ in range(2):
        context = context_for(8, [LEFT, PARAMS], budget=40, seed=7)
        run_search(searcher_class(), context)
        runs.append([e.arch for e in context.explored.values()])
    assert runs[0] == runs[1]


def test_mo_freerea_with_the_fitness_alone_is_freerea_on_distinct_fitness():
    # distinct fitness values (no ties): Pareto rank on one objective is the fitness order, so the runs agree
    class Weighted(Proxy):
        name = "toy-weighted"
        needs_network = False

        def score_genotype(self, space, genotype) -> float:
            return float(sum(bit << i for i, bit in enumerate(space.bits(genotype))))

    runs = []
    for searcher in (FreeREA(), MultiObjectiveFreeREA()):
        space = BitSpace(dataset="toy", length=8)
        context = SearchContext(space, Evaluator(space, [Weighted()], None), SumCombiner(), [],
                                Budget(max_evals=60), seed=2)
        run_search(searcher, context)
        runs.append([e.arch for e in context.explored.values()])
    assert runs[0] == runs[1]
