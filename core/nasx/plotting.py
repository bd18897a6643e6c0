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


#: axis labels of the objectives, with their units
OBJECTIVE_LABELS = {"fitness": "fitness", "params": "parameters (M)", "flops": "FLOPs (M)",
                    "latency": "latency (ms)"}


def plot_front(result: dict[str, Any], path: str) -> None:
    """The front of a search with several objectives (a ``RunResult.to_dict()``): its members in the objectives
    the search saw (a score against the first cost); with ground truth, beside it their true accuracy against
    that cost, with the benchmark's true accuracy-cost front when it is known."""
    plt = pyplot()
    names = result["objectives"]
    if len(names) < 2 or not result["front"]:
        raise NasxError("--plot needs a front: a search with two or more --objective that scored something")
    costs = [n for n in names if n in ("params", "flops", "latency")]
    others = [n for n in names if n not in costs]
    x_name = costs[0] if costs else names[1]
    y_name = others[0] if others else names[1]
    members = sorted(result["front"], key=lambda m: m["objectives"][x_name])
    truth = bool(costs) and all(m["test_accuracy"] is not None for m in members)
    figure, axes = plt.subplots(1, 2 if truth else 1, figsize=(11 if truth else 5.5, 4.2), squeeze=False)
    axis = axes[0][0]
    x = [m["objectives"][x_name] for m in members]
    axis.plot(x, [m["objectives"][y_name] for m in members], marker="o", linestyle="-", drawstyle="steps-post",
              label=f"found front ({len(members)})")
    axis.set_xlabel(OBJECTIVE_LABELS.get(x_name, x_name))
    axis.set_ylabel(OBJECTIVE_LABELS.get(y_name, y_name))
    axis.set_title(f"what the search saw: {' x '.join(names)}", fontsize=10)
    axis.legend(fontsize=8)
    if truth:
        axis = axes[0][1]
        true = result.get("true_front") or []
        if true:
            field = {"params": "params_m", "flops": "flops_m"}[x_name]
            true = sorted(true, key=lambda m: m[field])
            # a front over one cost is a staircase; over two, its projection on the first is a cloud
            axis.plot([m[field] for m in true], [m["test_accuracy"] for m in true], color="grey", marker=".",
                      drawstyle="steps-post", linestyle="-" if len(costs) == 1 else "none",
                      label=f"true front ({len(true)})")
        axis.scatter(x, [m["test_accuracy"] for m in members], color="C1", zorder=3,
                     label="found front, true accuracy")
        ratio = result.get("hypervolume_ratio")
        axis.set_title("true accuracy" + (f": hypervolume ratio {ratio:.3f}" if ratio is not None else ""),
                       fontsize=10)
        axis.set_xlabel(OBJECTIVE_LABELS.get(x_name, x_name))
        axis.set_ylabel(result.get("ground_truth_metric") or "test accuracy (%)")
        axis.legend(fontsize=8)
    figure.suptitle(f"{result['search']} on {result['space']} / {result['dataset']}, {result['evaluated']} scored")
    figure.tight_layout()
    save(figure, path)
