import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasx.constraints import MaxFlops
from nasx.errors import BudgetExhausted, NasxError
from nasx.evaluator import Evaluator, ScoreCache
from nasx.options import check_all_used, options_for, parse_assignments
from nasx.plugins import Plugins
from nasx.search import Budget, SearchContext
from nasx.testing.contracts import SpaceContract, SumCombiner
from nasx.testing.toy import BitSpace, OnesProxy


class TestToySpace(SpaceContract):
    @pytest.fixture
    def space(self):
        return BitSpace(dataset="toy")


def test_budget_needs_a_positive_limit():
    with pytest.raises(NasxError):
        Budget()
    with pytest.raises(NasxError, match="--max-wall must be positive"):
        Budget(max_wall=0)


def test_cache_keeps_non_finite_scores(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    for key, value in (("a", math.nan), ("b", math.inf), ("c", -math.inf), ("d", 0.1 + 0.2)):
        cache.put(key, value, 1.5)
    assert math.isnan(cache.get("a")[0])
    assert cache.get("b") == (math.inf, 1.5) and cache.get("c")[0] == -math.inf
    assert cache.get("d")[0] == 0.1 + 0.2  # exact round trip
    assert cache.get("missing") is None


def test_cache_key_names_everything_that_determines_a_score():
    space = BitSpace(dataset="toy")
    evaluator = Evaluator(space, [OnesProxy()], None)
    key = evaluator.cache_key(OnesProxy(), "01010101")
    for part in ("toy-bits", "toy", "01010101", "toy-ones"):
        assert part in key


def test_a_new_space_version_changes_every_cache_key():
    class NewBits(BitSpace):
        version = "2"

    old = Evaluator(BitSpace(dataset="toy"), [OnesProxy()], None).cache_key(OnesProxy(), "01010101")
    new = Evaluator(NewBits(dataset="toy"), [OnesProxy()], None).cache_key(OnesProxy(), "01010101")
    assert old != new


def test_a_space_without_a_dataset_uses_its_default():
    assert BitSpace().dataset == "toy"


def test_context_never_scores_twice_and_stops_on_budget():
    space = BitSpace(dataset="toy")
    context = SearchContext(space, Evaluator(space, [OnesProxy()], None), SumCombiner(), [], Budget(max_evals=2), 0)
    genotype = space.decode("11110000")
    context.evaluate(genotype)
    context.evaluate(genotype)
    assert len(context.explored) == 1
    context.evaluate(space.decode("00000000"))
    with pytest.raises(BudgetExhausted):
        context.evaluate(space.decode("00000001"))
    assert context.stop_reason == "max-evals"


@pytest.mark.parametrize("search", sorted(Plugins().names("searcher")))
def test_constraints_filter_before_scoring(monkeypatch, search):
    """Through the whole run, every genotype the evaluator scores is feasible: searchers draw through the
    context's feasibility, and nothing infeasible reaches a proxy."""
    import nasx

    scored = []
    evaluate_many = Evaluator.evaluate_many

    def recording(self, genotypes, keep_going=None):
        scored.extend(self.space.encode(genotype) for genotype in genotypes)
        return evaluate_many(self, genotypes, keep_going)

    monkeypatch.setattr(Evaluator, "evaluate_many", recording)
    result = nasx.run(space=BitSpace, dataset="toy", proxies=[OnesProxy], search=search, max_evals=30,
                      max_flops=2, cache=False)
    assert scored and result.evaluated <= 30
    assert all(arch.count("1") <= 2 for arch in scored), [arch for arch in scored if arch.count("1") > 2]
    assert result.arch.count("1") == 2  # the best feasible


def test_no_feasible_architecture_is_a_one_line_error():
    space = BitSpace(dataset="toy")
    tight = SearchContext(
        space, Evaluator(space, [OnesProxy()], None), SumCombiner(), [MaxFlops(limit=-1)], Budget(max_evals=5), 0
    )
    with pytest.raises(NasxError, match="no feasible architecture"):
        tight.sample()


def test_options_scoped_and_unscoped():
    assignments = parse_assignments(["repeats=2", "naswot.batch_size=32"])
    assert options_for("naswot", {"repeats": 3, "batch_size": 64}, assignments) == {"repeats": 2, "batch_size": 32}
    assert options_for("logsynflow", {"repeats": 3}, assignments) == {"repeats": 2}
    with pytest.raises(NasxError, match="not a component"):
        check_all_used(parse_assignments(["nope.x=1"]), {"naswot": {"repeats": 3}})
    with pytest.raises(NasxError):
        parse_assignments(["novalue"])


def test_synthetic_batch_is_reproducible():
    from nasx.data import synthetic_batch

    a, b = synthetic_batch((3, 8, 8), 10, size=4), synthetic_batch((3, 8, 8), 10, size=4)
    assert a.identity == b.identity and (a.images == b.images).all() and (a.labels == b.labels).all()
    assert a.take(2).images.shape == (2, 3, 8, 8)
    with pytest.raises(NasxError):
        a.take(5)


def test_synthetic_batch_travels_as_its_recipe_and_is_drawn_the_same_there():
    import pickle

    from nasx.data import synthetic_batch

    batch = synthetic_batch((3, 32, 32), 10, size=256)
    assert len(batch) == 256 and batch.identity_of(64) == batch.take(64).identity
    # a part of the batch is named apart from the whole and from other parts: their scores are cached apart
    assert len({batch.identity, batch.identity_of(64), batch.identity_of(32)}) == 3
    assert batch.identity_of(256) == batch.identity
    with pytest.raises(NasxError):
        batch.identity_of(257)
    drawn = batch.images.clone(), batch.labels.clone()
    sent = pickle.dumps(batch)
    assert len(sent) < 1000  # not the 3 MB of images
    arrived = pickle.loads(sent)
    assert (arrived.images == drawn[0]).all() and (arrived.labels == drawn[1]).all()
    assert arrived.identity == batch.identity


def test_npz_images_are_normalised(data_dir):
    import numpy as np

    from nasx.data import load_images

    batch = load_images(data_dir / "cifar10_test_foolbox20.npz", "cifar10")
    raw = np.load(data_dir / "cifar10_test_foolbox20.npz")
    assert len(batch) == 20 and list(batch.labels[:4]) == [3, 8, 8, 0]
    expected = (raw["x"][0, 0, 0, 0] / 255 - 0.4914) / 0.2470
    assert float(batch.images[0, 0, 0, 0]) == pytest.approx(expected, rel=1e-5)


def test_cifar_folder_in_torchvision_format(tmp_path):
    import pickle

    import numpy as np

    from nasx.data import load_images

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (5, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": pixels, b"labels": [1, 2, 3, 4, 5]}, handle)
    batch = load_images(tmp_path, "cifar10")
    assert batch.images.shape == (5, 3, 32, 32) and list(batch.labels) == [1, 2, 3, 4, 5]
    red = pixels[0, :1024].reshape(32, 32)
    assert float(batch.images[0, 0, 3, 7]) == pytest.approx((red[3, 7] / 255 - 0.4914) / 0.2470, rel=1e-5)
    with pytest.raises(NasxError):
        load_images(tmp_path / "missing", "cifar10")


def test_nan_scores_become_worst_not_crash():
    class NaNProxy(OnesProxy):
        name = "nan"

        def score_genotype(self, space, genotype):
            return math.nan if space.bits(genotype)[0] else 1.0

    from nasx_search.combiners import FreeREACombiner

    space = BitSpace(dataset="toy")
    context = SearchContext(
        space, Evaluator(space, [NaNProxy(), OnesProxy()], None), FreeREACombiner(), [], Budget(max_evals=50), 0
    )
    for _ in range(30):
        context.evaluate(context.sample())
    table = context.fitness_table()
    assert all(math.isfinite(v) for v in table.values())
    # a NaN-scored genotype ranks below a clean one with the same other scores
    nan_one = space.decode("10000000")
    clean_one = space.decode("01000000")
    context.evaluate(nan_one)
    context.evaluate(clean_one)
    assert context.fitness(nan_one) < context.fitness(clean_one)


def test_scoped_options_reach_the_component_of_a_shared_name_that_has_them():
    from nasx.options import check_all_used, option_table, options_for, parse_assignments

    class Searcher:
        name, defaults = "shared", {"population_size": 25}

    class Combiner:
        name, defaults = "shared", {}

    table = option_table([Searcher, Combiner])
    good = parse_assignments(["shared.population_size=3"])
    check_all_used(good, table)
    assert options_for("shared", Searcher.defaults, good) == {"population_size": 3}
    assert options_for("shared", Combiner.defaults, good) == {}
    with pytest.raises(NasxError, match="'shared' has no option 'bogus'"):
        check_all_used(parse_assignments(["shared.bogus=1"]), table)


# ---------------------------------------------------------------------------------------------------------------
# the search context under random request sequences


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 12), st.lists(st.lists(st.integers(0, 15), max_size=5), max_size=12))
def test_context_records_each_request_once_within_the_budget(max_evals, requests):
    """Lists of (possibly repeated, possibly explored) genotypes asked in turn: never more than max_evals recorded,
    nothing scored twice, the explored set is the first max_evals distinct genotypes in the order asked, and the
    fitness table covers exactly that set."""
    space = BitSpace(dataset="toy", length=4)
    evaluator = Evaluator(space, [OnesProxy()], None)
    scored = []
    evaluate_many = evaluator.evaluate_many

    def recording(genotypes, keep_going=None):
        scored.extend(space.encode(g) for g in genotypes)
        return evaluate_many(genotypes, keep_going)

    evaluator.evaluate_many = recording
    context = SearchContext(space, evaluator, SumCombiner(), [], Budget(max_evals=max_evals), seed=0)
    asked = []
    for indices in requests:
        genotypes = [space.genotype_at(i) for i in indices]
        try:
            evaluations = context.evaluate_many(genotypes)
        except BudgetExhausted:
            stopped = True
        else:
            stopped = False
            assert [e.arch for e in evaluations] == [space.encode(g) for g in genotypes]
            assert all(e.scores["toy-ones"] == e.arch.count("1") for e in evaluations)
        asked.extend(space.encode(g) for g in genotypes)
        # the budget signal comes exactly when some genotype asked for could not be scored
        assert stopped == (not {space.encode(g) for g in genotypes} <= {e.arch for e in context.explored.values()})
    first = list(dict.fromkeys(asked))[:max_evals]
    assert [e.arch for e in context.explored.values()] == first
    assert scored == first  # each scored once, in the order first asked
    assert set(context.fitness_table()) == set(context.explored) == set(context.genotypes)
    assert all(context.space.encode(context.genotypes[k]) == e.arch for k, e in context.explored.items())


@pytest.mark.parametrize("constraints, feasible", [([], 8), ([MaxFlops(limit=1.0)], 4)])
def test_explored_everything_once_every_feasible_genotype_is_scored(constraints, feasible):
    """Without constraints the context takes the space's size; with one, it counts the feasible genotypes (3 bits:
    8 genotypes, 4 with at most one set bit, whose FLOPs are their number of ones)."""
    space = BitSpace(dataset="toy", length=3)
    context = SearchContext(space, Evaluator(space, [OnesProxy()], None), SumCombiner(), constraints,
                            Budget(max_evals=100), seed=0)
    allowed = [space.genotype_at(i) for i in range(len(space)) if sum(space.bits(space.genotype_at(i))) <= 1
               or not constraints]
    assert len(allowed) == feasible
    context.evaluate_many(allowed[:-1])
    assert not context.explored_everything()
    context.evaluate_many(allowed[-1:])
    assert context.explored_everything()
