"""How reproducible GraSP and Fisher are: Spearman between scores with init seeds 0 and 1, and with two batches,
on 80 random cifar10 rows of NAS-Bench-Suite-Zero (PyTorch init), and each against NASLib's values.

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/grasp_stability.py
"""

import argparse
import csv
import gzip
import os
import random

from scipy.stats import spearmanr

from nasx.data import Batch, load_images
from nasx.evaluator import Evaluator
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.gradients import Fisher, Grasp


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    data = os.environ["NASX_DATA"]
    with gzip.open(f"{data}/naslib_zc_nb201_subset.csv.gz", "rt") as handle:
        rows = [row for row in csv.DictReader(handle) if row["dataset"] == "cifar10"]
    rows = random.Random(0).sample(rows, 80)
    space = NatsTopologySpace(dataset="cifar10")
    first = load_images(f"{data}/cifar10_test_512_jpeg.npz", "cifar10")
    second = Batch(first.images[64:128], first.labels[64:128], "second")
    scores = {}
    for name, batch, seed in [("seed 0", first, 0), ("seed 1", first, 1), ("batch 2", second, 0)]:
        evaluator = Evaluator(space, [Grasp(), Fisher()], batch, init="pytorch", init_seed=seed)
        scores[name] = [evaluator.evaluate(space.decode(row["arch"])).scores for row in rows]
    for proxy in ("grasp", "fisher"):
        ours = {name: [s[proxy] for s in values] for name, values in scores.items()}
        naslib = [float(row[proxy]) for row in rows]
        print(proxy, "seed0 vs seed1", spearmanr(ours["seed 0"], ours["seed 1"])[0],
              "batch1 vs batch2", spearmanr(ours["seed 0"], ours["batch 2"])[0],
              "vs naslib", spearmanr(ours["seed 0"], naslib)[0], spearmanr(ours["seed 1"], naslib)[0])


if __name__ == "__main__":
    main()
