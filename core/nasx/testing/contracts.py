"""Contract test suites. A plugin's tests subclass one and provide the fixtures it names, e.g.::

    class TestMySpace(SpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace(dataset="cifar10")

Importing this module does not need pytest; running the checks does (they import it themselves).
"""

from __future__ import annotations

import math
import random

from nasx.errors import InvalidGenotype, NasxError
from nasx.evaluator import Evaluator
from nasx.interfaces import EnumerableSpace, EvolvableSpace, Proxy, Space, Task
from nasx.search import Budget, SearchContext, run_search


def _skip(reason: str) -> None:
    import pytest

    pytest.skip(reason)


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class SpaceContract:
    """Needs a ``space`` fixture (a Space instance)."""

    samples = 25
    #: genotypes whose networks are built and run (building is the slow part).
    network_samples = 3

    def test_is_a_space(self, space):
        assert isinstance(space, Space) and space.name and _dataset_is_known(space)

    def test_declares_well_typed_facts(self, space):
        shape = space.input_shape  # a property: a method here would give a bound method, not a tuple
        assert isinstance(shape, tuple) and len(shape) == 3, f"input_shape {shape!r} is not (C, H, W)"
        assert all(_is_positive_int(side) for side in shape), f"input_shape {shape!r} needs positive ints"
        assert _is_positive_int(space.num_classes), f"num_classes {space.num_classes!r} is not a positive int"
        assert isinstance(space.datasets, tuple) and all(isinstance(d, str) for d in space.datasets), (
            f"datasets {space.datasets!r} is not a tuple of names")
        assert _dataset_is_known(space)
        assert isinstance(space.version, str) and space.version, "version must be a non-empty string"
        assert isinstance(space.default_dataset, str)
        assert not space.default_dataset or space.default_dataset in space.datasets, (
            f"default_dataset {space.default_dataset!r} is not one of datasets")
        assert isinstance(space.cost_is_exact, bool)

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
        import pytest

        with pytest.raises(InvalidGenotype):
            space.decode("this is not an architecture")

    def test_cost_is_positive(self, space):
        cost = space.cost(space.sample(random.Random(1)))
        assert cost.flops_m >= 0 and cost.params_m >= 0

    def test_subsets_are_described_and_test_membership(self, space):
        import pytest

        assert isinstance(space.subsets, dict)
        rng = random.Random(5)
        for name, description in space.subsets.items():
            assert isinstance(name, str) and name and isinstance(description, str) and description
            members = [space.in_subset(name, space.sample(rng)) for _ in range(self.samples)]
            assert all(isinstance(member, bool) for member in members), f"in_subset({name!r}) must give bools"
        with pytest.raises(NasxError):
            space.in_subset("no such subset", space.sample(rng))

    def test_sampling_is_reproducible(self, space):
        first = [space.encode(space.sample(random.Random(7))) for _ in range(3)]
        second = [space.encode(space.sample(random.Random(7))) for _ in range(3)]
        assert first == second

    def test_mutation_and_crossover_give_valid_genotypes(self, space):
        if not isinstance(space, EvolvableSpace):
            _skip("not an evolvable space")
        rng = random.Random(3)
        for _ in range(self.samples):
            a, b = space.sample(rng), space.sample(rng)
            child = space.mutate(a, rng)
            assert space.encode(child) != space.encode(a)
            assert space.decode(space.encode(child)) is not None
            assert space.decode(space.encode(space.crossover(a, b, rng))) is not None

    def test_categorical_encoding_round_trips(self, space):
        genes = space.categorical()
        if genes is None:
            _skip("the space declares no categorical encoding")
        names = [name for name, _ in genes]
        assert len(set(names)) == len(names), "gene names must be distinct"
        for name, choices in genes:
            assert isinstance(name, str) and name and len(choices) >= 1, name
            assert all(isinstance(c, (str, int, float, bool)) for c in choices), f"{name}: choices must be plain"
        rng = random.Random(9)
        for _ in range(self.samples):
            genotype = space.sample(rng)
            values = space.to_categorical(genotype)
            assert set(values) == set(names), "to_categorical must give every gene"
            assert all(values[name] in choices for name, choices in genes), values
            assert space.encode(space.from_categorical(values)) == space.encode(genotype)
            drawn = {name: rng.choice(choices) for name, choices in genes}
            try:
                decoded = space.from_categorical(drawn)
            except InvalidGenotype:
                continue  # values that make no genotype may exist
            assert space.to_categorical(decoded) == drawn, "from_categorical must keep the values it is given"

    def test_enumeration_is_consistent(self, space):
        if not isinstance(space, EnumerableSpace):
            _skip("not an enumerable space")
        rng = random.Random(5)
        for index in rng.sample(range(len(space)), min(20, len(space))):
            assert space.index_of(space.genotype_at(index)) == index

    def built_networks(self, space):
        """(genotype, network) for a few sampled genotypes; skips for a space without networks or without torch."""
        import pytest

        pytest.importorskip("torch")
        rng = random.Random(13)
        networks = []
        for _ in range(self.network_samples):
            genotype = space.sample(rng)
            try:
                networks.append((genotype, space.build(genotype)))
            except NotImplementedError as reason:
                pytest.skip(f"space '{space.name}' builds no networks: {reason}")
        return networks

    def test_networks_give_one_logit_per_class(self, space):
        networks = self.built_networks(space)
        import torch

        for genotype, network in networks:
            with torch.no_grad():
                logits = network.eval()(torch.zeros(2, *space.input_shape))
            assert tuple(logits.shape) == (2, space.num_classes), space.encode(genotype)

    def test_exact_cost_counts_the_networks_parameters(self, space):
        if not space.cost_is_exact:
            _skip("the space does not declare its cost exact")
        for genotype, network in self.built_networks(space):
            count = sum(p.numel() for p in network.parameters())
            # compared in whole parameters: exact up to the float rounding of a count given in millions
            assert abs(space.cost(genotype).params_m * 1e6 - count) < 0.5, (space.encode(genotype), count)

    def test_adapts_to_data_or_refuses(self, space):
        """A space with ``adapts_to_data`` builds, for a user's task, networks with its classes and (non-square)
        input shape, whose parameters its cost counts when exact, and refuses images below ``min_resolution``;
        the space it was adapted from is unchanged. Any other space refuses in one line."""
        import pytest

        step = space.resolution_multiple
        side = step * -(-max(space.min_resolution, 1) // step)  # the smallest side it accepts
        task = Task("contract-task", 7, (3, side, 2 * side))
        if not space.adapts_to_data:
            with pytest.raises(NasxError) as refused:
                space.for_data(task)
            assert "\n" not in str(refused.value)
            return
        before = (space.task, space.dataset, space.num_classes, space.input_shape)
        adapted = space.for_data(task)
        assert adapted.task == task and adapted.dataset == task.name
        assert adapted.num_classes == 7 and adapted.input_shape == task.input_shape
        assert (space.task, space.dataset, space.num_classes, space.input_shape) == before, (
            "for_data must not change the space it adapts")
        if space.min_resolution > 1:
            with pytest.raises(NasxError):
                space.for_data(Task("too-small", 7, (3, space.min_resolution - 1, 2 * side)))
        for genotype, network in self.built_networks(adapted):
            import torch

            with torch.no_grad():
                logits = network.eval()(torch.zeros(2, *task.input_shape))
            assert tuple(logits.shape) == (2, 7), adapted.encode(genotype)
            if adapted.cost_is_exact:
                count = sum(p.numel() for p in network.parameters())
                assert abs(adapted.cost(genotype).params_m * 1e6 - count) < 0.5, (adapted.encode(genotype), count)

    def test_a_fused_network_computes_each_genotypes_network(self, space):
        """With ``fusable``: the fused network of 3 genotypes, initialised as each would be alone, gives each
        genotype's logits (within float32 rounding) in its columns."""
        if not space.fusable:
            _skip("the space builds no fused networks")
        import torch

        from nasx.torch_utils import initialise, initialise_fused

        genotypes = [space.sample(random.Random(seed)) for seed in (3, 4, 5)]
        network = space.build_fused(genotypes)
        assert network.models == len(genotypes)
        initialise_fused(network, "kaiming", seed=0)
        images = torch.randn((2, *space.input_shape), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            logits = network.eval()(images).unflatten(1, (len(genotypes), space.num_classes))
        for index, genotype in enumerate(genotypes):
            alone = space.build(genotype)
            initialise(alone, "kaiming", seed=0)
            with torch.no_grad():
                expected = alone.eval()(images)
            scale = float(expected.abs().max()) or 1.0
            assert torch.allclose(logits[:, index], expected, rtol=1e-4, atol=1e-5 * scale), space.encode(genotype)


def _dataset_is_known(space: Space) -> bool:
    """The space's dataset is one it declares, or the name of the user's task it was adapted to."""
    return space.dataset in space.datasets or (space.task is not None and space.dataset == space.task.name)


def _same_score(first: float, second: float, rel_tol: float = 1e-9) -> bool:
    """Two evaluations agree: both NaN, equal (infinities included), or equal up to float rounding."""
    if math.isnan(first) or math.isnan(second):
        return math.isnan(first) and math.isnan(second)
    return first == second or math.isclose(first, second, rel_tol=rel_tol)


class ProxyContract:
    """Needs ``proxy`` (a Proxy instance), ``space`` and ``batch`` fixtures (batch may be None)."""

    #: genotypes tried to find one with a finite score.
    finite_samples = 5

    def test_declares_its_traits(self, proxy):
        assert isinstance(proxy, Proxy) and proxy.name
        assert isinstance(proxy.higher_is_better, bool)
        for trait in ("needs_data", "needs_labels", "needs_gradients", "needs_network"):
            assert isinstance(getattr(proxy, trait), bool), trait
        assert isinstance(proxy.version, str) and proxy.version, "version must be a non-empty string"

    def test_scores_are_floats_and_reproducible(self, proxy, space, batch):
        evaluator = Evaluator(space, [proxy], batch, init_seed=0)
        genotype = space.sample(random.Random(11))
        first = evaluator.evaluate(genotype).scores[proxy.name]
        evaluator.cache.db.execute("DELETE FROM scores")  # the second score is computed again, not replayed
        second = evaluator.evaluate(genotype).scores[proxy.name]
        assert isinstance(first, float)
        assert _same_score(first, second), (first, second)

    def test_some_sampled_genotype_scores_finitely(self, proxy, space, batch):
        # NaN is allowed for degenerate networks, but a proxy that is never finite ranks nothing
        evaluator = Evaluator(space, [proxy], batch, init_seed=0)
        rng = random.Random(17)
        scores = (evaluator.evaluate(space.sample(rng)).scores[proxy.name] for _ in range(self.finite_samples))
        assert any(math.isfinite(score) for score in scores), f"no finite score on {self.finite_samples} genotypes"

    def test_leaves_weights_unchanged(self, proxy, space, batch):
        if not proxy.needs_network:
            _skip("genotype proxy")
        import torch

        network = space.build(space.sample(random.Random(2)))
        before = {k: v.clone() for k, v in network.named_parameters()}
        proxy.score_network(network, batch.take(proxy.batch_size) if proxy.needs_data else None, space)
        for name, value in network.named_parameters():
            assert torch.equal(before[name], value), name

    def test_fused_scores_are_those_of_each_network(self, proxy, space, batch):
        """With ``fusable`` (and a space that builds fused networks): ``score_fused`` gives each of 3 genotypes the
        score of its own network (within float32 rounding; None leaves it to be scored alone)."""
        if not proxy.fusable:
            _skip("the proxy does not score fused networks")
        if not space.fusable:
            _skip(f"space '{space.name}' builds no fused networks")
        from nasx.torch_utils import initialise, initialise_fused

        genotypes = [space.sample(random.Random(seed)) for seed in (6, 7, 8)]
        data = batch.take(proxy.batch_size) if proxy.needs_data else None
        network = space.build_fused(genotypes)
        initialise_fused(network, "kaiming", seed=0)
        fused = list(proxy.score_fused(network, data, space))
        assert len(fused) == len(genotypes)
        for genotype, score in zip(genotypes, fused):
            if score is None:
                continue
            alone = space.build(genotype)
            initialise(alone, "kaiming", seed=0)
            expected = proxy.score_network(alone, data, space)
            assert _same_score(float(score), expected, rel_tol=1e-5), (space.encode(genotype), score, expected)


def _pairwise_order(values):
    """Sign of every pairwise difference (0 where the two are equal up to float rounding)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    difference = values[:, None] - values[None, :]
    ties = np.isclose(values[:, None], values[None, :], rtol=1e-12, atol=1e-12)
    return np.where(ties, 0, np.sign(difference))


class CombinerContract:
    """Needs ``combiner`` (a Combiner instance)."""

    # distinct scores of both signs, in no particular order
    column = (3.5, -2.0, 0.0, 7.25, 1.0, -0.5)
    # two proxies, the second one lower-is-better
    clean = ((700.0, 3.0), (720.0, 1.0), (710.0, 2.0), (690.0, 0.5), (705.0, 4.0))
    directions = (True, False)

    def test_gives_one_float_per_row(self, combiner):
        import numpy as np

        for rows, columns in ((0, 2), (1, 1), (1, 3), (6, 2)):  # no rows: a search that scored nothing
            scores = np.random.default_rng(rows + columns).normal(size=(rows, columns))
            fitness = combiner.combine(scores, [True] * columns)
            assert isinstance(fitness, np.ndarray) and fitness.shape == (rows,), (rows, columns)
            assert np.issubdtype(fitness.dtype, np.floating), f"fitness of dtype {fitness.dtype}, not float"

    def test_leaves_its_input_unchanged(self, combiner):
        import numpy as np

        scores = np.array([[1.0, np.nan], [2.0, 5.0], [np.inf, 4.0]])
        copy = scores.copy()
        combiner.combine(scores, [True, False])
        assert np.array_equal(scores, copy, equal_nan=True), "combine changed the scores it was given"

    def test_follows_each_proxys_direction(self, combiner):
        import numpy as np

        scores = np.array(self.column).reshape(-1, 1)
        order = np.argsort(scores[:, 0])  # rows from the lowest score to the highest
        increasing = combiner.combine(scores, [True])[order]
        decreasing = combiner.combine(scores, [False])[order]
        assert np.all(np.diff(increasing) > 0), "higher_is_better: fitness must grow with the score"
        assert np.all(np.diff(decreasing) < 0), "lower is better: fitness must fall as the score grows"

    def test_a_row_better_on_every_proxy_is_not_less_fit(self, combiner):
        import numpy as np

        scores = np.array(self.clean)
        better = scores[1] + np.array([1.0, -1.0])  # higher on the first proxy, lower on the second
        fitness = combiner.combine(np.vstack([scores, better]), self.directions)
        assert fitness[-1] >= fitness[1]

    def test_non_finite_scores_do_not_poison_others(self, combiner):
        import numpy as np

        clean = np.array(self.clean)
        expected = _pairwise_order(combiner.combine(clean, self.directions))
        nan, inf = math.nan, math.inf
        worthless = np.array([[nan, nan], [inf, -inf], [-inf, inf], [nan, inf]])  # no finite score at all
        fitness = combiner.combine(np.vstack([clean, worthless]), self.directions)
        kept = fitness[: len(clean)]
        assert np.all(np.isfinite(kept)), f"non-finite scores made other rows' fitness non-finite: {kept}"
        assert np.array_equal(_pairwise_order(kept), expected), "non-finite scores changed the others' order"
        assert np.all(fitness[len(clean):] <= kept.min()), f"a row without finite scores beats one: {fitness}"
        for bad in (nan, inf, -inf):
            mixed = combiner.combine(np.vstack([clean, [[bad, 2.5], [704.0, bad]]]), self.directions)
            assert np.all(np.isfinite(mixed[: len(clean)])), f"a {bad} score made other rows' fitness non-finite"
            for higher_is_better in (True, False):
                # on its own proxy a non-finite score is the worst, and leaves the finite ones' order alone
                column = np.array([*clean[:, 0], bad, 704.0]).reshape(-1, 1)
                finite = np.isfinite(column[:, 0])
                single = combiner.combine(column, [higher_is_better])
                assert np.all(single[~finite] <= single[finite].min()), (bad, higher_is_better, single)
                alone = combiner.combine(column[finite], [higher_is_better])
                assert np.array_equal(_pairwise_order(single[finite]), _pairwise_order(alone)), (bad, single)

    def test_is_invariant_to_row_order(self, combiner):
        import numpy as np

        scores = np.vstack([np.array(self.clean), [[math.nan, 2.0], [700.0, 3.0]]])  # a NaN and a tie
        permutation = np.random.default_rng(0).permutation(len(scores))
        fitness = combiner.combine(scores, self.directions)
        permuted = combiner.combine(scores[permutation], self.directions)
        assert np.allclose(permuted, fitness[permutation], equal_nan=True), "a row's fitness depends on its position"


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
    """Fitness = sum of oriented scores; enough for the toy space (a searcher contract must not need plugins).

    It does not pass CombinerContract (a NaN score makes its row's fitness NaN): the toy scores are always finite.
    """

    name = "toy-sum"

    def combine(self, scores, higher_is_better):
        import numpy as np

        signs = np.where(np.asarray(higher_is_better), 1.0, -1.0)
        return (np.asarray(scores) * signs).sum(axis=1)
