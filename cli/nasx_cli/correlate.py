"""``nasx correlate``: score a sample of a benchmark space and measure how well proxies and their
combinations rank the architectures by the benchmark's test accuracy."""

from __future__ import annotations

import csv
import json
import math
import random
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from nasx.correlation import MEASURES, correlate
from nasx.data import resolve_data_dir
from nasx.errors import NasxError
from nasx.interfaces import EnumerableSpace
from nasx_cli.progress import ProgressBar


OUTPUT_SUFFIXES = (".json", ".csv")


def _sample(space, size: int, seed: int):
    """(label, genotype) pairs: official indices of an enumerable space, else distinct random genotypes."""
    if isinstance(space, EnumerableSpace):
        total = len(space)
        indices = range(total) if size <= 0 or size >= total else random.Random(seed).sample(range(total), size)
        return [(index, space.genotype_at(index)) for index in indices]
    if size <= 0:
        raise NasxError(f"space '{space.name}' cannot be enumerated; give --sample N")
    rng, seen, picked = random.Random(seed), set(), []
    for _ in range(size * 100):
        genotype = space.sample(rng)
        key = space.key(genotype)
        if key not in seen:
            seen.add(key)
            picked.append((space.encode(genotype), genotype))
        if len(picked) == size:
            break
    return picked


def execute(plugins, args: dict[str, Any]) -> dict[str, Any]:
    from nasx_cli.run import build_components, build_evaluator

    space, proxies, others = build_components(plugins, args, {"combiner": list(args["combiners"])})
    combiners = others["combiner"]
    if combiners and len(proxies) < 2:
        raise NasxError("combining needs at least two --proxy")
    for text in args.get("outputs", ()):  # checked before any scoring, so a typo costs nothing
        if Path(text).suffix not in OUTPUT_SUFFIXES:
            raise NasxError(f"--out {text}: use a .json or .csv file name")
    if args["bootstrap"] < 0:
        raise NasxError(f"--bootstrap must be 0 or more, got {args['bootstrap']}")

    oracle = space.oracle(resolve_data_dir(args["data_dir"]))
    if oracle is None:
        raise NasxError(f"no ground truth for space '{space.name}' on {space.dataset}: set --data-dir or NASX_DATA")
    sample = _sample(space, args["sample"], args["seed"])
    evaluator = build_evaluator(space, proxies, args)
    accuracy = np.array([oracle.test_accuracy(genotype) for _, genotype in sample])

    scores = np.empty((len(sample), len(proxies)))
    seconds = np.empty_like(scores)
    computed = 0
    with ProgressBar("scoring", len(sample), enabled=not args["quiet"]) as progress:
        for row, (_, genotype) in enumerate(sample):
            evaluation = evaluator.evaluate(genotype)
            scores[row] = [evaluation.scores[p.name] for p in proxies]
            seconds[row] = [evaluation.seconds[p.name] for p in proxies]
            computed += not all(evaluation.cached.values())
            progress.update(row + 1, f"{row + 1}/{len(sample)}")
    evaluator.cache.close()

    directions = [p.higher_is_better for p in proxies]
    columns: list[tuple[str, np.ndarray, str]] = []
    for column, proxy in enumerate(proxies):
        sign = 1.0 if proxy.higher_is_better else -1.0
        columns.append((proxy.name, sign * scores[:, column], "higher" if proxy.higher_is_better else "lower"))
    mix = "+".join(p.name for p in proxies)
    for combiner in combiners:
        columns.append((f"{combiner.name}({mix})", combiner.combine(scores, directions), "higher"))

    results = []
    for name, values, direction in columns:
        result = correlate(name, values, accuracy, resamples=args["bootstrap"], seed=args["seed"])
        record = result.as_dict()
        record["direction"] = direction
        record["non_finite_archs"] = [sample[i][0] for i in result.non_finite]
        results.append(record)
    for column, record in enumerate(results[: len(proxies)]):
        record["median_seconds"] = statistics.median(seconds[:, column])

    return {
        "space": space.name,
        "dataset": space.dataset,
        "sample": len(sample),
        "seed": args["seed"],
        "computed": computed,
        "bootstrap": args["bootstrap"],
        "ground_truth": oracle.source,
        "input": evaluator.batch.identity if evaluator.batch is not None else None,
        "init": {"scheme": args["init_scheme"], "seed": args["init_seed"]},
        "options": {c.name: c.options for c in [space, *proxies, *combiners] if c.options},
        "results": results,
        "architectures": [
            {"arch": label, "test_accuracy": float(acc),
             **{p.name: float(scores[row, col]) for col, p in enumerate(proxies)},
             **{name: float(values[row]) for name, values, _ in columns[len(proxies):]}}
            for row, (label, acc) in enumerate(zip((s[0] for s in sample), accuracy))
        ],
    }


def print_report(record: dict[str, Any]) -> None:
    from rich.table import Table

    from nasx_cli.report import wide_console

    console = wide_console()
    title = (f"{record['space']} / {record['dataset']}: {record['sample']} architectures "
             f"({record['computed']} scored now, the rest from the cache); 95 % bootstrap intervals")
    table = Table(title=title)
    for header in ("score", "τ", "ρ", "τ top10%", "ρ top10%", "top10/top10 %", "top64/top5%", "non-finite",
                   "median s"):
        table.add_column(header, justify="left" if header == "score" else "right")
    for row in record["results"]:
        cells = [row["name"]]
        for measure in MEASURES:
            cells.append(_with_interval(row[measure], row[f"{measure}_low"], row[f"{measure}_high"],
                                        DIGITS.get(measure, 3)))
        cells.append(str(row["non_finite"]))
        cells.append(f"{row['median_seconds']:.3f}" if "median_seconds" in row else "")
        table.add_row(*cells)
    console.print(table)
    for row in record["results"]:
        if row["non_finite"]:
            shown = ", ".join(map(str, row["non_finite_archs"][:10]))
            more = f" and {row['non_finite'] - 10} more" if row["non_finite"] > 10 else ""
            console.print(f"{row['name']}: {row['non_finite']} non-finite scores left out ({shown}{more})")


DIGITS = {"top10_top10": 1, "top64_top5": 0}  # decimals shown per measure (3 for the correlations)


def _with_interval(value: float, low: float, high: float, digits: int) -> str:
    if not math.isfinite(value):
        return "nan"
    text = f"{value:.{digits}f}"
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def write_outputs(record: dict[str, Any], paths: tuple[str, ...]) -> list[Path]:
    """Each path by its suffix (checked by ``execute``): .json the whole record, .csv the table of measures."""
    written = []
    for text in paths:
        path = Path(text)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".json":
                path.write_text(json.dumps(record, indent=1, allow_nan=True) + "\n")
            else:
                fields = ["name", "direction", "count", "non_finite", *MEASURES,
                          *(f"{m}_{end}" for m in MEASURES for end in ("low", "high")), "median_seconds"]
                with path.open("w", newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
                    writer.writeheader()
                    for row in record["results"]:
                        writer.writerow(row)
        except OSError as exc:
            raise NasxError(f"cannot write {text!r}: {exc.strerror}") from None
        written.append(path)
    return written


def plot(record: dict[str, Any], path: str) -> None:
    """Score against test accuracy, one panel per proxy or combination (matplotlib, no display needed)."""
    from nasx_cli.plotting import pyplot, save

    plt = pyplot()
    rows = record["results"]
    columns = min(3, len(rows))
    lines = math.ceil(len(rows) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.6 * lines), squeeze=False)
    accuracy = np.array([a["test_accuracy"] for a in record["architectures"]])
    for axis, row in zip(axes.flat, rows):
        score = np.array([a[row["name"]] for a in record["architectures"]], dtype=float)
        finite = np.isfinite(score)
        axis.scatter(accuracy[finite], score[finite], s=4, alpha=0.5)
        axis.set_title(f"{row['name']}\nτ = {row['kendall']:.3f}, ρ = {row['spearman']:.3f}", fontsize=9)
        axis.set_xlabel("test accuracy (%)")
        axis.set_ylabel("score" + (" (lower is better)" if row["direction"] == "lower" else ""))
    for axis in list(axes.flat)[len(rows):]:
        axis.set_visible(False)
    figure.suptitle(f"{record['space']} / {record['dataset']}, {record['sample']} architectures")
    figure.tight_layout()
    save(figure, path)
