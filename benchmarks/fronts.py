"""Accuracy-cost fronts on NATS-Bench TSS: how close multi-objective searches come to the benchmark's true front.

For each dataset, each cost (params, FLOPs, measured CPU latency) and each search (nsga2, mo-freerea, Optuna's TPE
and NSGA-II, and random search as the baseline), ``--seeds`` searches with FreeREA's proxies (naswot, logsynflow,
skip; its fitness) and the objectives fitness x cost, under a wall-clock budget (``--max-wall``, 45 s by default,
FreeREA's time budget). For params and FLOPs each run's front gets its hypervolume ratio to the true accuracy-cost
front (README, "Several objectives"); for latency there is no true front (it would need every cell's latency), so
the table reports the front's size, its latency range and the best true accuracy among its members.

Run by hand on an otherwise idle machine (the full setting is 2 datasets x 3 costs x 5 searches x 10 seeds x 45 s,
about 2.5 hours on 2 cores):

    NASX_DATA=../shared/data python benchmarks/fronts.py --out benchmarks/results/fronts.json

A quick check that it runs: ``python benchmarks/fronts.py --seeds 1 --max-evals 10 --datasets cifar10``. Seeds
can be added later (``--first-seed 4 --seeds 2``) and the files put together with ``--merge A.json B.json``.

Each run scores from scratch (its own in-memory cache) so that a wall-clock budget is the same for every search and
seed; ``--cache PATH`` shares one score and latency cache across runs instead (then later runs replay earlier
scores and see more cells in the same time). Latency is measured in the driver with one thread and batch 1; with
``--workers N`` (N > 1, the process executor) it is measured while the workers are alive, which the results flag.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

#: label -> (searcher, its options)
SEARCHES = {
    "nsga2": ("nsga2", {}),
    "mo-freerea": ("mo-freerea", {}),
    "optuna-tpe": ("optuna", {"optuna.sampler": "tpe"}),
    "optuna-nsga2": ("optuna", {"optuna.sampler": "nsga2", "optuna.population_size": 20}),
    "random": ("random", {}),
}
COSTS = ("params", "flops", "latency")
PROXIES = ["naswot", "logsynflow", "skip"]


def one_run(dataset: str, cost: str, label: str, seed: int, args) -> dict:
    import nasx

    search, options = SEARCHES[label]
    images = Path(args.data_dir) / "cifar10_test_512_jpeg.npz" if dataset == "cifar10" else None
    budget = {"max_evals": args.max_evals} if args.max_evals else {"max_wall": args.max_wall}
    execution = ({"executor": "process", "workers": args.workers} if args.workers > 1 else {"executor": "serial"})
    result = nasx.run(space="nats-tss", dataset=dataset, proxies=PROXIES, search=search, seed=seed,
                      objectives=["fitness", cost], options=options, images=images, data_dir=args.data_dir,
                      cache=args.cache or False, latency_threads=1, latency_batch=1, **budget, **execution)
    front = result.front
    return {
        "dataset": dataset, "cost": cost, "search": label, "seed": seed,
        "evaluated": result.evaluated, "wall_seconds": result.wall_seconds, "stop_reason": result.stop_reason,
        "hypervolume_ratio": result.hypervolume_ratio, "hypervolume": result.hypervolume,
        "front_size": len(front),
        "front": [{key: member[key] for key in ("arch", "index", "objectives", "test_accuracy", "params_m",
                                                "flops_m", "latency_ms")} for member in front],
        "best_front_accuracy": max((m["test_accuracy"] for m in front), default=None),
        "latencies_measured": result.latencies_measured, "warnings": result.warnings,
        # the machine's speed when the latencies were measured (runs of different days compare through it)
        "latency_reference_ms": (result.latency or {}).get("reference_ms"),
    }


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and population std over seeds per (dataset, cost, search)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["dataset"], run["cost"], run["search"]), []).append(run)

    def spread(values):
        values = [v for v in values if v is not None]
        if not values:
            return None, None
        return statistics.fmean(values), statistics.pstdev(values)

    rows = []
    for (dataset, cost, search), group in groups.items():
        ratio, ratio_std = spread([r["hypervolume_ratio"] for r in group])
        accuracy, accuracy_std = spread([r["best_front_accuracy"] for r in group])
        latencies = [m["latency_ms"] for r in group for m in r["front"] if m["latency_ms"] is not None]
        rows.append({
            "dataset": dataset, "cost": cost, "search": search, "seeds": len(group),
            "hypervolume_ratio_mean": ratio, "hypervolume_ratio_std": ratio_std,
            "front_size_mean": statistics.fmean(r["front_size"] for r in group),
            "evaluated_mean": statistics.fmean(r["evaluated"] for r in group),
            "best_front_accuracy_mean": accuracy, "best_front_accuracy_std": accuracy_std,
            "front_latency_min_ms": min(latencies) if latencies else None,
            "front_latency_max_ms": max(latencies) if latencies else None,
        })
    return rows


def print_table(rows: list[dict]) -> None:
    def pair(mean, std, digits):
        return "n/a" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"

    print("| dataset | cost | search | seeds | HV ratio | front size | scored | best front acc % | front latency ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        latency = ("" if row["front_latency_min_ms"] is None
                   else f"{row['front_latency_min_ms']:.2f}–{row['front_latency_max_ms']:.2f}")
        print(f"| {row['dataset']} | {row['cost']} | {row['search']} | {row['seeds']} | "
              f"{pair(row['hypervolume_ratio_mean'], row['hypervolume_ratio_std'], 4)} | "
              f"{row['front_size_mean']:.1f} | {row['evaluated_mean']:.0f} | "
              f"{pair(row['best_front_accuracy_mean'], row['best_front_accuracy_std'], 2)} | {latency} |")


def main(argv: list[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per setting (default 10)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first seed: --first-seed S --seeds N runs S..S+N-1 (to add seeds to a run)")
    parser.add_argument("--max-wall", type=float, default=45.0, help="wall-clock seconds per search (default 45)")
    parser.add_argument("--max-evals", type=int, help="architectures per search instead of --max-wall (smoke tests)")
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "ImageNet16-120"])
    parser.add_argument("--costs", nargs="+", default=list(COSTS), choices=COSTS)
    parser.add_argument("--searches", nargs="+", default=list(SEARCHES), choices=list(SEARCHES))
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1: score in the driver)")
    parser.add_argument("--cache", help="share this score and latency cache across runs (default: none)")
    parser.add_argument("--data-dir", default=os.environ.get("NASX_DATA"), help="benchmark data [$NASX_DATA]")
    parser.add_argument("--out", help="write the runs and the summary as strict JSON")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="run nothing: the table (and with --out the file) of the runs of these result files")
    args = parser.parse_args(argv)
    if args.merge:
        import json

        from nasx import jsonio

        files = [json.loads(Path(path).read_text()) for path in args.merge]
        runs = [run for content in files for run in content["runs"]]
        print_table(summarise(runs))
        if args.out:
            jsonio.write(args.out, {"merged": args.merge, "settings": [c["settings"] for c in files],
                                    "proxies": PROXIES, "summary": summarise(runs), "runs": runs}, indent=2)
        return
    if not args.data_dir:
        parser.error("the benchmark data directory is needed: --data-dir or NASX_DATA")

    from nasx import jsonio

    settings = {key: getattr(args, key) for key in ("seeds", "first_seed", "max_wall", "max_evals", "datasets", "costs",
                                                    "searches", "workers", "cache")}
    runs = []
    for dataset in args.datasets:
        for cost in args.costs:
            for label in args.searches:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    runs.append(one_run(dataset, cost, label, seed, args))
                    run = runs[-1]
                    ratio = "" if run["hypervolume_ratio"] is None else f" HV ratio {run['hypervolume_ratio']:.4f}"
                    print(f"{dataset} {cost} {label} seed {seed}: {run['evaluated']} scored, front "
                          f"{run['front_size']}{ratio}", file=sys.stderr, flush=True)
                    if args.out:  # after every run: hours of runs are not lost to an interruption
                        jsonio.write(args.out, {"settings": settings, "proxies": PROXIES,
                                                "summary": summarise(runs), "runs": runs}, indent=2)
    print_table(summarise(runs))
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
