"""Accuracy on all three NATS-Bench TSS datasets of the architectures that searches on cifar10 selected (the
NASWOT paper's protocol: search with CIFAR-10 images, report the chosen cell's test accuracy on each dataset).

Usage: NASX_DATA=../shared/data python benchmarks/across_datasets.py RUNS.csv
Prints one row per (search, budget): mean ± population std over seeds for cifar10, cifar100, ImageNet16-120.
"""

import argparse
import csv
import gzip
import os
import statistics
from collections import defaultdict

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", help="runs.csv of a `nasx experiment` that searched on cifar10")
    args = parser.parse_args()
    with gzip.open(os.path.join(os.environ["NASX_DATA"], "nats_tss.csv.gz"), "rt") as handle:
        table = {row["arch"]: row for row in csv.DictReader(handle)}
    groups = defaultdict(list)
    with open(args.runs, newline="") as handle:
        for run in csv.DictReader(handle):
            if run["dataset"] == "cifar10":
                groups[(run["label"], run["budget"])].append(table[run["arch"]])
    print("| search | budget | seeds | " + " | ".join(DATASETS) + " |")
    print("|---|---|---|" + "---|" * len(DATASETS))
    for (label, budget), rows in groups.items():
        cells = []
        for dataset in DATASETS:
            values = [float(row[f"{dataset}_test_acc"]) for row in rows]
            cells.append(f"{statistics.fmean(values):.2f} ± {statistics.pstdev(values):.2f}")
        print(f"| {label} | {budget} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
