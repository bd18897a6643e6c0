"""How long the process executor's forkserver takes to import what its workers need, with and without Python's
cyclic garbage collector paused meanwhile.

Each round runs, in fresh processes and in alternating order, the forkserver's preload as it is
(``import nasx._forkserver``: torch, networkx and nasx's scoring imported with the collector paused, then frozen)
and the same imports with the collector on (``import torch, networkx, nasx.scoring, nasx.worker``, the preload
before). Each prints the seconds its imports took and how many collections of each generation ran meanwhile. The
forkserver's import is the longest step before a worker's first score, so it is paid once by every command with
worker processes. Only the ratio measured in the same run means something (the machine is shared and noisy).

    python benchmarks/import_collector.py --rounds 12 --out benchmarks/results/import_collector.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

#: prints the seconds of the imports that follow it and the collections of each generation they ran
TIMED = ("import gc, json, time\nbefore = [generation['collections'] for generation in gc.get_stats()]\n"
         "started = time.perf_counter()\n{imports}\nseconds = time.perf_counter() - started\n"
         "print(json.dumps({{'seconds': seconds, 'collections': "
         "[generation['collections'] - b for generation, b in zip(gc.get_stats(), before)]}}))")
SIDES = {
    "collector on": TIMED.format(imports="import torch, networkx, nasx.scoring, nasx.worker"),
    "collector paused": TIMED.format(imports="import nasx._forkserver"),
}


def timed(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="rounds, each timing both sides once")
    parser.add_argument("--out", help="write the times and ratios as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    from nasx import jsonio

    names = list(SIDES)
    timed(SIDES[names[0]]), timed(SIDES[names[1]])  # warm the file cache
    rounds = []
    for number in range(args.rounds):
        order = names if number % 2 == 0 else names[::-1]
        measured = {name: timed(SIDES[name]) for name in order}
        ratio = measured["collector paused"]["seconds"] / measured["collector on"]["seconds"]
        rounds.append({"round": number, **{name: measured[name] for name in names}, "ratio": ratio})
        print(f"round {number}: on {measured['collector on']['seconds']:.3f} s, paused "
              f"{measured['collector paused']['seconds']:.3f} s, ratio {ratio:.3f}", flush=True)
    ratios = [r["ratio"] for r in rounds]
    medians = {name: statistics.median(r[name]["seconds"] for r in rounds) for name in names}
    print(f"median seconds: collector on {medians['collector on']:.3f}, paused {medians['collector paused']:.3f}; "
          f"median ratio paused / on {statistics.median(ratios):.3f} [{min(ratios):.3f}, {max(ratios):.3f}]; "
          f"collections per generation: on {rounds[0]['collector on']['collections']}, "
          f"paused {rounds[0]['collector paused']['collections']}")
    if args.out:
        jsonio.write(args.out, {"rounds": rounds, "median_seconds": medians, "median_ratio": statistics.median(ratios)})


if __name__ == "__main__":
    main()
