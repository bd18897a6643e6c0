"""FreeREA on NATS-Bench TSS: 10 seeds x 3 datasets, plus the per-architecture cost of naswot and logsynflow.

Run by hand (takes about half an hour on 2 cores):

    NASX_DATA=../shared/data python benchmarks/freerea_nats.py --out benchmarks/results/freerea_nats.json

Each search is ``nasx.run`` with FreeREA's defaults (N=25, n=5, naswot + logsynflow + skip, 3 initialisations
per score) and a budget of 45 recorded compute seconds, the paper's time budget. Scores are cached across seeds
in one cache file, so a replayed score is charged the time it took when first computed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def search(dataset: str, seed: int, data_dir: str, cache: str, budget: dict) -> dict:
    import nasx

    images = Path(data_dir) / "cifar10_test_512_jpeg.npz" if dataset == "cifar10" else None
    result = nasx.run(space="nats-tss", dataset=dataset, proxies=["naswot", "logsynflow", "skip"], search="freerea",
                      seed=seed, data_dir=data_dir, cache=cache, images=images, **budget)
    return result.to_dict()


def parse_budget(text: str) -> dict:
    """'--max-time 45' -> {'max_time': 45.0}"""
    words = text.split()
    return {flag.lstrip("-").replace("-", "_"): (int(value) if flag == "--max-evals" else float(value))
            for flag, value in zip(words[::2], words[1::2])}


def proxy_costs(data_dir: str, count: int = 40) -> dict:
    """Median seconds of one score (one initialisation) of naswot (batch 64) and logsynflow on random cells."""
    from nasx.data import load_images
    from nasx.plugins import Plugins
    from nasx.torch_utils import initialise

    plugins = Plugins()
    space = plugins.get("space", "nats-tss")(dataset="cifar10")
    batch = load_images(Path(data_dir) / "cifar10_test_512_jpeg.npz", "cifar10").take(64)
    proxies = {name: plugins.get("proxy", name)() for name in ("naswot", "logsynflow")}
    times: dict[str, list[float]] = {name: [] for name in proxies}
    rng = random.Random(0)
    for _ in range(count):
        network = space.build(space.sample(rng))
        for name, proxy in proxies.items():
            initialise(network, "kaiming", seed=0)
            start = time.perf_counter()
            proxy.score_network(network, batch if proxy.needs_data else None, space)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/freerea_nats.json")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", default="--max-time 45")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args()
    data_dir = os.environ.get("NASX_DATA")
    if not data_dir:
        sys.exit("set NASX_DATA to the benchmark data directory")
    results = {"budget": args.budget, "proxy_seconds": proxy_costs(data_dir), "runs": []}
    print("median seconds per score:", results["proxy_seconds"], flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        cache = str(Path(scratch) / "scores.sqlite")
        for dataset in args.datasets:
            for seed in range(args.seeds):
                run = search(dataset, seed, data_dir, cache, parse_budget(args.budget))
                run.pop("history")
                results["runs"].append(run)
                print(dataset, seed, run["test_accuracy"], run["evaluated"], round(run["wall_seconds"], 1),
                      round(run["compute_seconds"], 1), flush=True)
    for dataset in args.datasets:
        runs = [r for r in results["runs"] if r["dataset"] == dataset]
        accuracy = [r["test_accuracy"] for r in runs]
        print(
            f"{dataset}: {statistics.mean(accuracy):.2f} ± {statistics.pstdev(accuracy):.2f} "
            f"(optimum {runs[0]['optimum_accuracy']:.2f}), wall {statistics.mean(r['wall_seconds'] for r in runs):.1f} s, "
            f"compute {statistics.mean(r['compute_seconds'] for r in runs):.1f} s, "
            f"scored {statistics.mean(r['evaluated'] for r in runs):.0f}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
