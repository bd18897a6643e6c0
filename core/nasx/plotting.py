"""matplotlib without a display, and saving a figure with a one-line error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nasx.errors import NasxError


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works on machines without a display
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: str) -> None:
    plt = pyplot()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise NasxError(f"cannot write {path!r}: {exc.strerror}") from None
    finally:
        plt.close(figure)


def plot_correlation(record: dict[str, Any], path: str) -> None:
    """Score against test accuracy, one panel per proxy or combination (a ``nasx.correlate`` record)."""
    import numpy as np

    plt = pyplot()
    rows = record["results"]
    columns = min(3, len(rows))
    lines = math.ceil(len(rows) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.6 * lines), squeeze=False)
    accuracy = np.array([a["test_accuracy"] for a in record["architectures"]])
    for axis, row in zip(axes.flat, rows):
        # a record holds non-finite values as null (strict JSON)
        score = np.array([np.nan if a[row["name"]] is None else a[row["name"]] for a in record["architectures"]],
                         dtype=float)
        finite = np.isfinite(score)
        axis.scatter(accuracy[finite], score[finite], s=4, alpha=0.5)
        tau, rho = (math.nan if row[m] is None else row[m] for m in ("kendall", "spearman"))
        axis.set_title(f"{row['name']}\nτ = {tau:.3f}, ρ = {rho:.3f}", fontsize=9)
        axis.set_xlabel("test accuracy (%)")
        axis.set_ylabel("score" + (" (lower is better)" if row["direction"] == "lower" else ""))
    for axis in list(axes.flat)[len(rows):]:
        axis.set_visible(False)
    figure.suptitle(f"{record['space']} / {record['dataset']}, {record['sample']} architectures")
    figure.tight_layout()
    save(figure, path)


def plot_experiment(summary: list[dict[str, Any]], path: str) -> None:
    """Mean test accuracy against mean compute time per search (log x), one panel per dataset and
    constraint setting; several budgets of one search make a line."""
    plt = pyplot()
    panels = sorted({(r["dataset"], r["constraints"]) for r in summary if r["accuracy_mean"] is not None})
    if not panels:
        raise NasxError("--plot needs ground truth (test accuracy): set --data-dir or NASX_DATA")
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (dataset, constraints) in zip(axes[0], panels):
        rows = [r for r in summary if r["dataset"] == dataset and r["constraints"] == constraints
                and r["accuracy_mean"] is not None]
        for label in dict.fromkeys(r["label"] for r in rows):
            points = sorted((r["compute_seconds_mean"], r["accuracy_mean"], r["accuracy_std"])
                            for r in rows if r["label"] == label)
            x, y, err = zip(*points)
            axis.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
        if rows[0]["optimum_accuracy"] is not None:
            axis.axhline(rows[0]["optimum_accuracy"], color="grey", linestyle="--", linewidth=1, label="optimum")
        axis.set_xscale("log")
        axis.set_xlabel("compute time per search (s)")
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(dataset if constraints == "none" else f"{dataset}, {constraints}", fontsize=10)
        axis.legend(fontsize=8)
    figure.tight_layout()
    save(figure, path)
