"""Exploratory check of nasx's NAS-Bench-101 networks against NAS-Bench-Suite-Zero's NB101 rows: Spearman
correlation between nasx's proxy values and NASLib's on a random sample of its cells (PyTorch's default
initialisation, as NASLib's networks use; cifar10 on the real test images).

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/naslib_nb101_sample.py N PROXIES
Numbers in docs come from:
    ... naslib_nb101_sample.py 30 synflow,snip,grad_norm,jacob_cov
"""

import argparse
import csv
import gzip
import os
import random
import time

import numpy as np
from scipy.stats import spearmanr

from nasx.data import load_images
from nasx.evaluator import Evaluator
from nasx.plugins import Plugins
from nasx_nb101.space import Nb101Space

NASLIB_OPS = ["input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu"]
NASLIB_COLUMN = {"jacob_cov": "jacov"}


def naslib_cell(text: str):
    values = [int(v) for v in text.strip("()").split(",")]
    return np.array(values[:49], dtype=np.int8).reshape(7, 7), [NASLIB_OPS[v] for v in values[49:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="rows sampled")
    parser.add_argument("proxies", help="comma-separated proxy names")
    args = parser.parse_args()
    data = os.environ["NASX_DATA"]
    count, names = args.count, args.proxies.split(",")
    with gzip.open(f"{data}/naslib_zc_nb101_subset.csv.gz", "rt") as handle:
        rows = random.Random(0).sample(list(csv.DictReader(handle)), count)
    space = Nb101Space(dataset="cifar10")
    plugins = Plugins()
    proxies = [plugins.get("proxy", name)(repeats=1) for name in names]
    evaluator = Evaluator(space, proxies, load_images(f"{data}/cifar10_test_512_jpeg.npz", "cifar10"),
                          init="pytorch")
    start = time.time()
    results = [evaluator.evaluate(space.from_cell(*naslib_cell(row["naslib_arch"]))) for row in rows]
    print(f"{count} cells in {time.time() - start:.0f} s")
    for proxy in proxies:
        ours = np.array([r.scores[proxy.name] for r in results])
        theirs = np.array([float(row[NASLIB_COLUMN.get(proxy.name, proxy.name)]) for row in rows])
        finite = np.isfinite(ours) & np.isfinite(theirs)
        print(f"{proxy.name:10s} Spearman with NASLib {spearmanr(ours[finite], theirs[finite])[0]:.3f} "
              f"(n = {finite.sum()})")


if __name__ == "__main__":
    main()
