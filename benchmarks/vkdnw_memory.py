"""Time and peak memory of vkdnw with its per-image Jacobians taken one image at a time (the default) against all
images at once, on one NATS-TSS cell per dataset, one torch thread. The two settings alternate (A, B, A, B), each
in a fresh process, so that peak memory is its own.

Usage (from the repository root): python benchmarks/vkdnw_memory.py [--rounds 2] [--datasets cifar10,ImageNet16-120]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CELL = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"

ONE_RUN = """
import json, resource, sys, time, torch
torch.set_num_threads(1)
from nasx.data import synthetic_batch
from nasx.plugins import Plugins
from nasx.torch_utils import initialise
from nasx_proxies import vkdnw
dataset, cell, images_at_once = sys.argv[1], sys.argv[2], int(sys.argv[3])
vkdnw.IMAGES_AT_ONCE = images_at_once
space = Plugins().get("space", "nats-tss")(dataset=dataset)
network = space.build(space.decode(cell))
initialise(network, "kaiming", seed=0)
proxy = vkdnw.VKDNW()
batch = synthetic_batch(space.input_shape, space.num_classes).take(proxy.options["batch_size"])
start = time.perf_counter()
score = proxy.score_network(network, batch, space)
print(json.dumps({"seconds": time.perf_counter() - start, "score": score,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--datasets", default="cifar10,ImageNet16-120")
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        runs = {1: [], 0: []}
        for _ in range(args.rounds):
            for images_at_once in (1, 0):
                out = subprocess.run([sys.executable, "-c", ONE_RUN, dataset, CELL, str(images_at_once)],
                                     capture_output=True, text=True, check=True).stdout
                runs[images_at_once].append(json.loads(out))
        per_image, at_once = runs[1], runs[0]
        ratios = [b["seconds"] / a["seconds"] for a, b in zip(per_image, at_once)]
        print(f"{dataset}: one image at a time {[round(r['seconds'], 1) for r in per_image]} s, "
              f"peak {max(r['peak_mb'] for r in per_image):.0f} MB; all at once "
              f"{[round(r['seconds'], 1) for r in at_once]} s, peak {max(r['peak_mb'] for r in at_once):.0f} MB; "
              f"time ratio (all at once / one at a time) per round {[round(r, 2) for r in ratios]}; "
              f"score difference {abs(per_image[0]['score'] - at_once[0]['score']):.2e}")


if __name__ == "__main__":
    main()
