"""Contract test suites. A plugin's tests subclass one and provide the fixtures it names, e.g.::

    class TestMySpace(SpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace(dataset="cifar10")

Importing this module does not need pytest; running the checks does (they import it themselves).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import random
import time

from nasx.errors import BudgetExhausted, InvalidGenotype, NasxError
from nasx.evaluator import Evaluator
from nasx.interfaces import EnumerableSpace, EvolvableSpace, Proxy, Space, Task
from nasx.search import Budget, SearchContext, SearchResult, run_search


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
        assert isinstance(space, Space), f"{type(space).__name__} does not subclass nasx.Space"
        assert isinstance(space.name, str) and space.name, "a space needs a name"
        assert _dataset_is_known(space)

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
            assert isinstance(text, str), f"encode gave {type(text).__name__}, not a string"
            assert space.encode(space.decode(text)) == text, f"decode(encode(g)) is not g: {text}"
            assert space.key(space.decode(text)) == space.key(genotype), f"decoding changed the key of {text}"

    def test_genotypes_are_frozen(self, space):
        import networkx as nx

        genotype = space.sample(random.Random(0))
        assert nx.is_frozen(genotype), "sample gave a genotype that is not frozen"
        assert nx.is_frozen(space.decode(space.encode(genotype))), "decode gave a genotype that is not frozen"

    def test_malformed_string_is_rejected(self, space):
        try:
            genotype = space.decode("this is not an architecture")
        except InvalidGenotype:
            return
        except Exception as error:  # any other exception is the failure this check reports
            raise AssertionError(f"decode raised {type(error).__name__}, not InvalidGenotype: {error}") from None
        raise AssertionError(f"decode accepted malformed text as {space.encode(genotype)!r}")

    def test_costs_are_finite_and_non_negative(self, space):
        from nasx.interfaces import Cost

        rng = random.Random(1)
        costs = [space.cost(space.sample(rng)) for _ in range(self.samples)]
        for cost in costs:
            assert isinstance(cost, Cost), f"cost gave {cost!r}, not a nasx.Cost"
            for value in (cost.flops_m, cost.params_m):
                assert isinstance(value, numbers.Real) and not isinstance(value, bool), f"{cost}: not numbers"
                assert math.isfinite(value) and value >= 0, f"{cost}: a cost is finite and not negative"
        assert any(cost.params_m > 0 for cost in costs), f"no parameters in any of {self.samples} genotypes"

    def test_subsets_are_described_and_test_membership(self, space):
        if not space.subsets:
            _skip("the space declares no subsets")
        assert isinstance(space.subsets, dict)
        rng = random.Random(5)
        genotypes = [space.sample(rng) for _ in range(self.samples)]
        for name, description in space.subsets.items():
            assert isinstance(name, str) and name and isinstance(description, str) and description, (
                f"subset {name!r} needs a name and a one-line description")
            try:
                members = [space.in_subset(name, genotype) for genotype in genotypes]
            except NasxError as error:
                raise AssertionError(f"in_subset({name!r}) of a declared subset raised: {error}") from None
            assert all(isinstance(member, bool) for member in members), f"in_subset({name!r}) must give bools"
        try:
            space.in_subset("no such subset", genotypes[0])
        except NasxError:
            return
        raise AssertionError("in_subset accepted an unknown subset name (it must raise NasxError)")

    def test_sampling_is_reproducible(self, space):
        first = [space.encode(space.sample(random.Random(7))) for _ in range(3)]
        second = [space.encode(space.sample(random.Random(7))) for _ in range(3)]
        assert first == second, "one seed gave different genotypes: does sample use the rng it is given?"
        rng = random.Random(7)
        drawn = {space.encode(space.sample(rng)) for _ in range(10)}
        assert len(drawn) > 1, "ten draws from one generator gave one genotype"

    def test_mutation_and_crossover_give_valid_genotypes(self, space):
        import networkx as nx

        if not isinstance(space, EvolvableSpace):
            _skip("not an evolvable space")
        rng = random.Random(3)
        for _ in range(self.samples):
            a, b = space.sample(rng), space.sample(rng)
            before = space.encode(a), space.encode(b)
            state = rng.getstate()
            child = space.mutate(a, rng)
            assert space.encode(a) == before[0], "mutate changed its parent"
            rng.setstate(state)
            assert space.encode(space.mutate(a, rng)) == space.encode(child), "mutate with one rng state differs"
            offspring = space.crossover(a, b, rng)
            assert (space.encode(a), space.encode(b)) == before, "crossover changed a parent"
            for made, operator in ((child, "mutate"), (offspring, "crossover")):
                assert nx.is_frozen(made), f"{operator} gave a genotype that is not frozen"
                text = space.encode(made)
                assert space.encode(space.decode(text)) == text, f"{operator} gave {text}, which does not round-trip"
            assert space.encode(child) != space.encode(a), f"mutate left {before[0]} unchanged"
            # every gene of a child comes from a parent: a genotype crossed with itself is itself
            assert space.encode(space.crossover(a, a, rng)) == before[0], "crossover(g, g) is not g"

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
            assert space.encode(space.from_categorical(values)) == space.encode(genotype), (
                "from_categorical(to_categorical(g)) is not g")
            drawn = {name: rng.choice(choices) for name, choices in genes}
            try:
                decoded = space.from_categorical(drawn)
            except InvalidGenotype:
                continue  # values that make no genotype may exist
            assert space.to_categorical(decoded) == drawn, "from_categorical must keep the values it is given"

    def test_enumeration_is_consistent(self, space):
        if not isinstance(space, EnumerableSpace):
            _skip("not an enumerable space")
        assert len(space) > 0
        rng = random.Random(5)
        for index in rng.sample(range(len(space)), min(20, len(space))):
            assert space.index_of(space.genotype_at(index)) == index, f"index_of(genotype_at({index})) != {index}"
        for _ in range(self.samples):
            genotype = space.sample(rng)
            index = space.index_of(genotype)
            assert 0 <= index < len(space) and space.encode(space.genotype_at(index)) == space.encode(genotype)

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
        assert adapted.num_classes == 7 and adapted.input_shape == task.input_shape, (
            f"for_data gave {adapted.num_classes} classes and input {adapted.input_shape}, not the task's 7 and "
            f"{task.input_shape}")
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
        assert isinstance(proxy, Proxy) and isinstance(proxy.name, str) and proxy.name
        assert isinstance(proxy.higher_is_better, bool), "higher_is_better must be a bool"
        for trait in ("needs_data", "needs_labels", "needs_gradients", "needs_network"):
            assert isinstance(getattr(proxy, trait), bool), f"{trait} must be a bool"
        assert isinstance(proxy.version, str) and proxy.version, "version must be a non-empty string"

    def test_scores_are_floats_and_reproducible(self, proxy, space, batch):
        evaluator = Evaluator(space, [proxy], batch, init_seed=0)
        genotype = space.sample(random.Random(11))
        with _returned_scores(proxy) as returned:
            first = evaluator.evaluate(genotype)
        # the evaluator turns an exception into a NaN score: a proxy that raises is caught here, by its error
        assert not first.errors, f"the proxy raised instead of returning a score: {first.errors[proxy.name]}"
        assert returned and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in returned), (
            f"the proxy returned {[type(v).__name__ for v in returned]}, not real numbers")
        evaluator.cache.db.execute("DELETE FROM scores")  # the second score is computed again, not replayed
        second = evaluator.evaluate(genotype)
        assert not second.errors, second.errors
        first_score, second_score = first.scores[proxy.name], second.scores[proxy.name]
        assert _same_score(first_score, second_score), (first_score, second_score)

    def test_some_sampled_genotype_scores_finitely(self, proxy, space, batch):
        # NaN is allowed for degenerate networks, but a proxy that is never finite ranks nothing
        evaluator = Evaluator(space, [proxy], batch, init_seed=0)
        rng = random.Random(17)
        scores = (evaluator.evaluate(space.sample(rng)).scores[proxy.name] for _ in range(self.finite_samples))
        assert any(math.isfinite(score) for score in scores), f"no finite score on {self.finite_samples} genotypes"

    def test_leaves_the_network_as_it_found_it(self, proxy, space, batch):
        """A network is built once per architecture and handed to each proxy in turn, initialised afresh (and a
        worker may keep it for a later task of its architecture): scoring must change no weight, and leave nothing
        behind that changes a later score (gradients, hooks, a mode)."""
        if not proxy.needs_network:
            _skip("genotype proxy")
        import torch

        from nasx.torch_utils import initialise

        network = space.build(space.sample(random.Random(2)))
        data = batch.take(proxy.batch_size) if proxy.needs_data else None
        initialise(network, "kaiming", seed=0)  # as the evaluator hands it over
        before = {k: v.clone() for k, v in network.named_parameters()}
        first = float(proxy.score_network(network, data, space))
        for name, value in network.named_parameters():
            assert torch.equal(before[name], value), f"score_network changed {name}"
        initialise(network, "kaiming", seed=0)
        second = float(proxy.score_network(network, data, space))
        assert _same_score(first, second), f"scored again, the same network gave {second} instead of {first}"

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


@contextlib.contextmanager
def _returned_scores(proxy):
    """The values the proxy's scoring method returns while inside (the serial executor calls it in this process)."""
    method = "score_network" if proxy.needs_network else "score_genotype"
    original = getattr(proxy, method)
    returned = []

    def recorded(*args, **kwargs):
        value = original(*args, **kwargs)
        returned.append(value)
        return value

    setattr(proxy, method, recorded)
    try:
        yield returned
    finally:
        delattr(proxy, method)

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


def _fail(message: str) -> None:
    """pytest's failure, a BaseException: a searcher that catches every Exception cannot swallow it."""
    import pytest

    pytest.fail(message, pytrace=False)


class SearchWatch:
    """What a searcher asks of its context, what the evaluator really scores, and a watchdog.

    It wraps the context's ``evaluate_many`` (``evaluate`` goes through it), the evaluator's ``evaluate_many`` (so
    scores taken around the context are counted too) and the space's proposing operators (``sample``, ``mutate``,
    ``crossover``, ``genotype_at``). It fails at once when the searcher asks for an evaluation after the context
    raised BudgetExhausted (the signal was swallowed), and stops a runaway search: more than ``max_requests``
    requests for explored genotypes, more than ``max_proposals`` proposed genotypes, or more than
    ``max_seconds`` of wall-clock time (checked whenever the searcher calls the context or the space).
    """

    def __init__(self, context: SearchContext, max_requests: int = 20_000, max_proposals: int = 200_000,
                 max_seconds: float = 120.0) -> None:
        self.context = context
        self.max_requests, self.max_proposals, self.max_seconds = max_requests, max_proposals, max_seconds
        #: (key, already explored or asked before in the same call, feasible) of every genotype asked for
        self.requests: list[tuple[str, bool, bool]] = []
        #: every evaluation the evaluator returned, in order (computed or replayed from its cache)
        self.scored: list = []
        #: the reason of the BudgetExhausted the context raised ('' while it raised none)
        self.signalled = ""
        self.proposals = 0
        self.started = time.perf_counter()
        space, evaluator = context.space, context.evaluator
        self._key = space.key
        asked, scored = context.evaluate_many, evaluator.evaluate_many

        def evaluate_many(genotypes):
            self.tick()
            if self.signalled:
                _fail(f"the searcher asked for evaluations after the context raised BudgetExhausted "
                      f"({self.signalled}): it must let it propagate")
            seen = set(context.explored)
            for genotype in genotypes:
                key = self._key(genotype)
                self.requests.append((key, key in seen, context.is_feasible(genotype)))
                seen.add(key)
            if self.repeated_requests() > self.max_requests:
                _fail(f"the searcher asked for explored genotypes more than {self.max_requests} times: it loops "
                      "without finding anything new")
            try:
                return asked(genotypes)
            except BudgetExhausted as stop:
                self.signalled = str(stop) or "budget spent"
                raise

        def evaluator_many(genotypes, keep_going=None):
            results = scored(genotypes, keep_going)
            self.scored.extend(evaluation for evaluation in results if evaluation is not None)
            return results

        context.evaluate_many = evaluate_many
        evaluator.evaluate_many = evaluator_many
        for name in ("sample", "mutate", "crossover", "genotype_at"):
            if hasattr(space, name):
                setattr(space, name, self._proposing(getattr(space, name)))
        space.key = lambda genotype: (self.tick(), self._key(genotype))[1]

    def _proposing(self, operator):
        def proposed(*args, **kwargs):
            self.tick()
            self.proposals += 1
            if self.proposals > self.max_proposals:
                _fail(f"the searcher proposed more than {self.max_proposals} genotypes: it loops without finding "
                      "anything new")
            return operator(*args, **kwargs)

        return proposed

    def tick(self) -> None:
        if time.perf_counter() - self.started > self.max_seconds:
            _fail(f"the search ran for more than {self.max_seconds:.0f} s: it does not stop")

    def repeated_requests(self) -> int:
        """Requests for genotypes that were explored (or asked for earlier in the same call) when asked."""
        return sum(repeated for _, repeated, _ in self.requests)

    def run(self, searcher) -> SearchResult:
        """``run_search`` of ``searcher`` on the watched context; fails when it caught BudgetExhausted."""
        return run_search(_Propagating(searcher, self), self.context)


class _Propagating:
    """Runs a searcher and fails when it returns normally after the context raised BudgetExhausted."""

    def __init__(self, searcher, watch: SearchWatch) -> None:
        self.searcher, self.watch = searcher, watch
        self.name, self.requires = searcher.name, searcher.requires

    def search(self, context: SearchContext) -> None:
        self.searcher.search(context)
        if self.watch.signalled:
            _fail(f"the searcher caught BudgetExhausted ({self.watch.signalled}) and returned: it must let it "
                  "propagate")


class SearcherContract:
    """Needs ``searcher`` (a Searcher instance). Runs on the toy bit space, where the optimum is all ones, through
    a :class:`SearchWatch`: every check also fails when the searcher swallows BudgetExhausted or runs away."""

    #: requests for explored genotypes allowed per evaluation in ``test_never_scores_twice``, on chains too long
    #: to exhaust: asking is legal (a child may happen to be explored), but a searcher that keeps asking for what
    #: it has explored makes no progress
    repeated_requests_per_evaluation = 0.5

    def make_context(self, budget, seed=0, constraints=(), length=8, enumerable=True):
        """A context on the toy bit space (``enumerable=False``: the same chains without official indices, which
        the context would otherwise count through, so they may be long)."""
        from nasx.testing.toy import BitChains, BitSpace, OnesProxy

        space = (BitSpace if enumerable else BitChains)(dataset="toy", length=length)
        evaluator = Evaluator(space, [OnesProxy()], None)
        return SearchContext(space, evaluator, SumCombiner(), list(constraints), budget, seed=seed)

    def watched_run(self, searcher, context) -> tuple[SearchResult, SearchWatch]:
        watch = SearchWatch(context)
        return watch.run(searcher), watch

    def test_respects_max_evals(self, searcher):
        context = self.make_context(Budget(max_evals=20))
        result, watch = self.watched_run(searcher, context)
        scored = [evaluation.key for evaluation in watch.scored]
        assert len(scored) <= 20, f"{len(scored)} genotypes scored under max_evals=20"
        # every score was asked through the context, which keeps the budget: none around it
        assert scored == list(context.explored), "genotypes were scored around the context (context.evaluator)"
        assert result.evaluated == len(scored)

    def test_never_scores_twice(self, searcher):
        # 48 bits: 40 evaluations reach neither the optimum nor the end of any neighbourhood, so a searcher finds
        # unexplored genotypes wherever it looks (a searcher that needs official indices gets 12 bits)
        enumerable = issubclass(searcher.requires, EnumerableSpace)
        context = self.make_context(Budget(max_evals=40), length=12 if enumerable else 48, enumerable=enumerable)
        _, watch = self.watched_run(searcher, context)
        scored = [evaluation.key for evaluation in watch.scored]
        assert len(scored) == len(set(scored)), "a genotype was scored twice"
        allowance = self.repeated_requests_per_evaluation * len(scored)
        assert watch.repeated_requests() <= allowance, (
            f"{watch.repeated_requests()} requests for explored genotypes for {len(scored)} evaluations: the searcher "
            "asks for what it has explored instead of exploring")

    def test_returns_the_best_explored(self, searcher):
        context = self.make_context(Budget(max_evals=30))
        result, watch = self.watched_run(searcher, context)
        assert [e.arch for e in result.history] == [e.arch for e in watch.scored], (
            "the result's history is not what was scored (did the searcher change context.explored?)")
        best = max(evaluation.scores["toy-ones"] for evaluation in watch.scored)
        assert result.scores["toy-ones"] == best, f"result {result.arch} is not the best scored ({best} ones)"

    def test_is_reproducible(self, searcher):
        import numpy as np

        runs = []
        state, numpy_state = random.getstate(), np.random.get_state()
        try:
            for global_seed in (1, 2):
                # the global generators start elsewhere in each run: a searcher that draws from them (not from
                # context.rng) does not repeat itself
                random.seed(global_seed)
                np.random.seed(global_seed)
                result, watch = self.watched_run(searcher, self.make_context(Budget(max_evals=25), seed=4))
                runs.append(([e.arch for e in result.history], [key for key, _, _ in watch.requests]))
        finally:
            random.setstate(state)
            np.random.set_state(numpy_state)
        assert runs[0][0] == runs[1][0], "two runs with one seed scored different genotypes"
        assert runs[0][1] == runs[1][1], "two runs with one seed asked for different genotypes"

    def test_honours_constraints(self, searcher):
        from nasx.constraints import MaxFlops

        context = self.make_context(Budget(max_evals=30), constraints=[MaxFlops(limit=4)])
        result, watch = self.watched_run(searcher, context)
        infeasible = [key for key, _, feasible in watch.requests if not feasible]
        assert not infeasible, f"{len(infeasible)} requests for infeasible genotypes"
        assert all(e.arch.count("1") <= 4 for e in result.history)

    def test_stops_when_the_space_is_exhausted(self, searcher):
        # 16 genotypes, a budget far beyond them: the searcher must stop by itself (or by the context's "space
        # exhausted"), not ask for explored genotypes forever; the watch fails a search that runs away
        context = self.make_context(Budget(max_evals=10_000), length=4)
        result, watch = self.watched_run(searcher, context)
        assert result.evaluated <= 16 and len(watch.scored) == result.evaluated

    def test_finds_the_optimum_of_an_easy_space(self, searcher):
        result, _ = self.watched_run(searcher, self.make_context(Budget(max_evals=120), seed=1))
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
