"""The Optuna searcher: the searcher contract on the toy space, TPE and NSGA-II on nats-tss, constraints told to
Optuna, a stored study, and bad samplers."""

import pytest

import nasx
from nasx.constraints import MaxFlops
from nasx.errors import NasxError
from nasx.evaluator import Evaluator
from nasx.search import Budget, SearchContext, run_search
from nasx.testing.contracts import SearcherContract, SumCombiner
from nasx.pareto import dominates
from nasx.testing.toy import BitSpace, OnesProxy
from nasx_nats.tss import NatsTopologySpace
from nasx_optuna.searcher import OptunaSearcher


class ToyCategorical(BitSpace):
    """The toy bit space (one categorical gene per bit), under its own name."""

    name = "toy-categorical"


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
class TestOptunaSearcher(SearcherContract):
    @pytest.fixture
    def searcher(self, sampler):
        return OptunaSearcher(sampler=sampler, patience=60)

    def test_finds_the_optimum_of_an_easy_space(self, searcher, sampler):
        if sampler == "nsga2":  # Optuna's NSGA-II needs generations of 50 trials: 120 evaluations are 2 of them
            pytest.skip("NSGA-II's default population needs more than 120 evaluations")
        super().test_finds_the_optimum_of_an_easy_space(searcher)


def toy_context(constraints=(), budget=30, seed=0, length=8):
    space = ToyCategorical(dataset="toy", length=length)
    return SearchContext(space, Evaluator(space, [OnesProxy()], None), SumCombiner(), list(constraints),
                         Budget(max_evals=budget), seed=seed)


def test_infeasible_trials_are_pruned_with_their_constraint_values(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    context = toy_context([MaxFlops(limit=3)], budget=10, length=6)
    run_search(OptunaSearcher(storage=storage, study_name="toy"), context)
    study = optuna.load_study(study_name="toy", storage=storage)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and len({t.user_attrs["arch"] for t in complete}) == 10
    for trial in pruned:  # FLOPs of the toy space = its ones; the value is the excess over the limit
        assert trial.constraints["max-flops"] == trial.user_attrs["arch"].count("1") - 3 > 0
    for trial in complete:
        assert trial.constraints["max-flops"] <= 0
        assert trial.values == [float(trial.user_attrs["arch"].count("1"))]  # the toy fitness: its ones
    assert all(e.arch.count("1") <= 3 for e in context.explored.values())


def test_a_named_study_is_continued(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for _ in range(2):
        run_search(OptunaSearcher(storage=storage, study_name="again"), toy_context(budget=3))
    assert len(optuna.load_study(study_name="again", storage=storage).trials) >= 6


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random", "qmc", "optuna.samplers.CmaEsSampler"])
def test_same_seed_same_search(sampler):
    runs = [[e.arch for e in run_search(OptunaSearcher(sampler=sampler), toy_context(budget=15, seed=3)).history]
            for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 15


@pytest.mark.parametrize("bad", ["cmaes", "optuna.samplers.NoSuchSampler", "random.Random", "nosuchmodule.X"])
def test_unknown_samplers_are_refused_in_one_line(bad):
    with pytest.raises(NasxError, match="Optuna sampler") as error:
        OptunaSearcher(sampler=bad)
    assert "\n" not in str(error.value)


class PlainBits(BitSpace):
    """The toy space without its categorical genes."""

    def categorical(self):
        return None


def test_a_space_without_categorical_genes_is_refused():
    space = PlainBits(dataset="toy")
    context = SearchContext(space, Evaluator(space, [OnesProxy()], None), SumCombiner(), [], Budget(max_evals=5),
                            seed=0)
    with pytest.raises(NasxError, match="categorical encoding"):
        run_search(OptunaSearcher(), context)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_nats_tss_front_with_cheap_proxies(sampler, data_dir):
    result = nasx.run(space="nats-tss", proxies=["params", "skip"], search="optuna", seed=1, max_evals=12,
                      objectives=["skip", "flops"], options={"optuna.sampler": sampler},
                      data_dir=data_dir, cache=False)
    assert result.evaluated == 12 and result.search == "optuna"
    assert result.front and all(m["test_accuracy"] is not None for m in result.front)
    # the front is the non-dominated part of what was scored (skip up, FLOPs down), checked pair by pair
    space = NatsTopologySpace(dataset="cifar10")
    scored = {h["arch"]: (h["scores"]["skip"], -space.cost(space.decode(h["arch"])).flops_m) for h in result.history}
    front = {m["arch"] for m in result.front}
    for arch, point in scored.items():
        dominated = any(dominates(other, point) for other in scored.values())
        assert dominated == (arch not in front), arch
    # from the true front's worst accuracy, 12 cells may add no volume at all: the ratio is what the volumes say
    assert 0 <= result.hypervolume_ratio <= 1
    assert result.hypervolume_ratio == pytest.approx(result.hypervolume["found"] / result.hypervolume["true"])
    again = nasx.run(space="nats-tss", proxies=["params", "skip"], search="optuna", seed=1, max_evals=12,
                     objectives=["skip", "flops"], options={"optuna.sampler": sampler},
                     data_dir=data_dir, cache=False)
    assert [h["arch"] for h in again.history] == [h["arch"] for h in result.history]


def test_limits_no_trial_meets_are_one_line():
    context = toy_context([MaxFlops(limit=-1)], budget=5, length=4)  # no cell has negative FLOPs
    with pytest.raises(NasxError, match=r"no feasible architecture in \d+ trials under max-flops"):
        run_search(OptunaSearcher(patience=20), context)


def test_loading_the_plugins_does_not_import_optuna():
    """Its option check runs whenever the plugins load; a built-in sampler name needs no optuna to be known."""
    import subprocess
    import sys

    script = ("import sys; from nasx.plugins import Plugins; Plugins().get('searcher', 'optuna'); "
              "print('optuna' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"
