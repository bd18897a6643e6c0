"""nregions on 80 random NATS-TSS cells (cifar10, real images): Spearman with FreeREA's cached nregions and
Kendall tau with test accuracy.

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/nregions_vs_freerea.py
"""
import argparse
import csv
import gzip
import os
import random

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nasx.data import load_images
from nasx.evaluator import Evaluator
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.tenas import LinearRegions


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    data = os.environ["NASX_DATA"]
    space = NatsTopologySpace(dataset="cifar10")
    batch = load_images(f"{data}/cifar10_test_512_jpeg.npz", "cifar10")
    with gzip.open(f"{data}/nats_tss_freerea_proxies.csv.gz", "rt") as handle:
        freerea = {int(r["index"]): float(r["cifar10_nregions"]) for r in csv.DictReader(handle)}
    with gzip.open(f"{data}/nats_tss.csv.gz", "rt") as handle:
        accuracy = {int(r["index"]): float(r["cifar10_test_acc"]) for r in csv.DictReader(handle)}
    cells = random.Random(1).sample(range(15625), 80)
    for options in [dict(samples=1000, patch=3)]:  # the defaults (smaller patches do not fit the reductions)
        evaluator = Evaluator(space, [LinearRegions(**options)], batch)
        ours = np.array([evaluator.evaluate(space.genotype_at(i)).scores["nregions"] for i in cells])
        print(options, np.percentile(ours, [0, 50, 100]),
              "rho_freerea", spearmanr(ours, [freerea[i] for i in cells])[0],
              "tau_acc", kendalltau(ours, [accuracy[i] for i in cells])[0])
    print("freerea tau", kendalltau([freerea[i] for i in cells], [accuracy[i] for i in cells])[0])


if __name__ == "__main__":
    main()
