"""The command line as a user meets it: results, JSON, and one-line errors with exit status 2."""

import json
import os
import subprocess
import sys

import pytest

BASE = ["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "--proxy", "logsynflow",
        "--proxy", "skip", "--search", "freerea", "-o", "repeats=1", "-o", "naswot.batch_size=16", "--quiet"]


def nasx(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "nasx_cli.main", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--space", "nats-tzz", "--dataset", "cifar10", "--proxy", "naswot"], "did you mean 'nats-tss'"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswt"], "did you mean 'naswot'"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "--search", "frerea"],
         "did you mean 'freerea'"),
        (["run", "--space", "nats-tss", "--dataset", "cifar11", "--proxy", "naswot"], "unknown dataset"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "--max-evals", "0"],
         "--max-evals must be positive"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "--max-time", "-3"],
         "--max-time must be positive"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "--data-dir", "/no/such/dir"],
         "does not exist"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "-o", "naswot.bogus=1"],
         "has no option 'bogus'"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "-o", "repeats=three"],
         "expects an integer, got 'three'"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10"], "Missing option '--proxy'"),
        (["run", "--proxy", "naswot", "--max-time", "nan"], "--max-time must be positive and finite"),
        (["run", "--proxy", "naswot", "--max-wall", "inf"], "--max-wall must be positive and finite"),
        (["run", "--proxy", "naswot", "--max-flops", "nan"], "--max-flops must be a positive finite number"),
        (["experiment", "--search", "random", "--proxies", "skip", "--resume"], "--resume needs --out"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "-o", "naswot.batch_size=-4"],
         "naswot.batch_size must be a non-negative integer, got -4"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "skip", "--search", "ga", "-o",
          "mutation_rate=nan"], "ga.mutation_rate must be a number, got nan"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "--max-flops", "1",
          "--max-params", "0.0001"], "no feasible architecture"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    done = nasx(*args, "--no-cache", "--quiet") if args[-1] != "cifar10" else nasx(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_run_prints_and_writes_the_result(tmp_path, data_dir):
    out = tmp_path / "result.json"
    done = nasx(*BASE, "--max-evals", "6", "--no-cache", "--data-dir", str(data_dir), "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["evaluated"] == 6
    assert set(result["scores"]) == {"naswot", "logsynflow", "skip"}
    assert result["arch"] in done.stdout
    # ground truth is looked up in the benchmark table, independently of the search
    import csv
    import gzip

    with gzip.open(data_dir / "nats_tss.csv.gz", "rt") as handle:
        row = next(r for r in csv.DictReader(handle) if r["arch"] == result["arch"])
    assert result["test_accuracy"] == pytest.approx(float(row["cifar10_test_acc"]))
    assert result["index"] == int(row["index"])
    assert result["regret"] == pytest.approx(result["optimum_accuracy"] - result["test_accuracy"])
    assert result["flops_m"] == pytest.approx(float(row["cifar10_flops_M"]), abs=1e-6)


def test_without_data_the_run_says_no_ground_truth(tmp_path):
    env = {"NASX_DATA": "", "XDG_DATA_HOME": str(tmp_path)}
    done = nasx(*BASE, "--max-evals", "2", "--no-cache", env=env)
    assert done.returncode == 0, done.stderr
    assert "not available" in done.stdout


def test_plugins_json_lists_components():
    done = nasx("plugins", "--json")
    rows = json.loads(done.stdout)
    assert {"kind", "name", "plugin", "distribution", "version"} <= set(rows[0])
    assert ("searcher", "freerea", "nasx-search") in {(r["kind"], r["name"], r["distribution"]) for r in rows}


def test_same_seed_same_result_whatever_the_hash_seed(tmp_path):
    results = []
    for hash_seed in ("1", "987"):
        out = tmp_path / f"r{hash_seed}.json"
        done = nasx(*BASE, "--max-evals", "10", "--seed", "3", "--no-cache", "--out", str(out),
                    env={"PYTHONHASHSEED": hash_seed})
        assert done.returncode == 0, done.stderr
        results.append(json.loads(out.read_text()))
    assert results[0]["arch"] == results[1]["arch"]
    assert results[0]["scores"] == results[1]["scores"]
    assert [h["arch"] for h in results[0]["history"]] == [h["arch"] for h in results[1]["history"]]


def test_a_repeated_search_reuses_the_cache(tmp_path):
    cache = tmp_path / "scores.sqlite"
    outs = [tmp_path / "first.json", tmp_path / "second.json"]
    for out in outs:
        done = nasx(*BASE, "--max-evals", "8", "--cache", str(cache), "--out", str(out))
        assert done.returncode == 0, done.stderr
    first, second = (json.loads(p.read_text()) for p in outs)
    assert not any(h["cached"] for h in first["history"])
    assert all(h["cached"] for h in second["history"])
    assert first["arch"] == second["arch"] and first["scores"] == second["scores"]
    # recorded compute time is replayed from the cache, so the time budget is charged honestly
    assert second["compute_seconds"] == pytest.approx(first["compute_seconds"])


def test_score_reports_given_architectures(data_dir):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    done = nasx("score", "--space", "nats-tss", "--dataset", "cifar10", "--arch", arch, "--proxy", "skip",
                "--data-dir", str(data_dir), "--no-cache")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["arch"] == arch and record["scores"] == {"skip": 1.0}  # skips 0->3 (2 layers) and 2->3 (0)
    assert record["test_accuracy"] == pytest.approx(93.66, abs=0.01)  # index 1 of the benchmark
    assert record["params_m"] == pytest.approx(0.802426)


@pytest.mark.parametrize("arch", ["|nor_conv_3x3~0|", "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_score_rejects_malformed_arch_strings(arch):
    done = nasx("score", "--space", "nats-tss", "--dataset", "cifar10", "--arch", arch, "--proxy", "skip",
                "--no-cache")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "arch string" in done.stderr or "unknown operation" in done.stderr


CORRELATE = ["correlate", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "params", "--proxy", "skip",
             "--proxy", "synflow", "-o", "synflow.repeats=1", "--sample", "80", "--bootstrap", "50", "--quiet"]


def test_correlate_reports_measures_from_the_ground_truth(tmp_path, data_dir):
    import csv
    import gzip

    from scipy.stats import kendalltau

    cache = tmp_path / "scores.sqlite"
    outputs = [tmp_path / "c.json", tmp_path / "c.csv", tmp_path / "c.png"]
    done = nasx(*CORRELATE, "--combiner", "rank", "--combiner", "freerea", "--data-dir", str(data_dir),
                "--cache", str(cache), "--out", str(outputs[0]), "--out", str(outputs[1]), "--plot", str(outputs[2]))
    assert done.returncode == 0, done.stderr
    record = json.loads(outputs[0].read_text())
    names = [row["name"] for row in record["results"]]
    assert names == ["params", "skip", "synflow", "rank(params+skip+synflow)", "freerea(params+skip+synflow)"]
    assert record["sample"] == 80 and record["computed"] == 80
    # recompute params' Kendall tau from the benchmark table itself
    with gzip.open(data_dir / "nats_tss.csv.gz", "rt") as handle:
        table = {int(row["index"]): row for row in csv.DictReader(handle)}
    indices = [a["arch"] for a in record["architectures"]]
    params = [float(table[i]["cifar10_params_M"]) for i in indices]
    accuracy = [float(table[i]["cifar10_test_acc"]) for i in indices]
    assert record["results"][0]["kendall"] == pytest.approx(kendalltau(params, accuracy)[0])
    assert record["results"][0]["kendall_low"] <= record["results"][0]["kendall"] <= record["results"][0]["kendall_high"]
    with outputs[1].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == names
    assert outputs[2].stat().st_size > 10_000
    assert "params" in done.stdout and "τ" in done.stdout
    # a second run with a subset of the proxies takes every score from the cache
    again = nasx(*CORRELATE[:7], "--sample", "80", "--bootstrap", "0", "--quiet", "--data-dir", str(data_dir),
                 "--cache", str(cache), "--out", str(outputs[0]))
    assert again.returncode == 0, again.stderr
    assert json.loads(outputs[0].read_text())["computed"] == 0


def test_correlate_lists_non_finite_scores(tmp_path, data_dir):
    """NASWOT's kernel is singular for cells whose output ignores the input: -inf, reported by index."""
    done = nasx("correlate", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "naswot", "-o", "repeats=1",
                "-o", "batch_size=16", "--sample", "40", "--seed", "3", "--bootstrap", "0", "--quiet",
                "--no-cache", "--data-dir", str(data_dir), "--out", str(tmp_path / "c.json"))
    assert done.returncode == 0, done.stderr
    row = json.loads((tmp_path / "c.json").read_text())["results"][0]
    assert row["non_finite"] == len(row["non_finite_archs"]) > 0
    assert "non-finite scores left out" in done.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--combiner", "rank", "--sample", "5"], None),
        (["--out", "x.txt"], "use a .json or .csv file name"),
        (["--bootstrap", "-1"], "--bootstrap must be 0 or more"),
        (["--cells", "no-dead-edge"], "did you mean 'no-dead-edges'?"),
        (["--space", "nats-sss", "--cells", "no-dead-edges"], "space 'nats-sss' defines no subsets"),
    ],
)
def test_correlate_rejects_bad_input(tmp_path, data_dir, extra, message):
    args = ["correlate", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "params", "--no-cache",
            "--quiet", "--data-dir", str(data_dir), *extra]
    done = nasx(*args)
    if message is None:  # one proxy cannot be combined
        message = "combining needs at least two --proxy"
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_correlate_needs_ground_truth(tmp_path):
    env = {"NASX_DATA": "", "XDG_DATA_HOME": str(tmp_path)}
    done = nasx("correlate", "--space", "nats-tss", "--dataset", "cifar10", "--proxy", "params", "--no-cache", env=env)
    assert done.returncode == 2 and "no ground truth" in done.stderr


GRID = """
space = "nats-tss"
datasets = ["cifar10"]
seeds = 2
budgets = [{ max_evals = 4 }]
constraints = [{}, { max_flops = 100, max_params = 0.8 }]
options = ["repeats=1"]

[[searches]]
label = "random-synflow"
search = "random"
proxies = ["synflow", "params"]

[[searches]]
label = "exhaustive"
search = "exhaustive"
proxies = ["params", "skip"]
combiner = "rank"
"""


def test_experiment_runs_a_grid_and_summarises_it(tmp_path, data_dir):
    import csv
    import gzip

    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    cache = tmp_path / "scores.sqlite"
    done = nasx("experiment", str(grid), "--data-dir", str(data_dir), "--cache", str(cache), "--quiet",
                "--out", str(tmp_path / "out"), "--plot", str(tmp_path / "plot.png"))
    assert done.returncode == 0, done.stderr
    with (tmp_path / "out" / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    assert len(runs) == 2 * 2 * 2  # searches x constraint settings x seeds
    with gzip.open(data_dir / "nats_tss.csv.gz", "rt") as handle:
        table = {row["arch"]: row for row in csv.DictReader(handle)}
    for run in runs:
        # every reported accuracy is the benchmark's, and every constrained result is feasible
        row = table[run["arch"]]
        assert float(run["test_accuracy"]) == float(row["cifar10_test_acc"])
        assert int(run["evaluated"]) == 4
        if run["constraints"] != "none":
            assert float(row["cifar10_flops_M"]) <= 100 and float(row["cifar10_params_M"]) <= 0.8
            assert float(run["optimum_accuracy"]) < 94.37
    # exhaustive search walks the official index order: its first 4 feasible architectures
    unconstrained = [r for r in runs if r["label"] == "exhaustive" and r["constraints"] == "none"]
    assert {int(r["index"]) for r in unconstrained} <= {0, 1, 2, 3}
    with (tmp_path / "out" / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == 4 and all(row["seeds"] == "2" for row in summary)
    assert (tmp_path / "plot.png").stat().st_size > 10_000
    assert "random-synflow" in done.stdout


def test_experiment_from_the_command_line_reuses_the_cache(tmp_path, data_dir):
    cache = tmp_path / "scores.sqlite"
    args = ["experiment", "--space", "nats-tss", "--dataset", "cifar10", "--search", "random", "--proxies",
            "synflow,params", "--seeds", "3", "--max-evals", "5", "-o", "repeats=1", "--cache", str(cache),
            "--data-dir", str(data_dir), "--quiet"]
    assert nasx(*args, "--out", str(tmp_path / "first")).returncode == 0
    first = json.loads((tmp_path / "first" / "experiment.json").read_text())["runs"]
    assert nasx(*args, "--out", str(tmp_path / "second")).returncode == 0
    second = json.loads((tmp_path / "second" / "experiment.json").read_text())["runs"]
    assert [r["arch"] for r in first] == [r["arch"] for r in second]
    # replayed scores charge their recorded time, so the compute budget accounting is unchanged
    assert [r["compute_seconds"] for r in first] == [r["compute_seconds"] for r in second]


def test_experiment_repeated_budget_options_make_one_budget_each(tmp_path, data_dir):
    done = nasx("experiment", "--space", "nats-tss", "--dataset", "cifar10", "--search", "random", "--proxies",
                "params", "--seeds", "2", "--max-evals", "3", "--max-evals", "7", "--max-time", "600", "--no-cache",
                "--data-dir", str(data_dir), "--quiet", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    runs = json.loads((tmp_path / "out" / "experiment.json").read_text())["runs"]
    assert sorted((r["seed"], r["budget"], r["evaluated"]) for r in runs) == [
        (0, "max_evals=3,max_time=600", 3), (0, "max_evals=7,max_time=600", 7),
        (1, "max_evals=3,max_time=600", 3), (1, "max_evals=7,max_time=600", 7)]


def test_experiment_refuses_two_repeated_budget_options():
    done = nasx("experiment", "--space", "nats-tss", "--search", "random", "--proxies", "params", "--max-evals", "3",
                "--max-evals", "7", "--max-time", "1", "--max-time", "2", "--no-cache", "--quiet")
    assert done.returncode == 2 and "only one budget option may be repeated" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ('space = "nats-tss"\ndatasets = ["cifar10"]\n', "the grid needs 'searches'"),
        ('spaec = "nats-tss"\n', "unknown key 'spaec'"),
        ('space = "nats-tss\n', "not valid TOML"),
        ('space = "nats-tss"\ndatasets = ["cifar10"]\n[[searches]]\nsearch = "random"\nproxies = ["params"]\n'
         'budget = 3\n', "unknown search key 'budget'"),
    ],
)
def test_experiment_rejects_bad_grids(tmp_path, text, message):
    grid = tmp_path / "grid.toml"
    grid.write_text(text)
    done = nasx("experiment", str(grid), "--no-cache", "--quiet")
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("space, dataset, search, proxies, combiner", [
    # GA-rk / SA-rk (rank over ni + naswot + logsynflow) and FreeREA on the size space; small batches keep it quick.
    ("nats-sss", "ImageNet16-120", "ga", ["ni", "naswot", "logsynflow"], "rank"),
    ("nats-sss", "ImageNet16-120", "sa", ["ni", "naswot", "logsynflow"], "rank"),
    ("nats-sss", "ImageNet16-120", "freerea", ["naswot", "logsynflow", "skip"], "freerea"),
    ("nb101", "cifar10", "freerea", ["naswot", "logsynflow", "skip"], "freerea"),
])
def test_searches_run_on_the_other_spaces(tmp_path, space, dataset, search, proxies, combiner):
    out = tmp_path / "result.json"
    args = ["run", "--space", space, "--dataset", dataset, "--search", search, "--combiner", combiner,
            "--max-evals", "4", "--seed", "0", "--no-cache", "--quiet", "--out", str(out), "--data-dir", str(tmp_path),
            "-o", "batch_size=8", "-o", "repeats=1"]
    if search in ("ga", "freerea"):
        args += ["-o", f"{search}.population_size=3"]
    for proxy in proxies:
        args += ["--proxy", proxy]
    done = nasx(*args)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["evaluated"] == 4 and result["space"] == space
    assert result["test_accuracy"] is None  # no benchmark files in the data directory given
