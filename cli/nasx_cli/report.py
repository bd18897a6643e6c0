"""Human-readable output of a search result."""

from __future__ import annotations

from typing import Any


def wide_console():
    """A rich console that keeps wide tables readable when output goes to a file or a pipe (where rich would
    otherwise wrap at 80 columns)."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def print_result(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, title=f"nasx run: {result['search']} on {result['space']} / {result['dataset']}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    if result["index"] is not None:
        table.add_row("index", str(result["index"]))
    for name, value in result["scores"].items():
        table.add_row(f"score {name}", f"{value:.6g}")
    table.add_row(f"fitness ({result['combiner']})", f"{result['fitness']:.4f}")
    table.add_row("FLOPs", f"{result['flops_m']:.2f} M")
    table.add_row("params", f"{result['params_m']:.4f} M")
    table.add_row("architectures scored", str(result["evaluated"]))
    table.add_row("wall time", f"{result['wall_seconds']:.1f} s")
    table.add_row("compute time (recorded)", f"{result['compute_seconds']:.1f} s")
    table.add_row("stopped because", result["stop_reason"])
    if result["test_accuracy"] is not None:
        table.add_row("test accuracy", f"{result['test_accuracy']:.2f} %")
        if result["optimum_accuracy"] is not None:
            table.add_row("optimum (same constraints)", f"{result['optimum_accuracy']:.2f} %")
            table.add_row("regret", f"{result['regret']:.2f}")
    else:
        table.add_row("ground truth", "not available: no benchmark data for this space was found "
                                      "(--data-dir or NASX_DATA; README, Data)")
    console = Console()
    console.print(table)
    # printed whole on its own line, so it can be copied or grepped whatever the terminal's width
    console.print(f"best architecture: {result['arch']}", soft_wrap=True, highlight=False)
