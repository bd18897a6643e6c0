"""Exploratory check of proxies on a random sample of NAS-Bench-Suite-Zero's NB201 rows: per proxy the median
seconds, Kendall tau with test accuracy, Spearman with NASLib's value, and NASLib's own tau.

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/naslib_sample.py DATASET N PROXIES [INIT] [proxy.opt=v ...]
Numbers in docs come from:
    ... naslib_sample.py cifar10 300 snip,grasp,fisher,grad_norm,jacob_cov,synflow,naswot pytorch
    ... naslib_sample.py cifar10 40 epsilon kaiming epsilon.batch_size=64
    ... naslib_sample.py cifar10 40 epsilon kaiming epsilon.batch_size=64 epsilon.double=1
"""

import argparse
import csv
import gzip
import os
import random
import time

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nasx.data import load_images, synthetic_batch
from nasx.evaluator import Evaluator
from nasx.plugins import Plugins
from nasx_nats.tss import NatsTopologySpace

NASLIB_COLUMN = {"jacob_cov": "jacov", "naswot": "nwot"}


def proxy_options(assignments: list[str], plugins: Plugins) -> dict[str, dict]:
    """'proxy.option=value' -> {proxy: {option: value}}, each value of its default's type."""
    options: dict[str, dict] = {}
    for assignment in assignments:
        key, value = assignment.split("=")
        proxy, option = key.split(".")
        default = plugins.get("proxy", proxy).defaults[option]
        typed = value.lower() in ("1", "true") if isinstance(default, bool) else type(default)(value)
        options.setdefault(proxy, {})[option] = typed
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("count", type=int, help="rows sampled")
    parser.add_argument("proxies", help="comma-separated proxy names")
    parser.add_argument("init", nargs="?", default="kaiming", help="kaiming (default) or pytorch")
    parser.add_argument("options", nargs="*", metavar="proxy.option=value")
    args = parser.parse_args()
    data = os.environ["NASX_DATA"]
    plugins = Plugins()
    options = proxy_options(args.options, plugins)
    with gzip.open(f"{data}/naslib_zc_nb201_subset.csv.gz", "rt") as handle:
        rows = [row for row in csv.DictReader(handle) if row["dataset"] == args.dataset]
    with gzip.open(f"{data}/nats_tss.csv.gz", "rt") as handle:
        accuracy = {int(row["index"]): float(row[f"{args.dataset}_test_acc"]) for row in csv.DictReader(handle)}
    rows = random.Random(0).sample(rows, args.count)
    space = NatsTopologySpace(dataset=args.dataset)
    if args.dataset == "cifar10":
        batch = load_images(f"{data}/cifar10_test_512_jpeg.npz", args.dataset)
    else:
        batch = synthetic_batch(space.input_shape, space.num_classes)
    proxies = [plugins.get("proxy", name)(**options.get(name, {})) for name in args.proxies.split(",")]
    evaluator = Evaluator(space, proxies, batch, init=args.init)
    start = time.time()
    results = [evaluator.evaluate(space.decode(row["arch"])) for row in rows]
    print("total", time.time() - start)
    truth = np.array([accuracy[int(row["index"])] for row in rows])
    for proxy in proxies:
        scores = np.array([result.scores[proxy.name] for result in results])
        seconds = np.median([result.seconds[proxy.name] for result in results])
        finite = np.isfinite(scores)
        sign = 1 if proxy.higher_is_better else -1
        line = (f"{proxy.name:10s} med {seconds:.3f}s nonfinite {(~finite).sum()} "
                f"tau_acc {kendalltau(sign * scores[finite], truth[finite])[0]:.3f}")
        column = NASLIB_COLUMN.get(proxy.name, proxy.name)
        if column in rows[0]:
            naslib = np.array([float(row[column]) if row[column] != "" else np.nan for row in rows])
            both = finite & np.isfinite(naslib)
            line += (f" rho_naslib {spearmanr(scores[both], naslib[both])[0]:.3f} (n={both.sum()}, ref nonfinite "
                     f"{(~np.isfinite(naslib)).sum()}) tau_naslib_acc {kendalltau(naslib[both], truth[both])[0]:.3f}")
        print(line)


if __name__ == "__main__":
    main()
