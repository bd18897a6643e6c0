"""How noisy is a measured latency on this machine? The same cells measured again and again, idle and under load.

Measures ``--cells`` seeded random NATS-TSS cells (cifar10 input, batch 1, one thread, PyTorch eager: the
defaults of ``--max-latency``) in ``--rounds`` rounds, each round every cell once (5 untimed runs, the median of
20 timed ones, as ``nasx run`` measures). With ``--load N``, the rounds alternate: one with the machine otherwise
idle, one while N other processes spin on the CPU (what a user's other work, or a second search, does to it).
Reports, per condition, the spread of each cell's latency across rounds ((max - min) / median of its medians), the
spread within one measurement (IQR / median), and how well two rounds agree on the order of the cells (Kendall τ).

    NASX_DATA=../shared/data python benchmarks/latency_noise.py --rounds 10 --load 2 \
        --out benchmarks/results/latency_noise.json
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import random
import statistics
import sys


def spin() -> None:
    while True:
        pass


def measure_round(meter, genotypes) -> list[dict]:
    return [meter.measure(g).as_dict() for g in genotypes]


def summarise(rounds: list[list[dict]]) -> dict:
    from scipy.stats import kendalltau

    cells = list(zip(*rounds))  # per cell: its measurement in every round
    across = [(max(m["median_ms"] for m in c) - min(m["median_ms"] for m in c))
              / statistics.median(m["median_ms"] for m in c) for c in cells]
    within = [m["iqr_ms"] / m["median_ms"] for r in rounds for m in r]
    taus = [float(kendalltau([m["median_ms"] for m in a], [m["median_ms"] for m in b]).statistic)
            for a, b in itertools.combinations(rounds, 2)]
    return {"rounds": len(rounds), "across_rounds_spread_median": statistics.median(across),
            "across_rounds_spread_max": max(across), "within_iqr_over_median_median": statistics.median(within),
            "kendall_tau_between_rounds_min": min(taus) if taus else None,
            "kendall_tau_between_rounds_median": statistics.median(taus) if taus else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=12, help="random cells measured (default 12)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of measuring every cell (default 6)")
    parser.add_argument("--load", type=int, default=0, help="spinning processes in every other round (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write every measurement and the summary as JSON")
    args = parser.parse_args(argv)

    from nasx import jsonio
    from nasx.evaluator import ScoreCache
    from nasx.latency import LatencyMeter
    from nasx.plugins import Plugins
    from nasx.settings import Latency

    space = Plugins().get("space", "nats-tss")(dataset="cifar10")
    rng = random.Random(args.seed)
    genotypes = [space.sample(rng) for _ in range(args.cells)]
    meter = LatencyMeter(space, Latency(), ScoreCache(None), "cpu")
    meter.measure(genotypes[0])  # torch's first call pays its own start-up
    conditions: dict[str, list[list[dict]]] = {"idle": [], "loaded": []}
    for number in range(args.rounds):
        loaded = args.load > 0 and number % 2 == 1
        spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.load if loaded else 0)]
        for process in spinners:
            process.start()
        try:
            conditions["loaded" if loaded else "idle"].append(measure_round(meter, genotypes))
        finally:
            for process in spinners:
                process.kill()
                process.join()
        print(f"round {number} ({'loaded' if loaded else 'idle'}) done", file=sys.stderr, flush=True)
    summary = {name: summarise(rounds) for name, rounds in conditions.items() if len(rounds) >= 1}
    for name, figures in summary.items():
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})
    if args.out:
        jsonio.write(args.out, {"cells": [space.encode(g) for g in genotypes], "settings": vars(args),
                                "latency": meter.describe(), "summary": summary, "measurements": conditions},
                     indent=2)


if __name__ == "__main__":
    main()
