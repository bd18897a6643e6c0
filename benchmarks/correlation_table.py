"""Markdown tables of the correlation benchmark's JSON files (as pasted into docs/results.md).

    python benchmarks/correlation_table.py benchmarks/results/correlations_cifar10_300.json [more.json ...]
    python benchmarks/correlation_table.py --by-dataset FILE.json ...   # Kendall tau, one column per dataset
"""

from __future__ import annotations

import argparse
import json
import math


def finite(value) -> bool:
    """nasx writes non-finite measures as null (strict JSON)."""
    return value is not None and math.isfinite(value)


def cell(row: dict, measure: str, digits: int) -> str:
    value = row[measure]
    if not finite(value):
        return "–"
    low, high = row[f"{measure}_low"], row[f"{measure}_high"]
    interval = f" [{low:.{digits}f}, {high:.{digits}f}]" if finite(low) and finite(high) else ""
    return f"{value:.{digits}f}{interval}"


def table(paths: list[str]) -> None:
    print("| score | n | τ | ρ | τ top 10 % | top10/top10 % | top64/top5 % | non-finite | median s |")
    print("|---|---|---|---|---|---|---|---|---|")
    seen = set()
    for path in paths:
        record = json.load(open(path))
        for row in record["results"]:
            if row["name"] in seen:
                continue
            seen.add(row["name"])
            seconds = f"{row['median_seconds']:.3f}" if "median_seconds" in row else ""
            print(f"| {row['name']} | {row['count']} | {cell(row, 'kendall', 3)} | {cell(row, 'spearman', 3)} | "
                  f"{cell(row, 'kendall_top10', 2)} | {cell(row, 'top10_top10', 0)} | {cell(row, 'top64_top5', 0)} | "
                  f"{row['non_finite']} | {seconds} |")


def by_dataset(paths: list[str]) -> None:
    taus: dict[str, dict[str, str]] = {}
    datasets: list[str] = []
    for path in paths:
        record = json.load(open(path))
        dataset = f"{record['dataset']} ({record['sample']})"
        if dataset not in datasets:
            datasets.append(dataset)
        for row in record["results"]:
            taus.setdefault(row["name"], {})[dataset] = cell(row, "kendall", 3)
    print("| score | " + " | ".join(datasets) + " |")
    print("|---|" + "---|" * len(datasets))
    for name, values in taus.items():
        print(f"| {name} | " + " | ".join(values.get(d, "") for d in datasets) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="`nasx correlate --out FILE.json` files")
    parser.add_argument("--by-dataset", action="store_true", help="Kendall tau only, one column per dataset")
    args = parser.parse_args()
    (by_dataset if args.by_dataset else table)(args.results)


if __name__ == "__main__":
    main()
