"""Architectures per second with each executor, as ratios to serial scoring with one torch thread measured in the
same run.

Run by hand on an otherwise idle machine (about 10 minutes on 2 cores):

    NASX_DATA=../shared/data python benchmarks/throughput.py --json throughput.json

The sample is 200 NATS-TSS cells (``random.Random(0).sample(range(15625), 200)``) scored on cifar10 with FreeREA's
proxies and settings (naswot on 64 real CIFAR-10 test images, logsynflow, skip; 3 initialisations each), without
a cache. The sample is cut into blocks; every configuration scores each block in turn (A, B, C, D, A, B, ...), so
all of them see the same load, and each block gives one ratio per configuration. Workers are started (and warmed
up on two cells outside the sample) before timing: start-up is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import nasx
from nasx.plugins import Plugins

PROXIES = ["naswot", "logsynflow", "skip"]
CONFIGURATIONS = {  # name -> (executor, its options)
    "serial 1 thread": ("serial", {"threads": 1}),
    "serial 2 threads": ("serial", {"threads": 2}),
    "process 2x1": ("process", {"workers": 2, "threads": 1}),
    "dask local 2x1": ("dask", {"workers": 2, "threads": 1}),
}
BASELINE = "serial 1 thread"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()
    data = os.environ.get("NASX_DATA")
    if not data:
        sys.exit("set NASX_DATA to the benchmark data directory")
    images = Path(data) / "cifar10_test_512_jpeg.npz"
    plugins = Plugins()
    space = plugins.get("space", "nats-tss")()
    indices = random.Random(0).sample(range(len(space)), args.sample + 2)
    archs = [space.encode(space.genotype_at(i)) for i in indices]
    warm_up, sample = archs[:2], archs[2:]
    blocks = [sample[i::args.blocks] for i in range(args.blocks)]

    executors, startup = {}, {}
    for name, (kind, options) in CONFIGURATIONS.items():
        start = time.perf_counter()
        executors[name] = plugins.get("executor", kind)(**options)
        nasx.score(warm_up, proxies=PROXIES, images=images, cache=False, executor=executors[name], plugins=plugins)
        startup[name] = time.perf_counter() - start
        print(f"{name}: started and warmed up in {startup[name]:.1f} s", flush=True)

    seconds: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    scores: dict[str, list] = {name: [] for name in CONFIGURATIONS}
    for number, block in enumerate(blocks, start=1):
        for name, executor in executors.items():
            start = time.perf_counter()
            records = nasx.score(block, proxies=PROXIES, images=images, cache=False, executor=executor,
                                 plugins=plugins)
            seconds[name].append(time.perf_counter() - start)
            scores[name].extend(r["scores"] for r in records)
            print(f"block {number}/{len(blocks)} ({len(block)} cells) {name}: {seconds[name][-1]:.1f} s", flush=True)
    for executor in executors.values():
        executor.close()

    report = {"sample": args.sample, "blocks": args.blocks, "proxies": PROXIES, "cores": os.cpu_count(),
              "configurations": {}}
    print(f"\n{args.sample} NATS-TSS cells, {args.blocks} blocks; ratio = architectures per second / "
          f"{BASELINE}'s, per block (median [min, max])")
    for name in CONFIGURATIONS:
        ratios = [base / mine for base, mine in zip(seconds[BASELINE], seconds[name])]
        same = scores[name] == scores[BASELINE]
        report["configurations"][name] = {
            "seconds_per_block": seconds[name], "archs_per_second": args.sample / sum(seconds[name]),
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "startup_seconds": startup[name], "scores_identical_to_baseline": same,
        }
        print(f"{name:18s} {args.sample / sum(seconds[name]):6.2f} archs/s  ratio {statistics.median(ratios):.2f} "
              f"[{min(ratios):.2f}, {max(ratios):.2f}]  start-up {startup[name]:.1f} s  "
              f"scores identical to {BASELINE}: {same}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
