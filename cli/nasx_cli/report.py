"""Human-readable output of a search result."""

from __future__ import annotations

import math
from typing import Any


def wide_console():
    """A rich console that keeps wide tables readable when output goes to a file or a pipe (where rich would
    otherwise wrap at 80 columns)."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def print_result(result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=False, title=f"nasx run: {result['search']} on {result['space']} / {result['dataset']}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    if result["index"] is not None:
        table.add_row("index", str(result["index"]))
    for name, value in result["scores"].items():
        table.add_row(f"score {name}", "non-finite" if value is None else f"{value:.6g}")
    fitness = result["fitness"]
    table.add_row(f"fitness ({result['combiner']})", "non-finite" if fitness is None else f"{fitness:.4f}")
    if result.get("data") is not None:
        shape = "x".join(map(str, result["input_shape"][1:]))
        table.add_row("data", f"{result['data']} ({result['num_classes']} classes, {shape} images)")
    table.add_row("FLOPs", f"{result['flops_m']:.2f} M")
    table.add_row("params", f"{result['params_m']:.4f} M")
    if result.get("latency_ms") is not None:
        spread = result["latency"]
        table.add_row("latency (median)", f"{result['latency_ms']:.3f} ms (min {spread['min_ms']:.3f}, "
                      f"IQR {spread['iqr_ms']:.3f}, {spread['runs']} runs; {spread['runtime']} on "
                      f"{spread['device_name']}, batch {spread['batch']}, {spread['threads']} threads)")
        table.add_row("latencies measured", f"{result['latencies_measured']} (the rest from the cache)")
    table.add_row("architectures scored", str(result["evaluated"]))
    table.add_row("wall time", f"{result['wall_seconds']:.1f} s")
    table.add_row("compute time (recorded)", f"{result['compute_seconds']:.1f} s")
    table.add_row("stopped because", result["stop_reason"])
    metric = result.get("ground_truth_metric") or "test accuracy (%)"
    label, in_percent = metric.removesuffix(" (%)"), metric.endswith(" (%)")
    if result["test_accuracy"] is not None:
        value = result["test_accuracy"]
        table.add_row(label, f"{value:.2f} %" if in_percent else f"{value:.4g}")
        if result["optimum_accuracy"] is not None:
            table.add_row("optimum (same constraints)", f"{result['optimum_accuracy']:.2f} %")
            table.add_row("regret", f"{result['regret']:.2f}")
    elif result.get("ground_truth"):  # a benchmark that covers only some architectures (nb-nlp's table)
        table.add_row(label, "not in the benchmark's table for this architecture")
    else:
        table.add_row("ground truth", f"not available: {result.get('no_ground_truth') or 'none found'}")
    console = wide_console()
    console.print(table)
    if result.get("objectives"):
        print_front(result, console)
    for warning in result.get("warnings", []):
        console.print(f"warning: {warning}", soft_wrap=True, highlight=False, markup=False)
    # printed whole on its own line, so it can be copied or grepped whatever the terminal's width
    console.print(f"best architecture: {result['arch']}", soft_wrap=True, highlight=False)


def print_front(result: dict[str, Any], console) -> None:
    """The front of a search with several objectives, one row per member, and its hypervolume ratio."""
    from rich.table import Table

    names = result["objectives"]
    truth = any(member["test_accuracy"] is not None for member in result["front"])
    table = Table(title=f"front: {len(result['front'])} non-dominated of {result['evaluated']} scored "
                        f"({' x '.join(names)})")
    table.add_column("index" if result["index"] is not None else "#", justify="right")
    for name in names:
        table.add_column(FRONT_HEADERS.get(name, name), justify="right")
    if truth:
        table.add_column("test acc %", justify="right")
    table.add_column("architecture", overflow="fold")
    for number, member in enumerate(result["front"]):
        cells = [str(member["index"] if member["index"] is not None else number)]
        cells += [_number(member["objectives"][name]) for name in names]
        if truth:
            cells.append(_number(member["test_accuracy"], 2))
        table.add_row(*cells, member["arch"])
    console.print(table)
    if result.get("hypervolume_ratio") is not None:
        volume = result["hypervolume"]
        reference = ", ".join(f"{axis} {value:.6g}" for axis, value in volume["reference"].items())
        console.print(f"hypervolume ratio to the true front ({' x '.join(volume['axes'])}): "
                      f"{result['hypervolume_ratio']:.4f} (reference point: {reference}; true front "
                      f"{len(result['true_front'])} architectures)", soft_wrap=True, highlight=False)
    elif result.get("no_hypervolume"):
        console.print(result["no_hypervolume"], soft_wrap=True, highlight=False, markup=False)


#: column headers of the front's objectives, with their units
FRONT_HEADERS = {"params": "params M", "flops": "FLOPs M", "latency": "latency ms"}


def _number(value: float | None, digits: int = 4) -> str:
    return "non-finite" if value is None else f"{value:.{digits}g}" if digits > 2 else f"{value:.{digits}f}"


def print_correlation(record: dict[str, Any]) -> None:
    """The measures of a ``nasx.correlate`` record, with their intervals, and the non-finite scores left out."""
    from rich.table import Table

    from nasx.correlation import MEASURES

    console = wide_console()
    subset = f" ({record['cells']})" if record.get("cells", "all") != "all" else ""
    title = (f"{record['space']} / {record['dataset']}{subset}: {record['sample']} architectures "
             f"({record['computed']} scored now, the rest from the cache)"
             + ("; 95 % bootstrap intervals" if record.get("bootstrap") else "; no intervals (--bootstrap 0)"))
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
        cells.append(f"{row['median_seconds']:.3f}" if row.get("median_seconds") is not None else "")
        table.add_row(*cells)
    console.print(table)
    for row in record["results"]:
        if row["non_finite"]:
            shown = ", ".join(map(str, row["non_finite_archs"][:10]))
            more = f" and {row['non_finite'] - 10} more" if row["non_finite"] > 10 else ""
            console.print(f"{row['name']}: {row['non_finite']} non-finite scores left out ({shown}{more})")


DIGITS = {"top10_top10": 1, "top64_top5": 0}  # decimals shown per measure (3 for the correlations)


def _with_interval(value: float | None, low: float | None, high: float | None, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    text = f"{value:.{digits}f}"
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def print_summary(summary: list[dict[str, Any]]) -> None:
    """The summary of a ``nasx.experiment``: one row per cell of the grid."""
    from rich.table import Table

    table = Table(title="experiment summary (mean ± std over seeds; std is the population std)")
    for header in ("dataset", "search", "constraints", "budget", "seeds", "failed", "test acc %", "regret",
                   "compute s", "wall s", "scored"):
        table.add_column(header, justify="left" if header in ("dataset", "search", "constraints", "budget")
                         else "right")

    def number(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    for row in summary:
        accuracy = ("n/a" if row["accuracy_mean"] is None
                    else f"{row['accuracy_mean']:.2f} ± {row['accuracy_std']:.2f}")
        table.add_row(row["dataset"], row["label"], row["constraints"], row["budget"], str(row["seeds"]),
                      str(row["failed"]), accuracy, number(row["regret_mean"], 2),
                      number(row["compute_seconds_mean"], 1), number(row["wall_seconds_mean"], 1),
                      number(row["evaluated_mean"], 0))
    wide_console().print(table)


def print_training(record: dict[str, Any]) -> None:
    """What ``nasx train`` did: one row per epoch and the final validation accuracy."""
    from rich.table import Table

    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    shape = "x".join(map(str, record["input_shape"][1:]))
    table = Table(title=f"nasx train: {record['space']} on {record['data']} ({record['num_classes']} classes, {shape}; "
                        f"{record['train_images']} training and {record['val_images']} validation images)")
    for header in ("epoch", "lr", "train loss", "train acc %", "val acc %", "seconds"):
        table.add_column(header, justify="right")
    for row in record["history"]:
        table.add_row(str(row["epoch"]), f"{row['lr']:.4g}", f"{row['train_loss']:.4f}",
                      percent(row["train_accuracy"]), percent(row["val_accuracy"]), f"{row['seconds']:.1f}")
    console = wide_console()
    console.print(table)
    final = record["final_val_accuracy"]
    console.print(f"final validation accuracy: {'n/a (no validation images)' if final is None else f'{final:.2f} %'} "
                  f"({record['params']} parameters)", soft_wrap=True, highlight=False)
    console.print(f"architecture: {record['arch']}", soft_wrap=True, highlight=False)
