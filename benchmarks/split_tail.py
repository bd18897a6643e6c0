"""The last genotypes of a call, scored one task per proxy on two worker processes: does ordering each proxy's
tasks by FLOPs and building each network once per worker (``ScoringSetup.keep_network``) shorten a step?

FreeREA's step on nats-tss (three children, naswot + logsynflow + skip, one initialisation) is scored by two
evaluators, each with its own pool of two workers (one torch thread each), alternately in the same run: the
working tree's evaluator ("new") and one with both changes undone ("old": every task builds its network, tasks of
one proxy go in the order of the genotypes). A round scores the same three genotypes new, old, old, new (or the
mirror), without a cache; the ratio new/old of each round's summed step times is reported, with its median.
Only one pool computes at a time; the other's workers wait on their pipes.

    NASX_DATA=../shared/data python benchmarks/split_tail.py --rounds 40 --out benchmarks/results/split_tail_40rounds_avx2_cpu.json
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

from nasx.evaluator import Evaluator
from nasx.scoring import ScoringSetup


class RebuildingSetup(ScoringSetup):
    """The setup before the change: no network is kept for a later task (this class travels to the workers by
    value, as a script's classes do)."""

    def keep_network(self, arch, network):
        pass


class GenotypeOrderEvaluator(Evaluator):
    """Tasks of one proxy in the order of the genotypes, as before."""

    def _flops(self, genotype):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", help="write the step times and ratios as JSON")
    args = parser.parse_args()

    from nasx import jsonio
    from nasx.data import load_images
    from nasx.executors import ProcessExecutor
    from nasx.plugins import Plugins

    plugins = Plugins()
    space = plugins.get("space", "nats-tss")(dataset="cifar10")
    proxies = [plugins.get("proxy", name)(repeats=1) for name in ("naswot", "logsynflow")]
    proxies.append(plugins.get("proxy", "skip")())
    batch = load_images(Path(os.environ["NASX_DATA"]) / "cifar10_test_512_jpeg.npz", "cifar10", size=64)
    pools = {side: ProcessExecutor(workers=2, threads=1) for side in ("new", "old")}
    evaluators = {"new": Evaluator(space, proxies, batch, executor=pools["new"]),
                  "old": GenotypeOrderEvaluator(space, proxies, batch, executor=pools["old"])}
    old_setup = evaluators["old"].setup
    evaluators["old"].setup = RebuildingSetup(old_setup.space, old_setup.proxies, old_setup.batch, old_setup.init,
                                              old_setup.init_seed, old_setup.device)
    rng = random.Random(0)
    try:
        for side, evaluator in evaluators.items():  # start the workers and learn each proxy's seconds
            evaluator.evaluate_many([space.sample(rng) for _ in range(6)])
        rounds = []
        for number in range(args.rounds):
            children = [space.sample(rng) for _ in range(3)]
            order = ["new", "old", "old", "new"] if number % 2 == 0 else ["old", "new", "new", "old"]
            seconds = {"new": 0.0, "old": 0.0}
            for side in order:
                evaluators[side].cache.db.execute("DELETE FROM scores")
                start = time.perf_counter()
                evaluators[side].evaluate_many(children)
                seconds[side] += time.perf_counter() - start
            rounds.append({"new_s": seconds["new"] / 2, "old_s": seconds["old"] / 2,
                           "ratio": seconds["new"] / seconds["old"]})
            print(f"round {number}: new {seconds['new'] / 2:.3f} s, old {seconds['old'] / 2:.3f} s, "
                  f"ratio {seconds['new'] / seconds['old']:.3f}", flush=True)
    finally:
        for pool in pools.values():
            pool.close()
    ratios = [r["ratio"] for r in rounds]
    print(f"median ratio new/old: {statistics.median(ratios):.3f} [{min(ratios):.3f}, {max(ratios):.3f}]; "
          f"summed: {sum(r['new_s'] for r in rounds) / sum(r['old_s'] for r in rounds):.3f}")
    if args.out:
        jsonio.write(args.out, {"rounds": rounds, "median_ratio": statistics.median(ratios)})


if __name__ == "__main__":
    main()
