"""Does a cheaper setting of a proxy keep the ranking of good cells? Compares one proxy's scores in two
``nasx correlate --out FILE.json`` runs over the same sample (for example ``-o naswot.batch_size=64`` against 16):
Kendall tau between the two settings, over every cell and over the best quarter by accuracy, and for each k the
overlap of the two top-k and the mean and best accuracy of each top-k.

    NASX_DATA=../shared/data python benchmarks/score_agreement.py A.json B.json --proxy naswot
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def read(path: str, proxy: str) -> tuple[dict[str, float], dict[str, float], float | None]:
    """arch -> score (negated where the file records the proxy as lower-is-better, so that higher is better),
    arch -> accuracy, and the proxy's median seconds per cell."""
    data = json.loads(Path(path).read_text())
    if "architectures" not in data:
        raise ValueError(f"{path} has no per-architecture scores (written by nasx correlate --out FILE.json?)")
    measures = next((r for r in data["results"] if r["name"] == proxy), {})
    sign = -1.0 if measures.get("direction") == "lower" else 1.0
    scores = {row["arch"]: sign * row[proxy] for row in data["architectures"] if proxy in row}
    accuracy = {row["arch"]: row["test_accuracy"] for row in data["architectures"]}
    return scores, accuracy, measures.get("median_seconds")


def agreement(first: np.ndarray, second: np.ndarray, accuracy: np.ndarray, ks=(5, 10, 15)) -> dict:
    """Both scores higher-is-better, one entry per cell; non-finite scores rank last."""
    from scipy.stats import kendalltau

    first = np.where(np.isfinite(first), first, -np.inf)
    second = np.where(np.isfinite(second), second, -np.inf)
    quarter = np.argsort(-accuracy, kind="stable")[: max(2, len(accuracy) // 4)]
    result = {"cells": len(accuracy), "kendall": float(kendalltau(first, second)[0]),
              "kendall_best_quarter": float(kendalltau(first[quarter], second[quarter])[0]), "top": []}
    for k in ks:
        top_first = np.argsort(-first, kind="stable")[:k]
        top_second = np.argsort(-second, kind="stable")[:k]
        result["top"].append({
            "k": k, "overlap": len(set(top_first) & set(top_second)),
            "mean_accuracy": [float(accuracy[top_first].mean()), float(accuracy[top_second].mean())],
            "best_accuracy": [float(accuracy[top_first].max()), float(accuracy[top_second].max())]})
    return result


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"  # files written before seconds were recorded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="nasx correlate --out JSON (the reference setting)")
    parser.add_argument("second", help="nasx correlate --out JSON over the same cells (the cheaper setting)")
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args(argv)

    try:
        first, accuracy, first_seconds = read(args.first, args.proxy)
        second, _, second_seconds = read(args.second, args.proxy)
    except (OSError, ValueError, KeyError) as exc:  # one line and exit 2, as argparse's own errors
        parser.error(str(exc))
    if not first or sorted(first) != sorted(second):
        parser.error(f"the two files do not score the same cells with {args.proxy}: run both with the same "
                     "--sample and --seed")
    cells = sorted(first)
    result = agreement(np.array([first[c] for c in cells]), np.array([second[c] for c in cells]),
                       np.array([accuracy[c] for c in cells]))
    result.update(proxy=args.proxy, files=[args.first, args.second],
                  median_seconds=[first_seconds, second_seconds])
    print(f"{args.proxy}: {result['cells']} cells, Kendall tau between the two {result['kendall']:.3f}, "
          f"over the best quarter by accuracy {result['kendall_best_quarter']:.3f}; "
          f"median s per cell {_seconds(first_seconds)} / {_seconds(second_seconds)}")
    for row in result["top"]:
        print(f"top {row['k']}: overlap {row['overlap']}, mean accuracy {row['mean_accuracy'][0]:.2f} / "
              f"{row['mean_accuracy'][1]:.2f}, best {row['best_accuracy'][0]:.2f} / {row['best_accuracy'][1]:.2f}")
    if args.out:
        from nasx import jsonio

        jsonio.write(args.out, result)


if __name__ == "__main__":
    main()
