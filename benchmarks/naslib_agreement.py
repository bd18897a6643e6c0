"""Spearman agreement of nasx's proxies with NAS-Bench-Suite-Zero's values (naslib_zc_nb201_subset.csv.gz).

Run by hand:

    NASX_DATA=../shared/data python benchmarks/naslib_agreement.py --dataset cifar10 \
        --out benchmarks/results/naslib_agreement_cifar10.json

Every row of the dataset (about 725 cells), PyTorch's default initialisation (NASLib's networks use it), one
initialisation per score. cifar10 is scored on the real CIFAR-10 test images in the data directory; the other
datasets on nasx's synthetic batch, as no real images of them are available here.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import statistics
from pathlib import Path

from scipy.stats import spearmanr

import nasx

COLUMNS = {"snip": "snip", "grasp": "grasp", "fisher": "fisher", "grad_norm": "grad_norm", "jacob_cov": "jacov",
           "synflow": "synflow", "naswot": "nwot"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--limit", type=int, default=0, help="only the first N rows (0: all)")
    parser.add_argument("--cache", default="benchmarks/results/naslib_agreement.sqlite")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    data = Path(os.environ["NASX_DATA"])
    with gzip.open(data / "naslib_zc_nb201_subset.csv.gz", "rt") as handle:
        rows = [row for row in csv.DictReader(handle) if row["dataset"] == args.dataset]
    rows = rows[: args.limit or None]
    images = data / "cifar10_test_512_jpeg.npz" if args.dataset == "cifar10" else None
    ours = nasx.score([row["arch"] for row in rows], dataset=args.dataset, proxies=list(COLUMNS), images=images,
                      init="pytorch", cache=args.cache, options={"synflow.repeats": 1, "naswot.repeats": 1})
    report = {"dataset": args.dataset, "cells": len(rows), "input": str(images) if images else "synthetic",
              "init": "pytorch", "proxies": {}}
    for name in COLUMNS:
        pairs = [(e["scores"][name], float(r[COLUMNS[name]] or "nan")) for e, r in zip(ours, rows)]
        finite = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        report["proxies"][name] = {
            "spearman": spearmanr(*zip(*finite))[0],
            "pairs": len(finite),
            "non_finite_ours": sum(not math.isfinite(a) for a, _ in pairs),
            "non_finite_naslib": sum(not math.isfinite(b) for _, b in pairs),
            "median_seconds": statistics.median(e["seconds"][name] for e in ours),
        }
        print(f"{name:10s} Spearman {report['proxies'][name]['spearman']:.3f} on {len(finite)} cells")
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
