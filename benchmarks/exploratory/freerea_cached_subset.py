"""Kendall tau of FreeREA's cached proxy scores (shared data) over all NATS-TSS cells and over the cells without
dead edges (`nasx correlate --cells no-dead-edges`), the cells of the VKDNW paper's NB201 table. Needs no network.

Usage (from the repository root): NASX_DATA=../shared/data python benchmarks/exploratory/freerea_cached_subset.py
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from nasx_nats.tss import NatsTopologySpace, dead_edges


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    data = Path(os.environ["NASX_DATA"])
    with gzip.open(data / "nats_tss_freerea_proxies.csv.gz", "rt") as handle:
        cached = list(csv.DictReader(handle))
    space = NatsTopologySpace()
    genotypes = [space.genotype_at(int(row["index"])) for row in cached]
    kept = np.array([space.in_subset("no-dead-edges", genotype) for genotype in genotypes])
    # a cell has no input -> output path exactly when every operation in it is dead
    pathless = np.array([len(dead_edges(g)) == sum(op != "none" for _, _, op in g.edges(data="op")) for g in genotypes])
    print(f"{kept.sum()} of {len(kept)} cells without dead edges; of the {(~kept).sum()} others, "
          f"{(pathless & ~kept).sum()} have no input -> output path; non-finite scores left out")
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        oracle = NatsTopologySpace(dataset=dataset).oracle(str(data))
        accuracy = np.array([oracle.test_accuracy(genotype) for genotype in genotypes])
        for proxy in ("naswot", "synflow", "logsynflow"):
            score = np.array([float(row[f"{dataset}_{proxy}"] or "nan") for row in cached])
            finite = np.isfinite(score)
            taus = [kendalltau(score[finite & cells], accuracy[finite & cells]).statistic
                    for cells in (np.ones_like(kept), kept)]
            print(f"{dataset:15s} {proxy:10s} all {taus[0]:.3f} ({(~finite).sum()} non-finite)  "
                  f"no-dead-edges {taus[1]:.3f} ({(~finite & kept).sum()} non-finite)")


if __name__ == "__main__":
    main()
