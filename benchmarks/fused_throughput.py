"""Fused scoring: NATS-Bench TSS cells per second against the architectures per pass K (``--batch-archs``).

FreeREA's proxies (naswot on 64 images of the synthetic batch, logsynflow, skip), one initialisation per score
(``-o repeats=1``), no cache, on the device given. Every K in ``--ks`` (1, 2, 4, ..., 512 by default) scores the same
``--cells`` cells (``random.Random(0).sample(range(15625), cells)``) in each round, K = 1 (one architecture at a
time, today's path) among them; the order of the sides turns round every round, so that a machine whose speed
drifts shifts all sides alike. One unmeasured warm-up pass per K comes first (CUDA start-up, cuDNN's choices,
the first allocations). A K that runs out of memory is recorded as such, and larger ones are not tried. The cells
every side scores also give, per proxy, the largest difference of a K's scores from K = 1's.

    python benchmarks/fused_throughput.py --device cuda --out benchmarks/results/gpu/fused_throughput.json

The whole space (all 15625 cells, in index order, the same proxies) at one K, timed once:

    python benchmarks/fused_throughput.py --device cuda --whole-space --ks 256

Smoke test (a few cells, small K; the timings mean nothing there):

    python benchmarks/fused_throughput.py --device cpu --cells 6 --ks 1,2,4 --rounds 1
    python benchmarks/fused_throughput.py --device cpu --whole-space --ks 4 --limit 8
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import sys
import time

PROXIES = ["naswot", "logsynflow", "skip"]  # FreeREA's; naswot reads 64 images (its default batch size)
OPTIONS = {"repeats": 1}  # one initialisation per score
SPACE_SIZE = 15625  # NATS-TSS cells
DEFAULT_KS = [2**power for power in range(10)]  # 1, 2, 4, ..., 512


def sample_archs(count: int) -> list[str]:
    from nasx.plugins import Plugins

    space = Plugins().get("space", "nats-tss")(dataset="cifar10")
    return [space.encode(space.genotype_at(index)) for index in random.Random(0).sample(range(SPACE_SIZE), count)]


class FusionFailures:
    """Collects the warnings of fused passes that failed (out of memory, say) and were scored one at a time."""

    def __init__(self) -> None:
        import logging

        self.messages: list[str] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda entry: self.messages.append(entry.getMessage())
        logging.getLogger("nasx").addHandler(self.handler)


def timed(device: str, batch_archs: int, plugins, archs: list[str] | None = None, limit: int = 0):
    """(seconds, records, peak device bytes or None) of scoring ``archs`` (else the whole space, or its first
    ``limit`` cells) at ``batch_archs`` architectures per pass."""
    import nasx

    memory = None
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if archs is None and limit:
        archs = whole_space(limit)
    records = nasx.score(archs or (), all_archs=archs is None, space="nats-tss", dataset="cifar10", proxies=PROXIES,
                         options=OPTIONS, cache=False, device=device, threads=1, batch_archs=batch_archs,
                         plugins=plugins)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        memory = torch.cuda.max_memory_allocated()
    return time.perf_counter() - start, records, memory


def whole_space(limit: int) -> list[str]:
    from nasx.plugins import Plugins

    space = Plugins().get("space", "nats-tss")(dataset="cifar10")
    return [space.encode(space.genotype_at(index)) for index in range(min(limit, SPACE_SIZE))]


def differences(reference: list[dict], records: list[dict]) -> dict:
    """Per proxy: the largest |score - reference| and relative difference, and cells non-finite on one side only."""
    found = {}
    for name in PROXIES:
        largest = relative = 0.0
        mismatched = 0
        for a, b in zip(reference, records):
            x, y = a["scores"][name], b["scores"][name]
            if not (math.isfinite(x) and math.isfinite(y)):
                mismatched += not (x == y or (math.isnan(x) and math.isnan(y)))
                continue
            largest = max(largest, abs(x - y))
            relative = max(relative, abs(x - y) / abs(x) if x else abs(y))
        found[name] = {"largest": largest, "relative": relative, "non_finite_mismatches": mismatched}
    return found


def sweep(device: str, ks: list[int], cells: int, rounds: int, plugins) -> dict:
    archs = sample_archs(cells)
    sides: list[int] = []
    failures = FusionFailures()
    for k in sorted(set([1, *ks])):
        timed(device, k, plugins, archs[: max(2, min(k, cells))])  # warm-up
        if failures.messages:  # a fused pass failed (out of memory, say): that K scores one at a time
            print(f"K = {k}: {failures.messages[0]}; this and larger K not measured", flush=True)
            break
        sides.append(k)
    measured = {k: [] for k in sides}
    records: dict[int, list[dict]] = {}
    memory: dict[int, int | None] = {}
    for number in range(rounds):
        for k in sides if number % 2 == 0 else sides[::-1]:
            seconds, records[k], memory[k] = timed(device, k, plugins, archs)
            measured[k].append({"round": number, "seconds": seconds, "cells_per_second": cells / seconds})
            print(f"round {number} K = {k:>3}: {cells} cells in {seconds:.1f} s = {cells / seconds:.2f} cells/s",
                  flush=True)
    results = {}
    baseline = cells * rounds / sum(r["seconds"] for r in measured[1])
    for k in sides:
        rate = cells * rounds / sum(r["seconds"] for r in measured[k])
        results[str(k)] = {"rounds": measured[k], "cells_per_second": rate, "ratio_to_one_at_a_time": rate / baseline,
                           "peak_device_bytes": memory[k], "differences_from_one_at_a_time":
                           differences(records[1], records[k])}
        print(f"K = {k:>3}: {rate:.2f} cells/s, {rate / baseline:.2f} x one at a time", flush=True)
    return {"cells": cells, "rounds": rounds, "ks": results, "failed": failures.messages}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cpu, cuda, cuda:N [default: cuda]")
    parser.add_argument("--cells", type=int, default=512, help="cells scored by every K in every round")
    parser.add_argument("--ks", default=",".join(map(str, DEFAULT_KS)), help="architectures per pass, e.g. 1,4,16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--whole-space", action="store_true", help="time all 15625 cells at each K of --ks")
    parser.add_argument("--limit", type=int, default=0, help="with --whole-space: only the first LIMIT cells")
    parser.add_argument("--out", help="write the measurements as JSON")
    args = parser.parse_args(argv)

    import torch

    import nasx
    from nasx import jsonio
    from nasx.plugins import Plugins

    plugins = Plugins()
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    record = {
        "command": " ".join(sys.argv), "device": args.device, "proxies": PROXIES, "options": OPTIONS,
        "torch": torch.__version__, "nasx": nasx.__version__, "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else None,
    }
    if args.whole_space:
        record["whole_space"] = {}
        for k in ks:
            seconds, records, memory = timed(args.device, k, plugins, limit=args.limit)
            record["whole_space"][str(k)] = {"cells": len(records), "seconds": seconds,
                                             "cells_per_second": len(records) / seconds, "peak_device_bytes": memory}
            print(f"whole space, K = {k}: {len(records)} cells in {seconds:.1f} s = "
                  f"{len(records) / seconds:.2f} cells/s", flush=True)
    else:
        record["sweep"] = sweep(args.device, ks, args.cells, args.rounds, plugins)
    if args.out:
        jsonio.write(args.out, record, indent=2)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
