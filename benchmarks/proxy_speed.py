"""Seconds per architecture of nasx's naswot, logsynflow and synflow against FreeREA's reference code, side by side.

Run from the repository root (the reference environment is made once by ../shared/bench/setup.sh):

    NASX_DATA=../shared/data .venv/bin/python benchmarks/proxy_speed.py [--rounds 3] [--json OUT]
        [--search] [--nb101 N]

The default comparison runs ../shared/bench/reference.py --json (FreeREA's own compute_naswot_score and LogSynflow on
its 40 NATS-Bench cifar10 cells, the `random.seed(1)` sample of nats_tss.csv.gz, on the first 64 CIFAR-10 images,
one initialisation each) and nasx's timing of the same cells, the same images and one initialisation each,
alternately (reference, nasx, reference, nasx, ...), each in a fresh process with one torch thread. It prints, per
proxy, the nasx/reference ratio of the per-cell median and of the mean (the median over rounds of each round's
ratio) and the Spearman correlation of nasx's scores with the reference's on those cells. The reference times only
LogSynflow; FreeREA's SynFlow is the same function without the logarithm, so synflow is compared with it too.
nasx initialises as it does by default (Kaiming, seed 0), the reference with PyTorch's defaults, so the scores'
agreement is a rank correlation, not equality.

--search: the cells that a FreeREA search explores (nasx.run, cifar10, naswot + logsynflow + skip, 100 cells,
seed 0), scored before and after the fast paths, alternately, and --nb101 N: N NAS-Bench-101 cells (naswot and
logsynflow; the reference harness has no NB101). "Before" is the proxies' code at commit --before (the last
commit without the fast paths), read with `git show` and run in a process of its own (with today's networks, whose
optional dead-operation skipping it never switches on); "after" is the working tree, including the allocator setting
naswot makes for its process (nasx_proxies._common.keep_freed_memory). Both score each cell once (one
initialisation) and report the mean and median seconds per cell, and the largest relative difference of the scores.

Timings depend on the machine and its load: only the ratios measured in the same run mean something.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT.parent / "shared" / "bench"
# The proxies' code before the fast paths (naswot.py and synflow.py at this commit are the "before" side).
BEFORE_COMMIT = "7a4637f34b0cc3c2192cfbf66f8d07a13dd5fc27"
PROXIES = ("naswot", "logsynflow", "synflow")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ------------------------------------------------------------------------------------------------ workers
# Each runs in a fresh process (``--worker``) and writes per-cell records as JSON.


def reference_sample(data_dir: Path, count: int) -> list[str]:
    """The reference harness's cells: random.seed(1); random.sample(rows of nats_tss.csv.gz, count)."""
    with gzip.open(data_dir / "nats_tss.csv.gz", "rt") as handle:
        rows = list(csv.DictReader(handle))
    random.seed(1)
    return [row["arch"] for row in random.sample(rows, count)]


def proxy_classes(variant: str, before: str):
    """{name: proxy class} of the working tree ("after") or of the proxies' files at commit ``before``."""
    if variant == "after":
        from nasx_proxies.naswot import NASWOT
        from nasx_proxies.synflow import LogSynflow, Synflow

        return {"naswot": NASWOT, "logsynflow": LogSynflow, "synflow": Synflow}
    modules = {}
    for name in ("naswot", "synflow"):
        path = f"plugins/nasx-proxies/nasx_proxies/{name}.py"
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{before}:{path}"], check=True,
                                capture_output=True, text=True).stdout
        module = types.ModuleType(f"before_{name}")
        exec(compile(source, f"{before}:{path}", "exec"), module.__dict__)
        modules[name] = module
    return {"naswot": modules["naswot"].NASWOT, "logsynflow": modules["synflow"].LogSynflow,
            "synflow": modules["synflow"].Synflow}


def time_cells(space_name: str, archs: list[str], proxies: list[str], variant: str, before: str,
               data_dir: Path) -> list[dict]:
    """Build each cell, initialise it once (nasx's default: Kaiming, seed 0), and time each proxy's score."""
    import torch

    from nasx.data import load_images
    from nasx.plugins import Plugins
    from nasx.torch_utils import initialise

    torch.set_num_threads(1)
    space = Plugins().get("space", space_name)(dataset="cifar10")
    batch = load_images(data_dir / "cifar10_test_512_jpeg.npz", "cifar10", size=64)
    classes = proxy_classes(variant, before)
    chosen = {name: classes[name](repeats=1) for name in proxies}
    records = []
    for arch in archs:
        start = time.perf_counter()
        network = space.build(space.decode(arch))
        record = {"arch": arch, "build_s": time.perf_counter() - start}
        initialise(network, "kaiming", seed=0)
        for name, proxy in chosen.items():
            start = time.perf_counter()
            score = proxy.score_network(network, batch if proxy.needs_data else None, space)
            record[f"{name}_s"] = time.perf_counter() - start
            record[name] = float(score)
        records.append(record)
    return records


def worker(args) -> None:
    archs = json.loads(Path(args.archs).read_text())
    records = time_cells(args.space, archs, args.proxies.split(","), args.variant, args.before, data_directory())
    Path(args.out).write_text(json.dumps({"threads": _torch_threads(), "records": records}))


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# ------------------------------------------------------------------------------------------------ driver


def data_directory() -> Path:
    if not os.environ.get("NASX_DATA"):
        sys.exit("set NASX_DATA to the data directory (../shared/data)")
    return Path(os.environ["NASX_DATA"]).resolve()


def reference_python(given: str | None) -> str:
    if given:
        return given
    venv = subprocess.run(["bash", str(BENCH_DIR / "setup.sh")], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    return str(Path(venv) / "bin" / "python")


def run_worker(space: str, archs: list[str], proxies, variant: str, before: str, scratch: Path) -> dict:
    archs_file, out = scratch / "archs.json", scratch / f"{variant}.json"
    archs_file.write_text(json.dumps(archs))
    subprocess.run([sys.executable, __file__, "--worker", "--space", space, "--archs", str(archs_file),
                    "--proxies", ",".join(proxies), "--variant", variant, "--before", before, "--out", str(out)],
                   check=True, env={**os.environ, **ONE_THREAD})
    return json.loads(out.read_text())


def run_reference(python: str, count: int, scratch: Path) -> tuple[list[dict], str]:
    out = scratch / "reference.json"
    finished = subprocess.run([python, str(BENCH_DIR / "reference.py"), str(count), "--json", str(out)], check=True,
                              capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    return json.loads(out.read_text()), finished.stdout


def summary(records: list[dict], key: str) -> dict:
    values = [r[key] for r in records]
    return {"median": statistics.median(values), "mean": statistics.mean(values)}


def spearman(first: list[float], second: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(first, second)[0])


def compare_with_reference(args, scratch: Path) -> dict:
    python = reference_python(args.reference_python)
    archs = reference_sample(data_directory(), args.cells)
    rounds = []
    for number in range(1, args.rounds + 1):
        reference, printed = run_reference(python, args.cells, scratch)
        if [r["arch"] for r in reference] != archs:
            sys.exit("the reference harness scored other cells than nasx's sample")
        if "torch threads=1" not in printed:
            sys.exit(f"the reference did not run on one torch thread:\n{printed}")
        ours = run_worker("nats-tss", archs, PROXIES, "after", args.before, scratch)
        row = {"reference": {p: summary(reference, f"{p}_s") for p in ("naswot", "logsynflow")},
               "nasx": {p: summary(ours["records"], f"{p}_s") for p in PROXIES},
               "nasx_threads": ours["threads"]}
        # FreeREA's synflow is its logsynflow without the logarithm: the reference's logsynflow time stands for it
        row["ratio"] = {p: {s: row["nasx"][p][s] / row["reference"][_reference_of(p)][s]
                            for s in ("median", "mean")} for p in PROXIES}
        row["spearman"] = {p: spearman([r[p] for r in ours["records"]], [r[p] for r in reference])
                           for p in ("naswot", "logsynflow")}
        rounds.append(row)
        print(f"round {number}: " + "; ".join(
            f"{p} nasx {row['nasx'][p]['median']:.4f} / reference {row['reference'][_reference_of(p)]['median']:.4f}"
            f" s (median), ratio {row['ratio'][p]['median']:.2f} (median) {row['ratio'][p]['mean']:.2f} (mean)"
            for p in PROXIES), flush=True)
    result = {
        "cells": args.cells, "rounds": rounds, "torch_threads": 1,
        "ratio": {p: {s: statistics.median(r["ratio"][p][s] for r in rounds) for s in ("median", "mean")}
                  for p in PROXIES},
        "spearman": {p: statistics.median(r["spearman"][p] for r in rounds) for p in ("naswot", "logsynflow")},
    }
    print(f"\nnasx / FreeREA reference, seconds per cell, {args.cells} NATS-Bench cifar10 cells, 64 images, one "
          f"initialisation, one torch thread on both sides; median over {args.rounds} alternating rounds:")
    print(f"{'proxy':12s} {'ratio of medians':>17s} {'ratio of means':>15s} {'Spearman vs reference':>22s}")
    for p in PROXIES:
        rho = f"{result['spearman'][p]:.3f}" if p in result["spearman"] else "-"
        print(f"{p:12s} {result['ratio'][p]['median']:17.2f} {result['ratio'][p]['mean']:15.2f} {rho:>22s}")
    print("(synflow against the reference's LogSynflow, the same code with the logarithm)")
    return result


def _reference_of(proxy: str) -> str:
    return "naswot" if proxy == "naswot" else "logsynflow"


def before_and_after(args, space: str, archs: list[str], proxies, label: str, scratch: Path) -> dict:
    rounds = []
    for number in range(1, args.rounds + 1):
        row = {}
        for variant in ("before", "after"):
            records = run_worker(space, archs, proxies, variant, args.before, scratch)["records"]
            row[variant] = {p: summary(records, f"{p}_s") for p in proxies}
            row[f"{variant}_scores"] = {p: [r[p] for r in records] for p in proxies}
        row["ratio"] = {p: {s: row["after"][p][s] / row["before"][p][s] for s in ("median", "mean")}
                        for p in proxies}
        rounds.append(row)
        print(f"{label} round {number}: " + "; ".join(
            f"{p} mean {row['before'][p]['mean']:.4f} -> {row['after'][p]['mean']:.4f} s" for p in proxies),
            flush=True)
    largest_difference = {p: max(abs(a - b) / max(abs(a), 1e-300) for r in rounds
                                 for a, b in zip(r["before_scores"][p], r["after_scores"][p])) for p in proxies}
    result = {
        "space": space, "cells": len(archs), "archs": archs, "before_commit": args.before, "torch_threads": 1,
        "rounds": [{k: v for k, v in r.items() if not k.endswith("_scores")} for r in rounds],
        "ratio": {p: {s: statistics.median(r["ratio"][p][s] for r in rounds) for s in ("median", "mean")}
                  for p in proxies},
        "mean_seconds": {v: {p: statistics.median(r[v][p]["mean"] for r in rounds) for p in proxies}
                         for v in ("before", "after")},
        "largest_relative_score_difference": largest_difference,
    }
    print(f"\n{label}: seconds per cell (mean over {len(archs)} cells, one initialisation, one torch thread), before "
          f"(commit {args.before}) and after; median over {args.rounds} alternating rounds:")
    for p in proxies:
        print(f"  {p:12s} {result['mean_seconds']['before'][p]:.4f} -> {result['mean_seconds']['after'][p]:.4f} s, "
              f"after/before {result['ratio'][p]['mean']:.2f} (means) {result['ratio'][p]['median']:.2f} (medians); "
              f"largest relative score difference {largest_difference[p]:.1e}")
    return result


def freerea_search_cells(data_dir: Path) -> list[str]:
    import nasx

    found = nasx.run(space="nats-tss", dataset="cifar10", proxies=["naswot", "logsynflow", "skip"],
                     search="freerea", max_evals=100, seed=0, cache=False, data_dir=data_dir,
                     images=data_dir / "cifar10_test_512_jpeg.npz")
    return [entry["arch"] for entry in found.history]


def nb101_cells(count: int) -> list[str]:
    from nasx.plugins import Plugins

    space = Plugins().get("space", "nb101")()
    rng = random.Random(0)
    return [space.encode(space.sample(rng)) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each side (default 3)")
    parser.add_argument("--cells", type=int, default=40, help="cells of the reference comparison (default 40)")
    parser.add_argument("--json", help="write the numbers to this file")
    parser.add_argument("--no-reference", action="store_true", help="skip the comparison with the reference code")
    parser.add_argument("--search", action="store_true", help="before/after on a FreeREA search's 100 cells")
    parser.add_argument("--nb101", type=int, default=0, metavar="N", help="before/after on N NAS-Bench-101 cells")
    parser.add_argument("--before", default=BEFORE_COMMIT, help=f"commit of the 'before' proxies ({BEFORE_COMMIT})")
    parser.add_argument("--reference-python", help="python of the reference venv (default: from setup.sh)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--space", help=argparse.SUPPRESS)
    parser.add_argument("--archs", help=argparse.SUPPRESS)
    parser.add_argument("--proxies", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    data_dir = data_directory()
    results: dict = {"torch_threads": 1, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if not args.no_reference:
            results["reference"] = compare_with_reference(args, scratch)
        if args.search:
            print("\nrunning the FreeREA search whose cells are timed ...", flush=True)
            archs = freerea_search_cells(data_dir)
            results["freerea_search"] = before_and_after(args, "nats-tss", archs, PROXIES[:2],
                                                         "FreeREA search cells (cifar10, seed 0)", scratch)
        if args.nb101:
            results["nb101"] = before_and_after(args, "nb101", nb101_cells(args.nb101), PROXIES[:2],
                                                f"NAS-Bench-101 cells ({args.nb101})", scratch)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
