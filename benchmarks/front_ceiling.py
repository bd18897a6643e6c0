"""The best hypervolume ratio a search can reach with a fitness: the ratio of the fitness's own front over the whole space.

A multi-objective search (``--objective fitness --objective params``) returns the non-dominated cells of fitness x
cost among those it scored; its hypervolume ratio is that of their *true* accuracies against the benchmark's true
accuracy-cost front (``nasx.objectives``). A search that scored every cell would return the fitness's front over the
whole space, so the ratio of that front is the ceiling of a searcher with this fitness (up to the normalisation of
the combiner, here over the whole space, in a search over the cells it explored): what is missing below it is the
searcher's, what is missing above it is the fitness's.

    NASX_DATA=../shared/data python benchmarks/front_ceiling.py \\
        --scores cifar10=benchmarks/results/whole_space/correlations_cifar10_all.json \\
        --scores ImageNet16-120=benchmarks/results/whole_space/scores_ImageNet16-120_all_synthetic.jsonl.gz \\
        --fitness "freerea(naswot,logsynflow,skip)" --out benchmarks/results/front_ceiling.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", action="append", required=True, metavar="DATASET=FILE",
                        help="every cell's scores of a dataset (as budget_yardstick.py reads them; repeatable)")
    parser.add_argument("--fitness", action="append", required=True, help="COMBINER(PROXY,...) (repeatable)")
    parser.add_argument("--costs", nargs="+", default=["params", "flops"], choices=("params", "flops"))
    parser.add_argument("--data-dir", help="benchmark data [default: $NASX_DATA]")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from budget_yardstick import fill_genotype_proxies, ground_truth, parse_fitness, read_scores

    from nasx import jsonio
    from nasx.data import resolve_data_dir
    from nasx.objectives import COSTS, hypervolume_of, true_front
    from nasx.pareto import non_dominated
    from nasx.plugins import Plugins

    plugins = Plugins()
    data_dir = resolve_data_dir(args.data_dir, required=True)
    rows = []
    for spec in args.scores:
        dataset, _, path = spec.partition("=")
        space = plugins.get("space", "nats-tss")(dataset=dataset)
        oracle = space.oracle(data_dir)
        accuracy, costs = ground_truth(space, oracle)
        columns, present = read_scores([path], space)
        if not present.all():
            raise SystemExit(f"{path} holds {present.sum()} of {len(space)} cells: the ceiling needs every cell")
        truths = {cost: true_front(space, oracle, [cost], []) for cost in args.costs}
        cost_values = {cost: np.array([getattr(c, COSTS[cost]) for c in costs]) for cost in args.costs}
        for fitness in args.fitness:
            combiner, names, directions = parse_fitness(fitness, plugins)
            fill_genotype_proxies(columns, [n for n in names if n not in columns], plugins, space)
            values = combiner.combine(np.column_stack([columns[n] for n in names]), directions)
            for cost, truth in truths.items():
                front = non_dominated(list(zip(values.tolist(), (-cost_values[cost]).tolist())))
                members = [{"test_accuracy": float(accuracy[i]), COSTS[cost]: float(cost_values[cost][i])}
                           for i in front]
                ratio = hypervolume_of(members, truth) / truth.hypervolume
                rows.append({"dataset": dataset, "cost": cost, "fitness": fitness, "front_size": len(front),
                             "best_front_accuracy": max(m["test_accuracy"] for m in members),
                             "hypervolume_ratio": ratio})
                print(f"{dataset:15s} {cost:6s} {fitness:40s} front {len(front):3d}  HV ratio {ratio:.4f}")
    if args.out:
        jsonio.write(args.out, {"scores": args.scores, "rows": rows})
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
