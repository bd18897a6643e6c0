"""Two costs at the ends of a search, each measured alternately in the same run (A, B, A, B):

1. A full collection of the cyclic garbage collector in a forked worker, with and without ``gc.freeze()`` of what
   it inherits. This process imports what the forkserver preloads (torch, networkx, nasx.scoring), then forks
   children that allocate some young objects and time ``gc.collect()``; half of them freeze first.
2. The first ``index_of`` of a nats-tss space, in fresh processes, with the space code of ``--before`` (a commit)
   and with the working tree.

Usage: python benchmarks/exploratory/worker_gc_and_index.py [--rounds 5] [--before 5d5a707]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TSS = "plugins/nasx-nats/nasx_nats/tss.py"
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
# Run in a fresh process: decode once, then time the first index_of (stdin carries the space module's source).
FIRST_INDEX_OF = f"""
import sys, time, types
module = types.ModuleType("nasx_nats.tss_timed")
module.__file__ = "tss.py"
exec(compile(sys.stdin.read(), "tss.py", "exec"), module.__dict__)
space = module.NatsTopologySpace(dataset="cifar10")
genotype = space.decode({ARCH!r})
start = time.perf_counter()
index = space.index_of(genotype)
print(time.perf_counter() - start, index)
"""


def collection_seconds(freeze: bool) -> float:
    """Fork a child that (optionally) freezes what it inherited, makes young objects, and times a collection."""
    import gc

    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a worker's situation
        os.close(reader)
        if freeze:
            gc.freeze()
        young = [{"cell": i, "scores": [float(i)]} for i in range(20000)]  # what scoring leaves behind
        start = time.perf_counter()
        gc.collect()
        os.write(writer, f"{time.perf_counter() - start}".encode())
        del young
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as handle:
        seconds = float(handle.read())
    os.waitpid(pid, 0)
    return seconds


def first_index_of(source: str) -> tuple[float, int]:
    done = subprocess.run([sys.executable, "-c", FIRST_INDEX_OF], input=source, capture_output=True, text=True,
                          check=True, cwd=ROOT)
    seconds, index = done.stdout.split()
    return float(seconds), int(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="5d5a707", help="commit of the 'before' nats-tss space code")
    args = parser.parse_args()

    import networkx  # noqa: F401  (what the forkserver preloads)
    import torch  # noqa: F401

    import nasx.scoring  # noqa: F401

    collections = {"inherited": [], "frozen": []}
    for _ in range(args.rounds):
        collections["inherited"].append(collection_seconds(freeze=False))
        collections["frozen"].append(collection_seconds(freeze=True))
    ratios = [f / i for i, f in zip(collections["inherited"], collections["frozen"])]
    print("full collection in a forked worker, s (median over rounds): "
          f"inherited objects walked {statistics.median(collections['inherited']):.4f}, "
          f"frozen {statistics.median(collections['frozen']):.4f}; frozen / walked, median of the rounds' ratios "
          f"{statistics.median(ratios):.3f}")

    before = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.before}:{TSS}"], check=True,
                            capture_output=True, text=True).stdout
    after = (ROOT / TSS).read_text()
    times, indices = {"before": [], "after": []}, set()
    for _ in range(args.rounds):
        for name, source in (("before", before), ("after", after)):
            seconds, index = first_index_of(source)
            times[name].append(seconds)
            indices.add(index)
    if len(indices) != 1:
        sys.exit(f"before and after gave the architecture different indices: {sorted(indices)}")
    ratios = [a / b for b, a in zip(times["before"], times["after"])]
    print(f"first nats-tss index_of, s (median over rounds): before {statistics.median(times['before']):.4f}, "
          f"after {statistics.median(times['after']):.4f}; after / before, median of the rounds' ratios "
          f"{statistics.median(ratios):.3f} (index {indices.pop()} both)")


if __name__ == "__main__":
    main()
