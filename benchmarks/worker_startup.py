"""Does a search with two worker processes pay for their start-up? Whole commands, start-up included.

Times ``nasx run`` of a short search (``--max-evals 40``, FreeREA's proxies, one initialisation, no cache) as a
whole process, alternately with one serial process (one torch thread) and with two worker processes (one torch
thread each): serial, process, serial, process, ... Each pair gives one ratio process / serial; the median ratio
is reported (the machine is shared and noisy: a ratio measured in the same run, never two separate figures).

nasx's sources are byte-compiled first (``compileall``), as pip does when it installs a package and as Python does
on a first import: where PYTHONDONTWRITEBYTECODE is set (as on the machines of docs/results.md), every command, and
every worker, would otherwise compile nasx's modules again. ``--no-compile`` removes nasx's compiled files instead,
so that every command compiles them (how the rows of docs/results.md before the byte-compiled ones were measured).

``--repeats R`` times each seed's pair R times (serial, process, then process, serial, ...) and also reports, per
seed, the ratio of the best (shortest) process command to the best serial one. The same cells are computed each
time, and other load on a shared machine only ever adds time, so a seed's best command estimates that command on an
idle machine (as ``timeit`` reports the best of its repeats); the median of those per-seed ratios is reported next
to the median of all pairs' ratios.

    NASX_DATA=../shared/data python benchmarks/worker_startup.py --pairs 5 --out benchmarks/results/worker_startup.json
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(executor: str, evals: int, seed: int) -> list[str]:
    workers = ["--workers", "2"] if executor == "process" else []
    return [sys.executable, "-m", "nasx_cli.main", "run", "--proxy", "naswot", "--proxy", "logsynflow", "--proxy",
            "skip", "-o", "repeats=1", "--max-evals", str(evals), "--seed", str(seed), "--no-cache", "--quiet",
            "--executor", executor, *workers, "--threads", "1"]


def timed(arguments: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(arguments, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5,
                        help="seeds, each timed as --repeats serial/process pairs (after one warm-up pair)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="pairs per seed (more than 1: also the ratio of each seed's best commands)")
    parser.add_argument("--evals", type=int, default=40, help="architectures per search")
    parser.add_argument("--out", help="write the times and ratios as JSON")
    parser.add_argument("--no-compile", action="store_true",
                        help="remove nasx's compiled files instead of compiling them first")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.repeats < 1:
        parser.error("--pairs and --repeats must be at least 1")

    for folder in ("core", "cli", "plugins"):
        if args.no_compile:
            for cache in (ROOT / folder).rglob("__pycache__"):
                shutil.rmtree(cache)
        else:
            compileall.compile_dir(ROOT / folder, quiet=1)

    from nasx import jsonio

    timed(command("serial", args.evals, 0)), timed(command("process", args.evals, 0))  # warm the file cache
    pairs = []
    for seed in range(args.pairs):  # a new seed per pair (or per R pairs): other cells, same for both
        for repeat in range(args.repeats):
            order = ("serial", "process") if repeat % 2 == 0 else ("process", "serial")  # S, P, P, S, ...
            times = {executor: timed(command(executor, args.evals, seed)) for executor in order}
            serial, process = times["serial"], times["process"]
            pairs.append({"seed": seed, "repeat": repeat, "serial_s": serial, "process_s": process,
                          "ratio": process / serial})
            print(f"seed {seed}: serial {serial:.1f} s, process {process:.1f} s, ratio {process / serial:.3f}",
                  flush=True)
    ratios = [p["ratio"] for p in pairs]
    print(f"median ratio process / serial: {statistics.median(ratios):.3f} [{min(ratios):.3f}, {max(ratios):.3f}]")
    result = {"evals": args.evals, "byte_compiled": not args.no_compile, "repeats": args.repeats, "pairs": pairs,
              "median_ratio": statistics.median(ratios)}
    if args.repeats > 1:
        best = best_of_repeats(pairs)
        best_ratios = [b["ratio"] for b in best]
        print(f"median over seeds of best process / best serial: {statistics.median(best_ratios):.3f} "
              f"[{min(best_ratios):.3f}, {max(best_ratios):.3f}]")
        result.update(best_of_repeats=best, median_best_ratio=statistics.median(best_ratios))
    if args.out:
        jsonio.write(args.out, result)


def best_of_repeats(pairs: list[dict]) -> list[dict]:
    """Per seed, the shortest serial and process commands of its repeats, and their ratio."""
    best = []
    for seed in sorted({p["seed"] for p in pairs}):
        serial = min(p["serial_s"] for p in pairs if p["seed"] == seed)
        process = min(p["process_s"] for p in pairs if p["seed"] == seed)
        best.append({"seed": seed, "serial_best_s": serial, "process_best_s": process, "ratio": process / serial})
    return best


if __name__ == "__main__":
    main()
