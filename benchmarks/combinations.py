"""Kendall tau of every combination of the proxies scored by one `nasx correlate --out FILE.json` run, with nasx's
own combiners (label-free rules: nothing is fitted to accuracies).

Picking the best subset by its tau on the same cells is itself a use of the labels, so the figure of the best
subset is optimistic. The script therefore also splits the cells in two halves (seeded) many times, picks the best
subset on one half and reports its tau on the other: that held-out tau is the honest estimate of "the best
combination". Combinations fixed in advance (e.g. a paper's) need no such correction: pass them with --fixed.

Several result files of the same cells (e.g. proxies scored on different inputs) are joined by architecture;
a proxy found in two of them must have the same scores in both. `FILE.json:a,b` takes only proxies a and b from
that file (e.g. to use a proxy's scores on one input and leave out its scores on another). Fixed combinations are
printed with 95 % bootstrap intervals and with the accuracy at the head of their ranking (--head): a search climbs
to the top of its fitness, which Kendall tau over all cells hardly weighs.

Usage (from the repository root):
    python benchmarks/combinations.py RESULT.json[:a,b] [MORE.json ...] [--combiner logrank] [--fixed a+b+c ...]
        [--splits 20] [--head 1,10,100] [--cells no-dead-edges]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random

import numpy as np
from scipy.stats import kendalltau

from nasx.correlation import correlate, subset_test
from nasx.plugins import Plugins


def load_one(argument):
    path, chosen = argument, None
    if ":" in argument and argument.rpartition(":")[0].endswith(".json"):
        path, _, listed = argument.rpartition(":")
        chosen = listed.split(",")
    with open(path) as handle:
        record = json.load(handle)
    names = [row["name"] for row in record["results"] if "+" not in row["name"] and "(" not in row["name"]]
    rows = record.get("architectures")
    if not rows:
        raise SystemExit(f"{path}: no per-architecture scores (rerun `nasx correlate ... --out FILE.json`)")
    names = [name for name in names if name in rows[0]]
    if chosen is not None:
        missing = [name for name in chosen if name not in names]
        if missing:
            raise SystemExit(f"{path}: no {', '.join(missing)} scores")
        names = chosen

    def value(v):
        return math.nan if v is None else float(v)

    cells = {row["arch"]: ([value(row[name]) for name in names], float(row["test_accuracy"])) for row in rows}
    return cells, names, record["space"]


def in_subset(space_name, archs, subset):
    """Which of the cells (labelled as in a correlate run: an index or an arch string) lie in the space's subset."""
    space = Plugins().get("space", space_name)()
    keep = subset_test(space, subset)
    return np.array([keep(space.genotype_at(a) if isinstance(a, int) else space.decode(a)) for a in archs], bool)


def load(paths, cells=None):
    """Proxy names, scores (cells x proxies) and accuracies of one or more runs over the same cells, in the first
    file's order (the halvings and bootstrap resamples depend on it). `cells` names a subset of the space
    (`nasx correlate --cells`): only its cells are kept, before anything is ranked or combined."""
    first, names, space_name = load_one(paths[0])
    joined = {arch: list(row_scores) for arch, (row_scores, _) in first.items()}
    for path in paths[1:]:
        other, found, _ = load_one(path)
        if set(other) != set(joined):
            raise SystemExit(f"{path}: not the same architectures as {paths[0]}")
        new = []
        for i, name in enumerate(found):
            if name not in names:
                new.append(i)
            elif not np.array_equal([joined[arch][names.index(name)] for arch in joined],
                                    [other[arch][0][i] for arch in joined], equal_nan=True):
                raise SystemExit(f"{path}: {name} differs from its scores in an earlier file")
        for arch, row_scores in joined.items():
            row_scores += [other[arch][0][i] for i in new]
        names += [found[i] for i in new]
    accuracy = np.array([accuracy for _, accuracy in first.values()])
    scores = np.array(list(joined.values()))
    if cells is not None:
        kept = in_subset(space_name, list(joined), cells)
        scores, accuracy = scores[kept], accuracy[kept]
    return names, scores, accuracy


def head_accuracy(fitness, accuracy, sizes):
    """Mean accuracy of the `size` best cells by fitness, for each size (non-finite fitness ranks last; ties keep
    the file's order)."""
    key = np.where(np.isfinite(fitness), fitness, -np.inf)
    order = np.argsort(-key, kind="stable")
    return [float(np.mean(accuracy[order[:size]])) for size in sizes]


def tau(combiner, scores, directions, accuracy, columns, rows=None):
    selected = scores[:, columns] if rows is None else scores[np.ix_(rows, columns)]
    fitness = combiner.combine(selected, [directions[c] for c in columns])
    target = accuracy if rows is None else accuracy[rows]
    return kendalltau(fitness, target).statistic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", nargs="+", help="nasx correlate --out files of the same cells")
    parser.add_argument("--combiner", default="logrank")
    parser.add_argument("--fixed", action="append", default=[], help="a combination fixed in advance, a+b+c")
    parser.add_argument("--top", type=int, default=10, help="best subsets listed")
    parser.add_argument("--splits", type=int, default=20, help="random halvings for the held-out estimate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head", default="1,10,100", help="sizes of the head of each fixed ranking")
    parser.add_argument("--cells", help="only the cells of this subset of the space, e.g. no-dead-edges")
    args = parser.parse_args()
    sizes = [int(size) for size in args.head.split(",")]

    plugins = Plugins()
    names, scores, accuracy = load(args.result, args.cells)
    directions = [plugins.get("proxy", name).higher_is_better for name in names]
    combiner = plugins.get("combiner", args.combiner)()
    subsets = [cols for size in range(1, len(names) + 1) for cols in itertools.combinations(range(len(names)), size)]
    label = lambda cols: f"{args.combiner}({', '.join(names[c] for c in cols)})"  # noqa: E731

    print(f"{' + '.join(args.result)}: {len(accuracy)} cells, proxies {', '.join(names)}, {len(subsets)} subsets")
    for fixed in args.fixed:
        unknown = [name for name in fixed.split("+") if name not in names]
        if unknown:
            raise SystemExit(f"--fixed {fixed}: {', '.join(unknown)} not in the result files")
        cols = tuple(names.index(name) for name in fixed.split("+"))
        fitness = combiner.combine(scores[:, cols], [directions[c] for c in cols])
        found = correlate(label(cols), fitness, accuracy, resamples=1000, seed=args.seed)
        print(f"fixed in advance: {label(cols)}  tau {found.values['kendall']:.3f} "
              f"[{found.low['kendall']:.3f}, {found.high['kendall']:.3f}]  rho {found.values['spearman']:.3f}")
        heads = head_accuracy(fitness, accuracy, sizes)
        print("    mean accuracy of its best " + ", ".join(f"{n}: {a:.2f}" for n, a in zip(sizes, heads))
              + f" (best of all cells {accuracy.max():.2f})")

    ranked = sorted(((tau(combiner, scores, directions, accuracy, cols), cols) for cols in subsets), reverse=True)
    print(f"best {args.top} subsets on all cells (chosen on these cells: optimistic):")
    for value, cols in ranked[: args.top]:
        print(f"  {value:.3f}  {label(cols)}")

    rng = random.Random(args.seed)
    held_out, picks = [], {}
    cells = list(range(len(accuracy)))
    for _ in range(args.splits):
        rng.shuffle(cells)
        half = len(cells) // 2
        choose, test = np.array(cells[:half]), np.array(cells[half:])
        best = max(subsets, key=lambda cols: tau(combiner, scores, directions, accuracy, cols, choose))
        held_out.append(tau(combiner, scores, directions, accuracy, best, test))
        picks[label(best)] = picks.get(label(best), 0) + 1
    if not held_out:
        return
    print(f"held-out tau of the subset picked on the other half, {args.splits} halvings: "
          f"mean {np.mean(held_out):.3f}, min {np.min(held_out):.3f}, max {np.max(held_out):.3f}")
    for pick, count in sorted(picks.items(), key=lambda item: -item[1]):
        print(f"  picked {count}x: {pick}")


if __name__ == "__main__":
    main()
