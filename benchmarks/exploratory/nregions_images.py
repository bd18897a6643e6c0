"""How much nregions' ranking depends on the images its 3x3 patches are cut from: Kendall tau with cifar10 test
accuracy on the 300 cells of `nasx correlate --sample 300 --seed 0`, patches drawn (fixed seed) from the first
32 / 64 / 128 / 256 / 512 real CIFAR-10 test images, and the 512-image scores again in float64.

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/nregions_images.py
"""
import argparse
import csv
import dataclasses
import gzip
import os
import random

import numpy as np
from scipy.stats import kendalltau

from nasx.data import load_images
from nasx.plugins import Plugins


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    import torch

    from nasx.torch_utils import initialise

    torch.set_num_threads(1)
    data = os.environ["NASX_DATA"]
    plugins = Plugins()
    space = plugins.get("space", "nats-tss")(dataset="cifar10")
    proxy = plugins.get("proxy", "nregions")()
    batch = load_images(f"{data}/cifar10_test_512_jpeg.npz", "cifar10")
    with gzip.open(f"{data}/nats_tss.csv.gz", "rt") as handle:
        accuracy = {int(r["index"]): float(r["cifar10_test_acc"]) for r in csv.DictReader(handle)}
    cells = random.Random(0).sample(range(len(space)), 300)  # the cells of correlate --sample 300 --seed 0

    sizes = (32, 64, 128, 256, 512)
    scores = {size: [] for size in sizes}
    in_double = []
    for index in cells:
        network = space.build(space.genotype_at(index))
        initialise(network, "kaiming", seed=0)
        for size in sizes:
            scores[size].append(proxy.score_network(network, dataclasses.replace(batch, images=batch.images[:size]),
                                                    space))
        in_double.append(proxy.score_network(network.double(),
                                             dataclasses.replace(batch, images=batch.images.double()), space))
    truth = [accuracy[index] for index in cells]
    for size in sizes:
        print(f"first {size:3d} images: tau {kendalltau(scores[size], truth)[0]:.3f}, "
              f"median count {np.median(scores[size]):.0f} of {proxy.options['samples']}")
    print(f"512 images in float64: tau {kendalltau(in_double, truth)[0]:.3f}, "
          f"{sum(a != b for a, b in zip(in_double, scores[512]))} of 300 counts differ from float32")


if __name__ == "__main__":
    main()
