"""Fused scoring on the CPU, roughly: the figures of docs/fusion.md (exploratory: they print and keep nothing).

- timing (the default): K random cells scored one network at a time and in one fused network (naswot and
  logsynflow, one initialisation, 64 images of the synthetic ImageNet16-120 batch, one torch thread): seconds of
  building and initialising, of naswot and of logsynflow, twice each side;
- ``--padding``: the convolution FLOPs a fused nats-sss pass computes (every block padded to the widest model's
  width) over those of the K networks, for random cells and for consecutive indices (the cost model; no network);
- ``--nb101``: NAS-Bench-101's cells grouped by operations and vertex widths (cells that differ only in their
  edges), from ``$NASX_DATA/nb101.csv.gz``.

Usage (from the repository root):
    python benchmarks/exploratory/fused_cpu.py --space nats-tss --models 16
    python benchmarks/exploratory/fused_cpu.py --padding
    NASX_DATA=../shared/data python benchmarks/exploratory/fused_cpu.py --nb101
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import statistics
import time
from pathlib import Path


def timing(space_name: str, models: int, images: int) -> None:
    import torch

    from nasx.data import synthetic_batch
    from nasx.plugins import Plugins
    from nasx.torch_utils import initialise, initialise_fused

    torch.set_num_threads(1)
    plugins = Plugins()
    space = plugins.get("space", space_name)(dataset="ImageNet16-120")
    naswot, logsynflow = plugins.get("proxy", "naswot")(repeats=1), plugins.get("proxy", "logsynflow")(repeats=1)
    batch = synthetic_batch(space.input_shape, space.num_classes, size=images, seed=3)
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(models)]

    def alone() -> list[float]:
        spent = [0.0, 0.0, 0.0]
        for genotype in genotypes:
            start = time.perf_counter()
            network = space.build(genotype)
            initialise(network, "kaiming", 0)
            middle = time.perf_counter()
            naswot.score_network(network, batch, space)
            scored = time.perf_counter()
            initialise(network, "kaiming", 0)
            logsynflow.score_network(network, None, space)
            spent = [spent[0] + middle - start, spent[1] + scored - middle, spent[2] + time.perf_counter() - scored]
        return spent

    def fused() -> list[float]:
        start = time.perf_counter()
        network = space.build_fused(genotypes)
        initialise_fused(network, "kaiming", 0)
        middle = time.perf_counter()
        naswot.score_fused(network, batch, space)
        scored = time.perf_counter()
        initialise_fused(network, "kaiming", 0)
        logsynflow.score_fused(network, None, space)
        return [middle - start, scored - middle, time.perf_counter() - scored]

    for name, run in (("one at a time", alone), ("fused", fused)) * 2:
        build, first, second = run()
        print(f"{space_name}, K = {models}, {name:>13}: build + initialise {build:.2f} s, naswot {first:.2f} s, "
              f"logsynflow {second:.2f} s")


def padding() -> None:
    from nasx.plugins import Plugins

    space = Plugins().get("space", "nats-sss")()
    rng = random.Random(0)

    def ratio(genotypes) -> float:
        channels = [space.channels(g) for g in genotypes]
        widest = space.from_channels(max(c[block] for c in channels) for block in range(5))
        return len(genotypes) * space.cost(widest).flops_m / sum(space.cost(g).flops_m for g in genotypes)

    print("| K | random cells | consecutive indices |")
    for models in (2, 4, 8, 16, 64, 256):
        drawn = statistics.fmean(ratio([space.sample(rng) for _ in range(models)])
                                 for _ in range(200 if models < 64 else 40))
        consecutive = statistics.fmean(ratio([space.genotype_at(i) for i in range(first, first + models)])
                                       for first in range(0, len(space) - models, len(space) // 50))
        print(f"| {models} | {drawn:.2f} | {consecutive:.2f} |")


def nb101() -> None:
    from nasx_nb101.cell import vertex_channels
    from nasx_nb101.oracle import load_table

    table = load_table(Path(os.environ["NASX_DATA"]) / "nb101.csv.gz")
    groups = collections.Counter()
    for position in range(len(table)):
        matrix, ops = table.cell(position)
        groups[(tuple(ops), tuple(vertex_channels(128, 128, matrix)))] += 1
    cells = len(table)
    shared = sum(count * (count - 1) for count in groups.values()) / (cells * (cells - 1))
    print(f"{cells} cells in {len(groups)} groups (largest {max(groups.values())}); two random cells share a group "
          f"with probability {shared:.4f}")
    members = list(groups.elements())
    rng = random.Random(0)
    for models in (16, 64, 256):
        spans = statistics.fmean(len(set(rng.sample(members, models))) for _ in range(50))
        print(f"a random batch of {models} cells spans {spans:.1f} groups on average")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nats-tss", choices=["nats-tss", "nats-sss"])
    parser.add_argument("--models", type=int, default=16, help="K, the cells of the fused network")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--padding", action="store_true", help="the nats-sss padding table instead")
    parser.add_argument("--nb101", action="store_true", help="the NAS-Bench-101 grouping instead")
    args = parser.parse_args()
    if args.padding:
        padding()
    elif args.nb101:
        nb101()
    else:
        timing(args.space, args.models, args.images)


if __name__ == "__main__":
    main()
