"""Contract test suites. A plugin's tests subclass one and provide the fixtures it names, e.g.::

    class TestMySpace(SpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace(dataset="cifar10")
"""

from __future__ import annotations

import math
import random

import pytest

from nasx.errors import InvalidGenotype
from nasx.evaluator import Evaluator
from nasx.interfaces import EnumerableSpace, EvolvableSpace, Proxy, Space
from nasx.search import Budget, SearchContext, run_search


class SpaceContract:
    """Needs a ``space`` fixture (a Space instance)."""

    samples = 25

    def test_is_a_space(self, space):
        assert isinstance(space, Space) and space.name and space.dataset in space.datasets

    def test_sample_round_trips(self, space):
        rng = random.Random(0)
        for _ in range(self.samples):
            genotype = space.sample(rng)
            text = space.encode(genotype)
            assert space.encode(space.decode(text)) == text
            assert space.key(space.decode(text)) == space.key(genotype)

    def test_genotypes_are_frozen(self, space):
        import networkx as nx

        assert nx.is_frozen(space.sample(random.Random(0)))

    def test_malformed_string_is_rejected(self, space):
        with pytest.raises(InvalidGenotype):
            space.decode("this is not an architecture")

    def test_cost_is_positive(self, space):
        cost = space.cost(space.sample(random.Random(1)))
        assert cost.flops_m >= 0 and cost.params_m >= 0

    def test_sampling_is_reproducible(self, space):
        first = [space.encode(space.sample(random.Random(7))) for _ in range(3)]
        second = [space.encode(space.sample(random.Random(7))) for _ in range(3)]
        assert first == second

    def test_mutation_and_crossover_give_valid_genotypes(self, space):
        if not isinstance(space, EvolvableSpace):
            pytest.skip("not an evolvable space")
        rng = random.Random(3)
        for _ in range(self.samples):
            a, b = space.sample(rng), space.sample(rng)
            child = space.mutate(a, rng)
            assert space.encode(child) != space.encode(a)
            assert space.decode(space.encode(child)) is not None
            assert space.decode(space.encode(space.crossover(a, b, rng))) is not None

    def test_enumeration_is_consistent(self, space):
        if not isinstance(space, EnumerableSpace):
            pytest.skip("not an enumerable space")
        rng = random.Random(5)
        for index in rng.sample(range(len(space)), min(20, len(space))):
            assert space.index_of(space.genotype_at(index)) == index


class ProxyContract:
    """Needs ``proxy`` (a Proxy instance), ``space`` and ``batch`` fixtures (batch may be None)."""

    def test_declares_its_traits(self, proxy):
        assert isinstance(proxy, Proxy) and proxy.name
        assert isinstance(proxy.higher_is_better, bool)

    def test_scores_are_finite_and_reproducible(self, proxy, space, batch):
        evaluator = Evaluator(space, [proxy], batch, init_seed=0)
        genotype = space.sample(random.Random(11))
        first = evaluator.evaluate(genotype).scores[proxy.name]
        evaluator.cache.db.execute("DELETE FROM scores")
        second = evaluator.evaluate(genotype).scores[proxy.name]
        assert math.isfinite(first)
        assert first == pytest.approx(second, rel=1e-9)

    def test_leaves_weights_unchanged(self, proxy, space, batch):
        if not proxy.needs_network:
            pytest.skip("genotype proxy")
        import torch

        network = space.build(space.sample(random.Random(2)))
        before = {k: v.clone() for k, v in network.named_parameters()}
        proxy.score_network(network, batch.take(proxy.batch_size) if proxy.needs_data else None, space)
        for name, value in network.named_parameters():
            assert torch.equal(before[name], value), name


class SearcherContract:
    """Needs ``searcher`` (a Searcher instance). Runs on the toy bit space, where the optimum is all ones."""

    def make_context(self, budget, seed=0, constraints=(), length=8):
        from nasx.testing.toy import BitSpace, OnesProxy

        space = BitSpace(dataset="toy", length=length)
        evaluator = Evaluator(space, [OnesProxy()], None)
        return SearchContext(space, evaluator, SumCombiner(), list(constraints), budget, seed=seed)

    def test_respects_max_evals(self, searcher):
        context = self.make_context(Budget(max_evals=20))
        result = run_search(searcher, context)
        assert result.evaluated <= 20

    def test_never_scores_twice(self, searcher):
        context = self.make_context(Budget(max_evals=40))
        calls = []
        original = context.evaluator.evaluate
        context.evaluator.evaluate = lambda g: calls.append(context.space.encode(g)) or original(g)
        run_search(searcher, context)
        assert len(calls) == len(set(calls))

    def test_returns_the_best_explored(self, searcher):
        context = self.make_context(Budget(max_evals=30))
        result = run_search(searcher, context)
        assert result.scores["toy-ones"] == max(e.scores["toy-ones"] for e in result.history)

    def test_is_reproducible(self, searcher):
        runs = [run_search(searcher, self.make_context(Budget(max_evals=25), seed=4)) for _ in range(2)]
        assert [e.arch for e in runs[0].history] == [e.arch for e in runs[1].history]

    def test_honours_constraints(self, searcher):
        from nasx.constraints import MaxFlops

        context = self.make_context(Budget(max_evals=30), constraints=[MaxFlops(limit=4)])
        result = run_search(searcher, context)
        assert all(e.arch.count("1") <= 4 for e in result.history)

    def test_stops_when_the_space_is_exhausted(self, searcher):
        context = self.make_context(Budget(max_evals=1000), length=4)
        result = run_search(searcher, context)
        assert result.evaluated <= 16

    def test_finds_the_optimum_of_an_easy_space(self, searcher):
        result = run_search(searcher, self.make_context(Budget(max_evals=120), seed=1))
        assert result.arch == "1" * 8


class SumCombiner:
    """Fitness = sum of oriented scores; enough for the toy space (a searcher contract must not need plugins)."""

    name = "toy-sum"

    def combine(self, scores, higher_is_better):
        import numpy as np

        signs = np.where(np.asarray(higher_is_better), 1.0, -1.0)
        return (np.asarray(scores) * signs).sum(axis=1)
