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
         "expects a int"),
        (["run", "--space", "nats-tss", "--dataset", "cifar10"], "Missing option '--proxy'"),
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
