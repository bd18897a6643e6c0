"""Does a search on your own images pick a network that learns better than a random one of the same budget?

Writes a 10-class image folder from the 512 CIFAR-10 test images under ``$NASX_DATA`` (51-52 per class), searches
the ``mobile`` space on it under a parameter limit with FreeREA's proxies, then trains the network found and a
random network of the space under the same limit (the first feasible sample of a seeded draw) for the same epochs
with the same recipe and seed (``nasx train``), for several seeds. Reported: each pair's final validation accuracy
and parameter count, and how often the found network is ahead. Small data: the validation split has about 100
images, so single pairs differ by noise; read the mean over seeds.

    NASX_DATA=../shared/data NASX_EXECUTOR=serial python benchmarks/own_task_training.py --seeds 5 --epochs 15 \
        --lr 0.02 --max-evals 100 --threads 1 --out benchmarks/results/own_task_training.json
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import statistics
import sys
import tempfile
import time


def write_folder(source: pathlib.Path, folder: pathlib.Path) -> int:
    import numpy as np
    from PIL import Image

    data = np.load(source)
    for i, (image, label) in enumerate(zip(data["x"], data["y"])):
        target = folder / str(data["class_names"][label])
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"{i:04d}.png")
    return len(data["y"])


def random_feasible(space, max_params: float, seed: int) -> str:
    rng = random.Random(10_000 + seed)  # not the search's own draws (its first sample would be the same)
    for _ in range(10_000):
        genotype = space.sample(rng)
        if space.cost(genotype).params_m <= max_params:
            return space.encode(genotype)
    raise SystemExit(f"no sample of 10000 is under {max_params} M parameters")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-params", type=float, default=3.0, help="parameter limit in millions")
    parser.add_argument("--max-evals", type=int, default=60, help="cells each search scores")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=0.05, help="nasx train's learning rate")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="write the pairs as JSON")
    args = parser.parse_args(argv)

    import nasx
    from nasx import jsonio
    from nasx.datasets import open_images
    from nasx.plugins import Plugins

    source = pathlib.Path(os.environ.get("NASX_DATA", "../shared/data")) / "cifar10_test_512_jpeg.npz"
    if not source.is_file():
        raise SystemExit(f"{source} not found: set NASX_DATA to the benchmark data directory")
    work = pathlib.Path(tempfile.mkdtemp(prefix="nasx-own-task-"))
    folder = work / "photos"
    count = write_folder(source, folder)
    space = Plugins().get("space", "mobile")().for_data(open_images(folder).task)

    pairs = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        found = nasx.run(space="mobile", data=folder, proxies=["freerea"], max_params=args.max_params,
                         max_evals=args.max_evals, seed=seed, cache=False, threads=args.threads)
        search_s = time.perf_counter() - start
        candidates = {"found": found.arch, "random": random_feasible(space, args.max_params, seed)}
        row = {"seed": seed, "search_s": round(search_s, 1), "evaluated": found.evaluated}
        for name, arch in candidates.items():
            trained = nasx.train(data=folder, arch=arch, space="mobile", epochs=args.epochs, seed=seed, lr=args.lr,
                                 val_fraction=args.val_fraction, threads=args.threads, out=work / f"{name}-{seed}")
            row[name] = {"arch": arch, "params_m": space.cost(space.decode(arch)).params_m,
                         "final_val_accuracy": trained.final_val_accuracy,
                         "train_loss": [epoch["train_loss"] for epoch in trained.history]}
        pairs.append(row)
        print(f"seed {seed}: found {row['found']['final_val_accuracy']:.2f} % ({row['found']['params_m']:.2f} M) "
              f"random {row['random']['final_val_accuracy']:.2f} % ({row['random']['params_m']:.2f} M)",
              file=sys.stderr)

    found_acc = [p["found"]["final_val_accuracy"] for p in pairs]
    random_acc = [p["random"]["final_val_accuracy"] for p in pairs]
    summary = {"images": count, "classes": 10, "max_params_m": args.max_params, "epochs": args.epochs,
               "max_evals": args.max_evals, "val_fraction": args.val_fraction, "lr": args.lr,
               "found_mean": statistics.mean(found_acc), "random_mean": statistics.mean(random_acc),
               "found_ahead": sum(f > r for f, r in zip(found_acc, random_acc)), "pairs": pairs}
    print(jsonio.dumps({k: v for k, v in summary.items() if k != "pairs"}))
    if args.out:
        pathlib.Path(args.out).write_text(jsonio.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
