"""GPU against CPU: FreeREA's proxies' throughput on NATS-Bench TSS, and FreeREA with 45 wall-clock seconds on the GPU.

For a machine with a GPU:

    NASX_DATA=../shared/data python benchmarks/gpu_throughput.py --json benchmarks/results/gpu_throughput.json

Throughput: architectures per second scoring a fixed 200-cell NATS-TSS cifar10 sample (the indices
``random.Random(0).sample(range(15625), 200)``) with FreeREA's proxies at their defaults (naswot on 64 real CIFAR-10
images, logsynflow, skip; 3 initialisations per score), no cache, one torch thread. The GPU scores the whole sample
in each round; the CPU scores only its first ``--cpu-sample`` cells (40 by default: at about 3 s a cell on one
thread, 200 would take 10 minutes a round), and its rate is measured on those. Rounds alternate CPU, GPU, CPU,
GPU, ... so that a machine whose speed drifts (other jobs, clocks, turbo) shifts both sides alike, and the ratio is
taken between rounds of the same run. One unmeasured warm-up scores a few cells on each device first (CUDA
start-up, cuDNN, the first allocations). The cells both devices score also give the largest CPU/GPU difference
of each proxy's score.

The GPU side is also measured with ``--gpu-workers`` process workers (one torch thread each) sharing the GPU:
one process leaves a GPU mostly idle (each cell is a few hundred small kernels launched from Python), so several
processes feeding it concurrently score more cells per second. Each worker count is a separate side of the same
alternating rounds, and its pool is started (and warmed up) once, outside the timed rounds.

Search: ``nasx.run(search="freerea", max_wall=45, device=...)`` on cifar10 (real images), cifar100 and
ImageNet16-120 (the synthetic batch), seeds 0..``--seeds``-1, no cache, with ``--search-workers`` process workers on
the GPU (1: serial); reports test accuracy and cells scored.

Smoke test on a machine without a GPU (the "GPU" side is then the CPU too, so the ratio is about 1):

    NASX_DATA=../shared/data python benchmarks/gpu_throughput.py --device cpu --sample 4 --seeds 1 --max-wall 5
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

PROXIES = ["naswot", "logsynflow", "skip"]  # FreeREA's, each with its default options
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
IMAGES = "cifar10_test_512_jpeg.npz"
SPACE_SIZE = 15625  # NATS-TSS cells


def sample_archs(count: int) -> list[str]:
    """The first ``count`` cells of the fixed 200-cell sample (a larger count extends the same random draw)."""
    from nasx.plugins import Plugins

    space = Plugins().get("space", "nats-tss")(dataset="cifar10")
    indices = random.Random(0).sample(range(SPACE_SIZE), max(count, 200))[:count]
    return [space.encode(space.genotype_at(index)) for index in indices]


def score(archs: list[str], device: str, images, plugins, executor=None) -> tuple[float, list[dict]]:
    """Seconds to score ``archs`` on ``device`` (one torch thread per process, no cache), and the records; with
    ``executor`` (an open pool) its workers score, else this process does."""
    import nasx

    workers = {"threads": 1} if executor is None else {"executor": executor}
    start = time.perf_counter()
    records = nasx.score(archs, space="nats-tss", dataset="cifar10", proxies=PROXIES, images=images, cache=False,
                         device=device, plugins=plugins, **workers)
    return time.perf_counter() - start, records


def process_pool(workers: int):
    """An open pool of ``workers`` single-threaded processes, or None for 1 (this process scores)."""
    if workers == 1:
        return None
    from nasx.executors import ProcessExecutor

    pool = ProcessExecutor(workers=workers, threads=1)
    pool.open()
    return pool


def throughput(archs: list[str], cpu_count: int, device: str, rounds: int, images, plugins,
               gpu_workers: list[int]) -> dict:
    cpu_archs = archs[:cpu_count]
    warm_up = archs[:2]
    pools = {workers: process_pool(workers) for workers in gpu_workers}
    try:
        score(warm_up, "cpu", images, plugins)
        for workers, pool in pools.items():  # CUDA start-up of every worker, outside the timed rounds
            score(archs[:2 * workers], device, images, plugins, pool)
        sides = [("cpu", "cpu", cpu_archs, None)]
        sides += [(f"{device} x{workers}", device, archs, pool) for workers, pool in pools.items()]
        measured: dict[str, list[dict]] = {side[0]: [] for side in sides}
        records: dict[str, list[dict]] = {}
        for number in range(rounds):
            for side, side_device, side_archs, pool in sides:
                seconds, records[side] = score(side_archs, side_device, images, plugins, pool)
                rate = len(side_archs) / seconds
                measured[side].append({"round": number, "archs": len(side_archs), "seconds": seconds,
                                       "archs_per_second": rate})
                print(f"round {number} {side:>9}: {len(side_archs)} cells in {seconds:.1f} s = "
                      f"{rate:.2f} cells/s", flush=True)
    finally:
        for pool in pools.values():
            if pool is not None:
                pool.close()

    def rate(side: str) -> float:  # all rounds of a side pooled: cells over seconds
        return sum(r["archs"] for r in measured[side]) / sum(r["seconds"] for r in measured[side])

    found = {"cpu": {"archs_per_round": len(cpu_archs), "rounds": measured["cpu"], "archs_per_second": rate("cpu")}}
    for side, _, side_archs, _ in sides[1:]:
        found[side] = {"archs_per_round": len(side_archs), "rounds": measured[side],
                       "archs_per_second": rate(side), "ratio_to_cpu": rate(side) / rate("cpu"),
                       "largest_difference": differences(records["cpu"], records[side][:len(cpu_archs)])}
    return found


def differences(cpu: list[dict], device: list[dict]) -> dict:
    """Per proxy: the largest |device - cpu| and |device - cpu| / |cpu| over the cells both scored, and how many
    cells are NaN (or infinite) on one device and not on the other."""
    found = {}
    for proxy in PROXIES:
        absolute, relative, mismatched = 0.0, 0.0, 0
        for a, b in zip(cpu, device):
            x, y = a["scores"][proxy], b["scores"][proxy]
            if not (math.isfinite(x) and math.isfinite(y)):
                mismatched += not (x == y or (math.isnan(x) and math.isnan(y)))
                continue
            absolute = max(absolute, abs(y - x))
            relative = max(relative, abs(y - x) / abs(x) if x else (0.0 if y == 0 else math.inf))
        found[proxy] = {"max_abs": absolute, "max_rel": relative, "non_finite_mismatches": mismatched}
    return found


def search(dataset: str, seed: int, device: str, max_wall: float, images, plugins, pool) -> dict:
    import nasx

    workers = {"threads": 1} if pool is None else {"executor": pool}
    result = nasx.run(space="nats-tss", dataset=dataset, proxies=PROXIES, search="freerea", seed=seed,
                      max_wall=max_wall, images=images if dataset == "cifar10" else None, cache=False,
                      device=device, plugins=plugins, **workers)
    run = result.to_dict()
    run.pop("history")
    return run


def searches(device: str, seeds: int, max_wall: float, images, plugins, workers: int) -> dict:
    runs = []
    pool = process_pool(workers)
    try:
        if pool is not None:  # the workers' CUDA start-up is not part of any search's 45 s
            score(sample_archs(2 * workers), device, images, plugins, pool)
        for dataset in DATASETS:
            for seed in range(seeds):
                run = search(dataset, seed, device, max_wall, images, plugins, pool)
                runs.append(run)
                print(f"freerea {dataset} seed {seed}: accuracy {run['test_accuracy']:.2f}, {run['evaluated']} "
                      f"cells in {run['wall_seconds']:.1f} s", flush=True)
    finally:
        if pool is not None:
            pool.close()
    summary = {}
    for dataset in DATASETS:
        mine = [r for r in runs if r["dataset"] == dataset]
        accuracy = [r["test_accuracy"] for r in mine]
        summary[dataset] = {
            "accuracy_mean": statistics.mean(accuracy), "accuracy_std": statistics.pstdev(accuracy),
            "optimum_accuracy": mine[0].get("optimum_accuracy"),
            "cells_scored_mean": statistics.mean(r["evaluated"] for r in mine),
        }
        optimum = summary[dataset]["optimum_accuracy"]
        print(f"{dataset}: {summary[dataset]['accuracy_mean']:.2f} ± {summary[dataset]['accuracy_std']:.2f} "
              f"(optimum {optimum if optimum is None else round(optimum, 2)}), "
              f"{summary[dataset]['cells_scored_mean']:.0f} cells scored", flush=True)
    return {"max_wall": max_wall, "seeds": seeds, "workers": workers, "runs": runs, "summary": summary}


def machine(device: str) -> dict:
    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else device,
        "cpu": cpu, "cpu_cores": os.cpu_count(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the accelerator: cuda, cuda:N, mps (cpu: a smoke test)")
    parser.add_argument("--sample", type=int, default=200, help="cells the GPU scores per round")
    parser.add_argument("--cpu-sample", type=int, default=40, help="cells the CPU scores per round (at most --sample)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per device, alternating CPU and GPU")
    parser.add_argument("--seeds", type=int, default=3, help="FreeREA seeds per dataset (0: no search)")
    parser.add_argument("--max-wall", type=float, default=45.0, help="wall-clock seconds of each FreeREA search")
    parser.add_argument("--gpu-workers", default="1", metavar="N,N,...",
                        help="process workers sharing the GPU, one measured side each (1: this process)")
    parser.add_argument("--search-workers", type=int, default=1, help="process workers of each search (1: serial)")
    parser.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    args = parser.parse_args()
    try:
        gpu_workers = [int(n) for n in args.gpu_workers.split(",")]
    except ValueError:
        parser.error("--gpu-workers takes positive integers separated by commas")
    if (min(args.sample, args.cpu_sample, args.rounds, args.search_workers, *gpu_workers) < 1 or args.seeds < 0
            or not args.max_wall > 0):
        parser.error("--sample, --cpu-sample, --rounds and worker counts must be positive, --seeds >= 0, "
                     "--max-wall > 0")
    data_dir = os.environ.get("NASX_DATA")
    if not data_dir or not (Path(data_dir) / IMAGES).is_file():
        sys.exit(f"set NASX_DATA to the benchmark data directory (with {IMAGES})")

    from nasx.data import load_images
    from nasx.errors import NasxError
    from nasx.plugins import Plugins
    from nasx.scoring import resolve_device

    try:
        device = resolve_device(args.device)
    except NasxError as exc:
        sys.exit(f"error: {exc}")
    plugins = Plugins()
    images = load_images(Path(data_dir) / IMAGES, "cifar10")  # loaded once, not in every timed call
    archs = sample_archs(args.sample)
    results = {"machine": machine(device), "proxies": PROXIES, "threads_per_process": 1,
               "sample": {"seed": 0, "cells": len(archs), "cpu_cells": min(args.cpu_sample, len(archs))}}
    print(f"{results['machine']['device_name']} against {results['machine']['cpu']} (1 thread)", flush=True)
    results["throughput"] = throughput(archs, min(args.cpu_sample, len(archs)), device, args.rounds, images,
                                       plugins, gpu_workers)
    rates = results["throughput"]
    for side, found in rates.items():
        if side == "cpu":
            print(f"cells/s: cpu {found['archs_per_second']:.2f}", flush=True)
            continue
        print(f"cells/s: {side} {found['archs_per_second']:.2f}, ratio to cpu {found['ratio_to_cpu']:.1f}", flush=True)
        for proxy, largest in found["largest_difference"].items():
            print(f"  {proxy}: largest |{side} - cpu| {largest['max_abs']:.3g} (relative {largest['max_rel']:.3g}), "
                  f"non-finite mismatches {largest['non_finite_mismatches']}", flush=True)
    if args.seeds:
        results["search"] = searches(device, args.seeds, args.max_wall, images, plugins, args.search_workers)
    if args.json:
        from nasx import jsonio

        jsonio.write(args.json, results, indent=1)  # strict JSON: a non-finite number becomes null
        print("wrote", args.json)


if __name__ == "__main__":
    main()
