"""The yardstick of a fitness under budgets, on NATS-Bench TSS: where does its top lie inside each feasible set?

A search returns the top of its fitness among the cells it scored. Under a (FLOPs, params) budget, what matters is
therefore the top of the fitness *within the feasible set*. Over every cell's scores (from ``nasx score --all`` or
``nasx correlate --sample 0 --out FILE.json``), for a grid of budgets, this script computes for each fitness:

- the test accuracy of its best feasible cell (the cell a search converges to when it scores the whole feasible
  set: the fitness is computed over the feasible set, as a search computes it over the feasible cells it scored),
- the mean test accuracy of its best 10 feasible cells,
- the regret: the feasible optimum's accuracy minus the best cell's,

and their mean and worst over the grid, over its "pick" half and its held-out half.

The grid: NATS-Bench TSS cells have 28 distinct (FLOPs, params) costs (they depend only on how many 1x1 and 3x3
convolutions a cell has, and FLOPs and params grow together), so a budget is one of these cost levels; the grid
is every level whose feasible set holds at least ``--min-cells`` cells (their feasible fractions spread over the
cost distribution's quantiles, from about 5 % to 100 %), plus FreeREA's three budgets (1e8, 8e5), (7e7, 5e5),
(4e7, 3e5). The levels are numbered by cost; the even-numbered ones are the "pick" half (to choose a fitness on),
the odd-numbered ones and FreeREA's three the held-out half.

A fitness is ``COMBINER(PROXY,PROXY,...)`` with installed components, e.g. ``freerea(naswot,logsynflow,skip)``:
the combiner is nasx's own, applied as in a search. Proxies that score the genotype alone (skip, flops, params,
layers) are computed here when the files lack them. ``--subsets freerea,rank/naswot,skip,flops`` adds every
combiner given with every non-empty subset of the proxies given (here 2 x 7 fitnesses). Each fitness's top
without a budget (the level holding every cell) is reported too.

``--reference`` reads FreeREA's own stored values of naswot, logsynflow and synflow for every cell of ``--dataset``
(``$NASX_DATA/nats_tss_freerea_proxies.csv.gz``: FreeREA's code on the dataset's real images), a whole-space score
source for cifar100 and ImageNet16-120, whose images nasx does not have.

``--ceiling PROXY,...`` asks what no fitness can do: a cell that another feasible cell matches or beats on every
proxy given, and beats on one, is never the single top of a fitness that strictly increases with each proxy
(a weighted sum of min-max-scaled, max-normalised or ranked proxies, with positive weights, does). For each budget it counts the cells within ``--near``
points of the feasible optimum that no feasible cell dominates; a budget where there are none is out of reach of
every such fitness of those proxies, however it weighs or normalises them.

    python benchmarks/budget_yardstick.py --dataset cifar10 \\
        --scores benchmarks/results/whole_space/correlations_cifar10_all.json \\
        --fitness "freerea(naswot,logsynflow,skip)" --fitness "minmax(naswot,logsynflow,skip,flops)" \\
        --out benchmarks/results/budget_yardstick/cifar10.json
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from nasx import jsonio
from nasx.plugins import Plugins

FREEREA_BUDGETS = ((100.0, 0.8), (70.0, 0.5), (40.0, 0.3))
FITNESS = re.compile(r"^\s*([\w-]+)\s*\(([^)]*)\)\s*$")


def read_scores(paths: list[str], space) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """proxy -> score of every cell in official index order (NaN where a file has none), and which cells the files
    hold (a file of part of the space, such as an unfinished ``nasx score --all``, gives a yardstick over that part)."""
    columns: dict[str, np.ndarray] = {}
    present = np.zeros(len(space), dtype=bool)
    for path in paths:
        text = gzip.decompress(Path(path).read_bytes()).decode() if path.endswith(".gz") else Path(path).read_text()
        if path.removesuffix(".gz").endswith(".jsonl"):  # nasx score lines: {"arch": ..., "scores": {...}}
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
            rows = [(r["arch"], r["scores"]) for r in records]
        else:  # nasx correlate --out FILE.json: {"architectures": [{"arch": index or string, proxy: score}]}
            record = json.loads(text)
            names = [r["name"] for r in record["results"] if "(" not in r["name"]]
            rows = [(a["arch"], {n: a[n] for n in names}) for a in record["architectures"]]
        for arch, scores in rows:
            index = arch if isinstance(arch, int) else space.index_of(space.decode(arch))
            present[index] = True
            for name, value in scores.items():
                column = columns.setdefault(name, np.full(len(space), np.nan))
                column[index] = math.nan if value is None else value
    return columns, present


def read_reference(path: Path, dataset: str, columns: dict, present: np.ndarray) -> None:
    """FreeREA's stored proxy values for one dataset (``index, <dataset>_<proxy>, ...``; timing columns skipped)."""
    wanted = ("naswot", "logsynflow", "synflow")
    with gzip.open(path, "rt") as handle:
        header = handle.readline().strip().split(",")
        where = {name: header.index(f"{dataset}_{name}") for name in wanted}
        for name in wanted:
            columns[name] = np.full(len(present), np.nan)
        for line in handle:
            fields = line.rstrip("\n").split(",")
            index = int(fields[0])
            present[index] = True
            for name, column in where.items():
                columns[name][index] = float(fields[column]) if fields[column] else math.nan


def fill_genotype_proxies(columns, needed, plugins, space) -> None:
    """Compute the proxies that score genotypes alone (cheap), when no file holds them."""
    for name in needed:
        if name in columns:
            continue
        proxy = plugins.get("proxy", name)()
        if proxy.needs_network:
            raise SystemExit(f"no scores of '{name}' in the files, and it needs networks: score them first")
        columns[name] = np.array([proxy.score_genotype(space, space.genotype_at(i)) for i in range(len(space))])


def budget_grid(flops: np.ndarray, params: np.ndarray, min_cells: int) -> list[dict]:
    levels = sorted({level for level in zip(flops.tolist(), params.tolist()) if math.isfinite(level[0])})
    grid = []
    for number, (f, p) in enumerate(levels):
        if np.sum((flops <= f) & (params <= p)) >= min_cells:
            grid.append({"label": f"level {number}", "max_flops": f, "max_params": p,
                         "half": "pick" if number % 2 == 0 else "held-out"})
    grid += [{"label": f"FreeREA ({f:g}M, {p:g}M)", "max_flops": f, "max_params": p, "half": "held-out"}
             for f, p in FREEREA_BUDGETS]
    return grid


def ground_truth(space, oracle) -> tuple[np.ndarray, list]:
    """Every cell's test accuracy and cost (``nasx.Cost``), in official index order."""
    genotypes = [space.genotype_at(i) for i in range(len(space))]
    return np.array([oracle.test_accuracy(g) for g in genotypes]), [space.cost(g) for g in genotypes]


def parse_fitness(fitness: str, plugins) -> tuple:
    """``COMBINER(PROXY,...)`` -> (the combiner, its proxies' names, their directions)."""
    match = FITNESS.match(fitness)
    if not match:
        raise SystemExit(f"--fitness {fitness!r}: expected COMBINER(PROXY,PROXY,...)")
    proxies = [name.strip() for name in match.group(2).split(",") if name.strip()]
    return (plugins.get("combiner", match.group(1))(), proxies,
            [plugins.get("proxy", name).higher_is_better for name in proxies])


def evaluate(fitness: str, columns, plugins, accuracy, flops, params, grid) -> dict:
    combiner, proxies, directions = parse_fitness(fitness, plugins)
    scores = np.column_stack([columns[name] for name in proxies])
    rows = []
    for budget in grid:
        feasible = np.flatnonzero((flops <= budget["max_flops"]) & (params <= budget["max_params"]))
        values = combiner.combine(scores[feasible], directions)
        order = feasible[np.argsort(-values, kind="stable")]  # ties: the lower official index first
        optimum = float(accuracy[feasible].max())
        rows.append({**budget, "feasible": len(feasible), "optimum": optimum, "best_index": int(order[0]),
                     "best_accuracy": float(accuracy[order[0]]), "top10_accuracy": float(accuracy[order[:10]].mean()),
                     "regret": optimum - float(accuracy[order[0]]),
                     "ties_at_the_top": int(np.sum(values == values.max()))})
    summary = {}
    for half in ("all", "pick", "held-out"):
        chosen = [r for r in rows if half == "all" or r["half"] == half]
        regrets = [r["regret"] for r in chosen]
        summary[half] = {"budgets": len(chosen), "regret_mean": float(np.mean(regrets)),
                         "regret_worst": float(np.max(regrets)),
                         "top10_regret_mean": float(np.mean([r["optimum"] - r["top10_accuracy"] for r in chosen])),
                         "within_0.3": int(sum(r <= 0.3 for r in regrets))}
    return {"fitness": fitness, "summary": summary, "budgets": rows}


def ceiling(names: list[str], columns, plugins, accuracy, flops, params, grid, near: float) -> dict:
    """Per budget: the cells within ``near`` of the feasible optimum that no feasible cell dominates on ``names``
    (each proxy in its own direction; a non-finite score is the worst, as in the combiners). An empty list means
    no strictly increasing fitness of these proxies gets there."""
    signs = [1.0 if plugins.get("proxy", name).higher_is_better else -1.0 for name in names]
    oriented = np.column_stack([sign * columns[name] for name, sign in zip(names, signs)])
    scores = np.where(np.isfinite(oriented), oriented, -np.inf)
    rows = []
    for budget in grid:
        feasible = np.flatnonzero((flops <= budget["max_flops"]) & (params <= budget["max_params"]))
        values, accuracies = scores[feasible], accuracy[feasible]
        near_optimal = np.flatnonzero(accuracies >= accuracies.max() - near)
        undominated = [int(feasible[i]) for i in near_optimal
                       if not np.any(np.all(values >= values[i], axis=1) & np.any(values > values[i], axis=1))]
        rows.append({**budget, "feasible": len(feasible), "near_optimal": len(near_optimal),
                     "undominated_near_optimal": undominated})
    reachable = [r for r in rows if r["undominated_near_optimal"]]
    return {"proxies": names, "near": near, "budgets": rows,
            "reachable": {half: sum(half == "all" or r["half"] == half for r in reachable)
                          for half in ("all", "pick", "held-out")}}


def subsets(spec: str) -> list[str]:
    """``COMBINER,COMBINER/PROXY,PROXY,...`` -> every combiner with every non-empty subset of the proxies."""
    combiners, _, proxies = spec.partition("/")
    names = [n.strip() for n in proxies.split(",") if n.strip()]
    if not names or not combiners.strip():
        raise SystemExit(f"--subsets {spec!r}: expected COMBINER,.../PROXY,...")
    return [f"{c.strip()}({','.join(chosen)})" for c in combiners.split(",") if c.strip()
            for k in range(1, len(names) + 1) for chosen in itertools.combinations(names, k)]


def without_budget(result: dict) -> dict:
    """The row of the level holding every cell (the unconstrained search's top)."""
    return max(result["budgets"], key=lambda row: row["feasible"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cifar10", choices=("cifar10", "cifar100", "ImageNet16-120"))
    parser.add_argument("--scores", action="append", default=[], help="nasx score --all JSONL or correlate JSON")
    parser.add_argument("--fitness", action="append", default=[], help="COMBINER(PROXY,...) (repeatable)")
    parser.add_argument("--subsets", action="append", default=[],
                        help="COMBINER,.../PROXY,...: every combiner with every non-empty subset of the proxies")
    parser.add_argument("--reference", action="store_true",
                        help="score with FreeREA's stored naswot, logsynflow, synflow values ($NASX_DATA)")
    parser.add_argument("--ceiling", action="append", default=[], metavar="PROXY,...",
                        help="per budget, whether a near-optimal cell is undominated on these proxies (repeatable)")
    parser.add_argument("--near", type=float, default=0.3, help="--ceiling: points below the optimum [0.3]")
    parser.add_argument("--min-cells", type=int, default=500, help="smallest feasible set in the grid")
    parser.add_argument("--data-dir", help="benchmark data [default: $NASX_DATA]")
    parser.add_argument("--out", help="write the results as JSON (gzipped when it ends with .gz)")
    parser.add_argument("--grid", help="also write the budgets as the constraints of a `nasx experiment` grid "
                        "(TOML, searches to be added) and stop")
    args = parser.parse_args(argv)
    args.fitness += [fitness for spec in args.subsets for fitness in subsets(spec)]
    if not args.fitness and not args.grid and not args.ceiling:
        parser.error("give --fitness, --subsets or --ceiling")
    if not args.scores and not args.reference and not args.grid:
        parser.error("give --scores or --reference")

    from nasx.data import resolve_data_dir

    plugins = Plugins()
    space = plugins.get("space", "nats-tss")(dataset=args.dataset)
    data_dir = resolve_data_dir(args.data_dir, required=True)
    oracle = space.oracle(data_dir)
    accuracy, costs = ground_truth(space, oracle)
    flops, params = np.array([c.flops_m for c in costs]), np.array([c.params_m for c in costs])
    if args.grid:
        grid = budget_grid(flops, params, args.min_cells)
        settings = ",\n    ".join(f"{{ max_flops = {b['max_flops']!r}, max_params = {b['max_params']!r} }}" for b in grid)
        Path(args.grid).write_text(f'# the {len(grid)} budgets of benchmarks/budget_yardstick.py on {args.dataset}\n'
                                   f'space = "nats-tss"\ndatasets = ["{args.dataset}"]\nconstraints = [\n    '
                                   f'{settings},\n]\n')
        print(f"wrote {args.grid}", file=sys.stderr)
        return
    columns, present = read_scores(args.scores, space)
    if args.reference:
        read_reference(Path(data_dir) / "nats_tss_freerea_proxies.csv.gz", args.dataset, columns, present)
    if not present.all():  # the yardstick of the cells scored: the others are not candidates
        print(f"the files hold {present.sum()} of {len(space)} cells: budgets and optima are over those",
              file=sys.stderr)
        flops, params = np.where(present, flops, np.inf), np.where(present, params, np.inf)
    ceilings = [[name.strip() for name in spec.split(",") if name.strip()] for spec in args.ceiling]
    needed = {name.strip() for fitness in args.fitness for name in FITNESS.match(fitness).group(2).split(",")}
    needed |= {name for names in ceilings for name in names}
    fill_genotype_proxies(columns, sorted(needed - set(columns)), plugins, space)
    grid = budget_grid(flops, params, args.min_cells)
    results = [evaluate(f, columns, plugins, accuracy, flops, params, grid) for f in args.fitness]
    bounds = [ceiling(names, columns, plugins, accuracy, flops, params, grid, args.near) for names in ceilings]

    print(f"{args.dataset}: {len(grid)} budgets ({sum(b['half'] == 'pick' for b in grid)} pick, "
          f"{sum(b['half'] == 'held-out' for b in grid)} held out); regret = feasible optimum - accuracy of the "
          "fitness's best feasible cell")
    print(f"{'fitness':48s} {'all: mean / worst':>18s} {'pick: mean / worst':>19s} {'held-out: mean / worst':>23s}"
          f" {'top-10 regret':>13s} {'<= 0.3':>7s} {'no-budget top / top-10':>23s}")
    for result in results:
        s = result["summary"]
        top = without_budget(result)
        print(f"{result['fitness']:48s} {s['all']['regret_mean']:8.2f} / {s['all']['regret_worst']:5.2f}"
              f" {s['pick']['regret_mean']:9.2f} / {s['pick']['regret_worst']:5.2f}"
              f" {s['held-out']['regret_mean']:13.2f} / {s['held-out']['regret_worst']:5.2f}"
              f" {s['all']['top10_regret_mean']:13.2f} {s['all']['within_0.3']:4d}/{s['all']['budgets']}"
              f" {top['best_accuracy']:15.2f} / {top['top10_accuracy']:5.2f}")
    for bound in bounds:
        reach = bound["reachable"]
        print(f"ceiling {','.join(bound['proxies'])}: a cell within {bound['near']:g} of the optimum is undominated "
              f"under {reach['all']} of {len(grid)} budgets (pick {reach['pick']}, held-out {reach['held-out']})")
        print("  out of reach: " + (", ".join(r["label"] for r in bound["budgets"]
                                              if not r["undominated_near_optimal"]) or "none"))
    if args.out:
        record = {"dataset": args.dataset, "scores": args.scores, "reference": args.reference,
                  "min_cells": args.min_cells, "cells": int(present.sum()), "results": results, "ceilings": bounds}
        if args.out.endswith(".gz"):  # many fitnesses: 31 budget rows each
            Path(args.out).write_bytes(gzip.compress((jsonio.dumps(record, indent=1) + "\n").encode()))
        else:
            jsonio.write(args.out, record, indent=1)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
