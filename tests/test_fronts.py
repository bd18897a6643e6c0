"""Measured latency, several objectives, fronts and their hypervolume ratio, as a user meets them (API and CLI)."""

import csv
import gzip
import math
import sys

import numpy as np
import pytest

import nasx
from nasx.errors import NasxError
from nasx.evaluator import ScoreCache
from nasx.interfaces import Oracle, Proxy
from nasx.latency import LatencyMeter
from nasx.pareto import dominates
from nasx.settings import Latency
from nasx.testing.toy import BitSpace, OnesProxy


class TinyNets(BitSpace):
    """The toy bit space with networks: a two-layer perceptron whose width grows with the ones, so that latency
    grows with them too."""

    name = "toy-nets"

    def build(self, genotype):
        from torch import nn

        width = 8 + 256 * sum(self.bits(genotype))
        return nn.Sequential(nn.Flatten(), nn.Linear(self.length, width), nn.ReLU(), nn.Linear(width, 2))


class ToyOracle(Oracle):
    """Accuracy of a toy cell: 10 per one in the left half, 1 per one in the right half."""

    source = "toy"

    def __init__(self, space):
        self.space = space

    def test_accuracy(self, genotype):
        bits = self.space.bits(genotype)
        half = len(bits) // 2
        return float(10 * sum(bits[:half]) + sum(bits[half:]))


class BenchmarkedToy(BitSpace):
    name = "toy-benchmarked"

    def oracle(self, data_dir):
        return ToyOracle(self)


class ToyAccuracy(Proxy):
    """A perfect proxy of the toy oracle."""

    name = "toy-accuracy"
    needs_network = False

    def score_genotype(self, space, genotype):
        return ToyOracle(space).test_accuracy(genotype)


def tiny_meter(cache, **settings):
    space = TinyNets(dataset="toy")
    return space, LatencyMeter(space, Latency(warmup=1, repeats=3, **settings), cache, "cpu")


# latency -------------------------------------------------------------------------------------------------------


def test_latency_is_measured_once_then_cached(tmp_path):
    cache = ScoreCache(tmp_path / "cache.sqlite")
    space, meter = tiny_meter(cache)
    genotype = space.decode("11000000")
    first = meter.latency(genotype)
    assert meter.latency(genotype) == first and meter.measured == 1
    assert 0 < first.min_ms <= first.q1_ms <= first.median_ms <= first.q3_ms <= first.max_ms and first.runs == 3
    cache.close()
    again_cache = ScoreCache(tmp_path / "cache.sqlite")
    _, again = tiny_meter(again_cache)
    assert again.latency(genotype) == first and again.measured == 0  # from the file: nothing measured


def test_cached_latencies_are_measured_again_when_the_machine_runs_at_another_speed(monkeypatch, tmp_path):
    cache = ScoreCache(tmp_path / "cache.sqlite")
    space, meter = tiny_meter(cache)
    genotype = space.decode("11000000")
    first = meter.latency(genotype)
    base = meter.reference_ms
    assert base > 0 and not meter.warnings

    def meter_at(speed: float):
        """A new meter on the same cache, on a machine running the reference network ``speed`` x as long."""
        monkeypatch.setattr(LatencyMeter, "reference_ms", property(lambda self: base * speed))
        return tiny_meter(cache)[1]

    steady = meter_at(1.3)
    assert steady.latency(genotype) == first and steady.measured == 0 and not steady.warnings
    slower = meter_at(2.0)
    slower.latency(genotype)
    assert slower.measured == 1 and slower.machine_epoch == meter.machine_epoch + 1
    assert "2.00x as long as when the cached latencies were measured" in slower.warnings[0]
    again = meter_at(2.1)  # the new set was measured at this speed: reused
    assert again.latency(genotype) == slower.latency(genotype) and again.measured == 0 and not again.warnings
    back = meter_at(1.0)  # against the newest reference (2x): set aside again
    back.latency(genotype)
    assert back.measured == 1 and back.warnings


def test_the_reference_network_leaves_torchs_random_state_alone():
    import torch

    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    space, meter = tiny_meter(ScoreCache(None))
    assert meter.reference_ms > 0
    assert torch.equal(torch.rand(4), expected)


@pytest.mark.parametrize("change", [{"threads": 2}, {"batch": 4}, {"runtime": "onnxruntime"}, {"repeats": 4}])
def test_the_cache_key_changes_with_what_changes_a_latency(change, tmp_path):
    pytest.importorskip("onnxruntime")
    cache = ScoreCache(None)
    space, meter = tiny_meter(cache)
    settings = {"warmup": 1, "repeats": 3, **change}
    other = LatencyMeter(space, Latency(**settings), cache, "cpu")
    assert other.key("10101010") != meter.key("10101010")
    meter.latency(space.decode("10101010"))
    other.latency(space.decode("10101010"))
    assert other.measured == 1  # the first meter's measurement is not reused
    identity = meter.identity
    assert identity["device_name"] and identity["torch"] and identity["input"] == [1, 1, 1, 8]


def test_onnxruntime_runtime_measures_the_exported_network():
    pytest.importorskip("onnxruntime")
    space, meter = tiny_meter(ScoreCache(None), runtime="onnxruntime")
    assert meter.identity["onnxruntime"]
    assert meter.latency(space.decode("11110000")).median_ms > 0


def test_threads_are_restored_after_a_measurement():
    import torch

    before = torch.get_num_threads()
    space, meter = tiny_meter(ScoreCache(None), threads=1)
    meter.latency(space.decode("00000001"))
    assert torch.get_num_threads() == before


def test_latency_is_measured_before_scoring_and_only_for_cheaply_feasible_cells(monkeypatch, tmp_path):
    measured: list[str] = []
    original = LatencyMeter.measure
    monkeypatch.setattr(LatencyMeter, "measure",
                        lambda self, g: measured.append(self.space.encode(g)) or original(self, g))

    class Checked(OnesProxy):
        name = "toy-checked"

        def score_genotype(self, space, genotype):
            assert space.encode(genotype) in measured, "scored before its latency was measured"
            return super().score_genotype(space, genotype)

    options = dict(space=TinyNets, dataset="toy", proxies=[Checked], search="random", max_evals=12, seed=1,
                   max_flops=5, max_latency=1e6, latency_repeats=2, latency_warmup=0, cache=tmp_path / "c.sqlite")
    result = nasx.run(**options)
    assert all(arch.count("1") <= 5 for arch in measured)  # cells over the FLOPs limit are never timed
    assert result.latencies_measured == len(measured) > 0 and result.latency_ms > 0
    assert set(result.latency) >= {"median_ms", "min_ms", "max_ms", "iqr_ms", "runs", "runtime", "device_name",
                                   "threads", "batch", "reference_ms"}
    measured.clear()
    again = nasx.run(**options)
    assert again.latencies_measured == 0 and not measured and again.latency_ms == result.latency_ms


@pytest.mark.parametrize("search", ["freerea", "random", "nsga2"])
def test_a_short_budget_measures_only_the_latencies_it_scores(search, tmp_path):
    """A budget smaller than a searcher's first draw (FreeREA draws 25): the cells beyond it are not drawn, so no
    latency is measured for a cell that is never scored, and the scored cells are those of the search without
    latency."""
    common = dict(space=TinyNets, dataset="toy", proxies=[OnesProxy], search=search, max_evals=4, seed=3)
    timed = nasx.run(**common, max_latency=1e6, latency_repeats=1, latency_warmup=0, cache=tmp_path / "c.sqlite")
    plain = nasx.run(**common, cache=tmp_path / "plain.sqlite")
    assert timed.latencies_measured == 4 == len(timed.history)
    assert [e["arch"] for e in timed.history] == [e["arch"] for e in plain.history]
    assert timed.stop_reason == plain.stop_reason == "max-evals"


def test_a_latency_limit_no_cell_meets_is_one_line():
    with pytest.raises(NasxError, match=r"no feasible architecture in \d+ draws under max-latency\(limit=1e-09 ms\)"
                                        r", measured with torch on cpu") as error:
        nasx.run(space=TinyNets, dataset="toy", proxies=[OnesProxy], max_latency=1e-9, latency_repeats=1,
                 latency_warmup=0, cache=False)
    assert "\n" not in str(error.value)


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if it were not installed
    with pytest.raises(NasxError, match=r"needs onnx and onnxruntime .*nasx\[export\]"):
        nasx.run(space=TinyNets, dataset="toy", proxies=[OnesProxy], max_latency=10, cache=False,
                 latency_runtime="onnxruntime")


# objectives and fronts -----------------------------------------------------------------------------------------


def test_the_front_is_the_non_dominated_part_of_the_scored_cells():
    result = nasx.run(space=BitSpace, dataset="toy", proxies=[OnesProxy, ToyAccuracy], search="random",
                      max_evals=40, seed=5, objectives=["toy-accuracy", "flops", "toy-ones"], cache=False)
    space = BitSpace(dataset="toy")
    points = {h["arch"]: (h["scores"]["toy-accuracy"], -space.cost(space.decode(h["arch"])).flops_m,
                          h["scores"]["toy-ones"]) for h in result.history}
    front = {m["arch"] for m in result.front}
    for arch, point in points.items():  # non-dominated and complete
        assert any(dominates(other, point) for other in points.values()) == (arch not in front)
    member = result.front[0]
    assert set(member) >= {"arch", "index", "objectives", "scores", "fitness", "flops_m", "params_m", "test_accuracy"}
    assert member["objectives"]["flops"] == member["flops_m"] == member["arch"].count("1")
    assert result.no_hypervolume and result.hypervolume_ratio is None  # no ground truth


def test_hypervolume_ratio_is_one_for_the_whole_space_and_less_for_part_of_it():
    options = dict(space=BenchmarkedToy, dataset="toy", proxies=[ToyAccuracy], objectives=["fitness", "params"],
                   cache=False)
    whole = nasx.run(search="exhaustive", max_evals=256, **options)
    assert whole.hypervolume_ratio == pytest.approx(1.0)
    # by hand: the best cells with k ones put them left: accuracy 10k (k <= 4), 40 + (k - 4) beyond; params k / 10;
    # reference: the true front's worst accuracy (0, the cell without ones) and the largest params 0.8, so the
    # staircase's area is a sum of strips
    best = [10 * k if k <= 4 else 40 + (k - 4) for k in range(9)]
    area = sum((0.8 - k / 10) * (best[k] - (best[k - 1] if k else 0)) for k in range(9))
    assert whole.hypervolume["true"] == pytest.approx(area)
    assert whole.hypervolume["reference"] == {"test_accuracy": 0.0, "params": pytest.approx(0.8)}
    # ties: with k <= 4 ones, any k of the left four; beyond, the left four and any k - 4 of the right four
    assert len(whole.true_front) == sum(math.comb(4, k) for k in range(5)) + sum(math.comb(4, k) for k in range(1, 5))
    part = nasx.run(search="random", max_evals=20, seed=0, **options)
    assert 0 < part.hypervolume_ratio < 1


def test_true_front_of_nats_tss_against_brute_force(data_dir):
    from nasx.objectives import true_front
    from nasx_nats.tss import NatsTopologySpace

    space = NatsTopologySpace(dataset="cifar10")
    with gzip.open(data_dir / "nats_tss.csv.gz", "rt") as handle:
        rows = list(csv.DictReader(handle))
    accuracy = np.array([float(r["cifar10_test_acc"]) for r in rows])
    params = np.array([float(r["cifar10_params_M"]) for r in rows])
    on_front = set()
    for start in range(0, len(rows), 1000):  # i is dominated when some j is as good in both and better in one
        a, p = accuracy[start:start + 1000, None], params[start:start + 1000, None]
        dominated = ((accuracy >= a) & (params <= p) & ((accuracy > a) | (params < p))).any(axis=1)
        on_front |= {rows[start + i]["arch"] for i in np.flatnonzero(~dominated)}
    front = true_front(space, space.oracle(data_dir), ["params"], [])
    assert {m["arch"] for m in front.members} == on_front
    # the floor of the hypervolumes: the front's worst accuracy (its cheapest member's), the space's largest params
    worst_on_front = min(accuracy[i] for i, row in enumerate(rows) if row["arch"] in on_front)
    assert worst_on_front > 80
    assert front.reference == [pytest.approx(worst_on_front), pytest.approx(params.max())]


def test_a_latency_objective_front_has_true_accuracy_but_no_ratio(tmp_path):
    result = nasx.run(space=BenchmarkedTinyNets, dataset="toy", proxies=[ToyAccuracy], search="random", max_evals=6,
                      objectives=["fitness", "latency"], latency_repeats=2, latency_warmup=0, cache=False)
    assert result.front and all(m["latency_ms"] > 0 and m["test_accuracy"] is not None for m in result.front)
    assert all(m["objectives"]["latency"] == m["latency_ms"] for m in result.front)
    assert "latency of every architecture" in result.no_hypervolume
    assert result.latencies_measured == 6


class BenchmarkedTinyNets(TinyNets):
    name = "toy-benchmarked-nets"

    def oracle(self, data_dir):
        return ToyOracle(self)


@pytest.mark.parametrize("objectives, message", [
    (["fitness"], "a front needs two or more objectives"),
    (["fitness", "parms"], "unknown objective 'parms' (--objective); did you mean 'params'?"),
    (["fitness", "fitness"], "named twice"),
])
def test_bad_objectives(objectives, message):
    with pytest.raises(NasxError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        nasx.run(space=BitSpace, dataset="toy", proxies=[OnesProxy], objectives=objectives, cache=False)


def test_plot_needs_objectives():
    with pytest.raises(NasxError, match="--plot draws the front"):
        nasx.run(space=BitSpace, dataset="toy", proxies=[OnesProxy], plot="x.png", cache=False)


# the command line ----------------------------------------------------------------------------------------------


def cli(capsys, *args):
    """The command line in this process (as ``nasx ARGS``): (exit status, stdout, stderr)."""
    from nasx_cli.main import main

    try:
        main(list(args))
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("args, message", [
    (["--objective", "fitness", "--objective", "accuracy"], "unknown objective 'accuracy'"),
    (["--objective", "fitness"], "a front needs two or more objectives"),
    (["--objective", "fitness", "--objective", "naswot"], "objective 'naswot' is a proxy this search does not "
                                                          "score: add --proxy naswot"),
    (["--max-latency", "5", "--latency-runtime", "tensorrt"], "unknown latency runtime 'tensorrt'"),
    (["--max-latency", "0"], "--max-latency must be a positive finite number"),
    (["--max-latency", "5", "--latency-batch", "0"], "--latency-batch must be a positive integer"),
    (["--search", "optuna", "-o", "optuna.sampler=cmaes"], "unknown Optuna sampler 'cmaes'"),
    (["--search", "optuna", "-o", "optuna.sampler=optuna.samplers.Nope"], "cannot import it"),
    (["--plot", "front.png"], "--plot draws the front of a search with two or more --objective"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    status, _, error = cli(capsys, "run", "--proxy", "skip", "--no-cache", "--quiet", *args)
    assert status == 2, error
    assert message in error
    assert len(error.strip().splitlines()) == 1, error


def test_cli_front_table_json_and_plot(tmp_path, data_dir, capsys):
    out, plot = tmp_path / "front.json", tmp_path / "front.png"
    status, printed, error = cli(
        capsys, "run", "--space", "nats-tss", "--proxy", "skip", "--proxy", "params", "--search", "nsga2",
        "--max-evals", "12", "--objective", "skip", "--objective", "flops", "--data-dir", str(data_dir),
        "--no-cache", "--quiet", "--out", str(out), "--plot", str(plot))
    assert status == 0, error
    assert "front:" in printed and "hypervolume ratio to the true front" in printed
    import json

    record = json.loads(out.read_text())
    assert record["objectives"] == ["skip", "flops"] and record["front"] and record["true_front"]
    assert 0 < record["hypervolume_ratio"] <= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
