"""The Python API (nasx.run / score / correlate / experiment) and its agreement with the command line."""

import json
import math
import os
import subprocess
import sys

import pytest

import nasx
from nasx import NasxError, Proxy

QUICK = {"naswot.batch_size": 16, "repeats": 1}


def nasx_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "nasx_cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def reject(constant):
    raise ValueError(f"non-standard JSON constant {constant}")


def strict_load(text: str):
    return json.loads(text, parse_constant=reject)


def without_timings(record: dict) -> dict:
    """A run's record without what depends on the clock or on the cache's state."""
    record = {k: v for k, v in record.items() if k not in ("wall_seconds", "compute_seconds")}
    record["history"] = [{k: v for k, v in h.items() if k not in ("seconds", "cached")} for h in record["history"]]
    return record


def test_import_is_cheap_and_the_api_is_lazy():
    code = "import sys, nasx; print('torch' in sys.modules, 'nasx.api' in sys.modules, callable(nasx.run))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False", "True"]


def test_api_and_cli_give_the_identical_result(tmp_path, data_dir):
    out = tmp_path / "cli.json"
    done = nasx_cli("run", "--proxy", "naswot", "--proxy", "logsynflow", "--proxy", "skip", "--max-evals", "6",
                    "--seed", "2", "-o", "naswot.batch_size=16", "-o", "repeats=1", "--no-cache", "--quiet",
                    "--data-dir", str(data_dir), "--out", str(out), "--threads", "1")
    assert done.returncode == 0, done.stderr
    from_cli = strict_load(out.read_text())
    # one torch thread in both: with two, float32 sums in this process can differ in the 7th digit after other
    # tests changed torch's thread pool
    result = nasx.run(proxies=["naswot", "logsynflow", "skip"], max_evals=6, seed=2, options=QUICK, cache=False,
                      data_dir=data_dir, threads=1)
    assert without_timings(result.to_dict()) == without_timings(from_cli)
    # plain attributes as documented, and ground truth from the table
    assert result.space == "nats-tss" and result.dataset == "cifar10" and result.evaluated == 6
    assert result.test_accuracy is not None and result.regret == pytest.approx(
        result.optimum_accuracy - result.test_accuracy)
    assert result.genotype is not None and result.index is not None
    assert len(result.history) == 6


def test_to_dict_is_what_out_writes(tmp_path):
    out = tmp_path / "r.json"
    result = nasx.run(proxies=["skip", "params"], max_evals=4, cache=False, out=out)
    assert strict_load(out.read_text()) == result.to_dict()
    assert "genotype" not in result.to_dict()


class ConstantNaN(Proxy):
    """Not installed as a plugin: the API takes classes, so a notebook can try a proxy without packaging it."""

    name = "constant-nan"
    needs_network = False
    defaults = {"scale": 1.0}

    def score_genotype(self, space, genotype):
        return math.nan


class CountOps(Proxy):
    name = "count-convs"
    needs_network = False

    def score_genotype(self, space, genotype):
        return float(space.encode(genotype).count("conv"))


def test_components_may_be_classes_and_instances_not_installed(tmp_path):
    result = nasx.run(proxies=["skip", CountOps, ConstantNaN(scale=2.0)], max_evals=5, cache=False,
                      out=tmp_path / "r.json")
    assert result.proxies == ["skip", "count-convs", "constant-nan"]
    assert math.isnan(result.scores["constant-nan"])
    # strict JSON: the NaN is written as null and named
    written = strict_load((tmp_path / "r.json").read_text())
    assert written["scores"]["constant-nan"] is None and written["non_finite_scores"] == ["constant-nan"]
    assert all(h["non_finite"] == ["constant-nan"] for h in written["history"])


def test_options_reach_classes_but_not_instances():
    with pytest.raises(NasxError, match="given as an instance"):
        nasx.run(proxies=[ConstantNaN()], options={"constant-nan.scale": 3}, max_evals=2, cache=False)
    with pytest.raises(NasxError, match="has no option 'bogus'"):
        nasx.run(proxies=[ConstantNaN], options={"constant-nan.bogus": 3}, max_evals=2, cache=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"proxies": []}, "at least one proxy"),
    ({"proxies": ["skip"], "max_time": math.nan}, "--max-time must be positive and finite"),
    ({"proxies": ["skip"], "max_wall": math.inf}, "--max-wall must be positive and finite"),
    ({"proxies": ["skip"], "max_evals": 2.5}, "--max-evals must be a whole number"),
    ({"proxies": ["skip"], "max_flops": math.nan}, "--max-flops must be a positive finite number"),
    ({"proxies": ["skip"], "max_params": math.inf}, "--max-params must be a positive finite number"),
    ({"proxies": ["skip"], "seed": "1"}, "--seed must be an integer"),
    ({"proxies": [42]}, "a proxy is given by name"),
    ({"proxies": ["skip", "skip"]}, "named twice"),
    ({"proxies": ["skip"], "options": "repeats=1"}, "not one string"),
    ({"proxies": ["skip"], "space": "nb101", "dataset": "cifar100"}, "unknown dataset"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(NasxError, match=message) as caught:
        nasx.run(cache=False, **kwargs)
    assert "\n" not in str(caught.value)


def test_each_space_has_a_default_dataset():
    assert nasx.run(space="nb101", proxies=["skip"], max_evals=2, cache=False).dataset == "cifar10"
    records = nasx.score("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
                         proxies="skip", cache=False)
    assert records[0]["scores"] == {"skip": 2.0} and records[0]["non_finite"] == []


def test_one_line_example_runs_without_space_or_dataset():
    done = nasx_cli("run", "--proxy", "skip", "--search", "freerea", "--max-evals", "3", "--no-cache", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "nats-tss / cifar10" in done.stdout
    done = nasx_cli("run", "--space", "nb101", "--proxy", "skip", "--search", "freerea", "--max-evals", "3",
                    "--no-cache", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "nb101 / cifar10" in done.stdout


def test_a_corrupt_cache_is_a_clear_error(tmp_path):
    garbage = tmp_path / "scores.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(NasxError, match="is not a nasx score cache: move it away, or use --cache PATH / --no-cache"):
        nasx.run(proxies=["skip"], max_evals=2, cache=garbage)
    import sqlite3

    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE scores (name TEXT, value REAL)")
    done = nasx_cli("run", "--proxy", "skip", "--max-evals", "2", "--cache", str(foreign), "--quiet")
    assert done.returncode == 2 and "is not a nasx score cache" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "internal error" not in done.stderr


@pytest.mark.parametrize("damaged, message", [(False, "is not an .npz archive"), (True, "cannot read images from")])
def test_an_unreadable_images_file_is_named(tmp_path, damaged, message):
    import zipfile

    path = tmp_path / "images.npz"
    if damaged:  # a zip archive whose arrays are not .npy data
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x.npy", b"garbage")
            archive.writestr("y.npy", b"garbage")
    else:
        path.write_bytes(b"not an archive")
    done = nasx_cli("run", "--proxy", "naswot", "--images", str(path), "--max-evals", "2", "--no-cache", "--quiet")
    assert done.returncode == 2 and message in done.stderr and str(path) in done.stderr
    assert "uint8 images 'x'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_correlate_writes_strict_json_with_non_finite_scores(tmp_path, data_dir):
    """NASWOT's kernel is singular for cells whose output ignores the input (-inf)."""
    record = nasx.correlate(proxies=["naswot", "skip"], combiners=["rank"], options=QUICK, sample=40, seed=3,
                            bootstrap=0, cache=False, data_dir=data_dir, out=[tmp_path / "c.json", tmp_path / "c.csv"])
    assert record["results"][0]["non_finite"] > 0
    written = strict_load((tmp_path / "c.json").read_text())
    assert any(a["naswot"] is None for a in written["architectures"])
    assert written["results"][0]["name"] == "naswot"


def test_correlate_draws_from_a_subset_of_the_space(data_dir):
    import random

    from nasx_nats.tss import NatsTopologySpace, dead_edges

    space = NatsTopologySpace(dataset="cifar10")
    record = nasx.correlate(proxies=["params"], cells="no-dead-edges", sample=30, seed=2, bootstrap=0, cache=False,
                            data_dir=data_dir)
    labels = [a["arch"] for a in record["architectures"]]
    assert record["cells"] == "no-dead-edges" and len(set(labels)) == 30
    assert not any(dead_edges(space.genotype_at(index)) for index in labels)
    # without --cells the sample is the one it always was
    whole = nasx.correlate(proxies=["params"], sample=30, seed=2, bootstrap=0, cache=False, data_dir=data_dir)
    assert whole["cells"] == "all"
    assert [a["arch"] for a in whole["architectures"]] == random.Random(2).sample(range(len(space)), 30)


def test_correlate_rejects_an_unknown_subset_before_scoring(data_dir):
    with pytest.raises(NasxError, match="unknown subset 'valid' of space 'nats-tss'"):
        nasx.correlate(proxies=["naswot"], cells="valid", sample=5, cache=False, data_dir=data_dir)


def test_score_prints_strict_json_lines():
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # the output ignores the input: naswot is -inf
    done = nasx_cli("score", "--arch", arch, "--proxy", "naswot", "-o", "repeats=1", "-o", "batch_size=8",
                    "--no-cache")
    assert done.returncode == 0, done.stderr
    record = strict_load(done.stdout)
    assert record["scores"]["naswot"] is None and record["non_finite"] == ["naswot"]


# ---------------------------------------------------------------------------------------------------------------
# experiments: rows written as they finish, resume, failed runs recorded

GRID = {
    "space": "nats-tss",
    "datasets": ["cifar10"],
    "seeds": 2,
    "budgets": [{"max_evals": 3}],
    # the second setting has no feasible cell: its runs fail, and the grid goes on
    "constraints": [{}, {"max_flops": 1, "max_params": 0.0001}],
    "searches": [{"search": "random", "proxies": ["skip", "params"]}],
}


def read_jsonl(path):
    return [strict_load(line) for line in path.read_text().splitlines()]


def test_experiment_records_failures_and_goes_on(tmp_path):
    failures = []
    result = nasx.experiment(GRID, out=tmp_path / "out", cache=tmp_path / "s.sqlite", on_failure=failures.append)
    assert len(result.runs) == 4 and len(result.failed) == 2 == len(failures)
    assert all("no feasible architecture" in r["error"] for r in result.failed)
    records = read_jsonl(tmp_path / "out" / "runs.jsonl")
    assert [r["status"] for r in records] == ["ok", "ok", "failed", "failed"]
    summary = {row["constraints"]: row for row in result.summary}
    assert summary["none"]["seeds"] == 2 and summary["none"]["failed"] == 0
    assert summary["max_flops=1,max_params=0.0001"]["seeds"] == 0
    assert summary["max_flops=1,max_params=0.0001"]["failed"] == 2
    strict_load((tmp_path / "out" / "experiment.json").read_text())


def test_experiment_resumes_after_an_interruption(tmp_path):
    grid = {**GRID, "constraints": [{}], "seeds": 4}
    out = tmp_path / "out"
    complete = nasx.experiment(grid, out=out, cache=False)
    log = out / "runs.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    # as if killed while writing the third run's line
    log.write_text("".join(lines[:2]) + lines[2][:25])
    with pytest.raises(NasxError, match="add --resume"):
        nasx.experiment(grid, out=out, cache=False)
    resumed = nasx.experiment(grid, out=out, cache=False, resume=True)
    records = read_jsonl(log)
    assert len(records) == 4  # runs 0 and 1 were not run again
    assert [r["seed"] for r in records] == [0, 1, 2, 3]
    assert [r["arch"] for r in resumed.runs] == [r["arch"] for r in complete.runs]
    assert resumed.summary[0]["seeds"] == 4
    # a second resume has nothing left to do
    again = nasx.experiment(grid, out=out, cache=False, resume=True)
    assert len(read_jsonl(log)) == 4 and len(again.runs) == 4


def test_experiment_retries_failed_runs_on_resume(tmp_path):
    out = tmp_path / "out"
    nasx.experiment(GRID, out=out, cache=False)
    resumed = nasx.experiment(GRID, out=out, cache=False, resume=True)
    records = read_jsonl(out / "runs.jsonl")
    assert len(records) == 6  # the two failed runs were tried again, and failed again
    assert len(resumed.runs) == 4 and len(resumed.failed) == 2


def test_experiment_cli_writes_each_run_as_it_finishes(tmp_path, data_dir):
    out = tmp_path / "out"
    args = ["experiment", "--search", "random", "--proxies", "skip,params", "--seeds", "2", "--max-evals", "3",
            "--constraint", "none", "--constraint", "max_flops=1,max_params=0.0001", "--no-cache", "--quiet",
            "--data-dir", str(data_dir), "--out", str(out)]
    done = nasx_cli(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("nasx: warning: run failed") == 2
    assert len(read_jsonl(out / "runs.jsonl")) == 4
    again = nasx_cli(*args)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = nasx_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    import csv

    with (out / "runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok", "failed"}
    assert all(r["test_accuracy"] for r in rows if r["status"] == "ok")
