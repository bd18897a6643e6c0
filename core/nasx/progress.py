"""A rich progress bar on stderr for long commands; silent when stderr is not a terminal."""

from __future__ import annotations

import sys


class ProgressBar:
    def __init__(self, label: str, total: float | None, enabled: bool = True, eta: bool = False) -> None:
        self.label = label
        self.eta = eta
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            columns = [TextColumn(self.label), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
            if self.eta:
                columns += [TextColumn("ETA"), TimeRemainingColumn()]
            self.bar = Progress(*columns, console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total, info="")
        return self

    def update(self, completed: float, info: str = "") -> None:
        if self.bar is not None:
            if self.total is not None:
                completed = min(completed, self.total)
            self.bar.update(self.task, completed=completed, info=info)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


class SearchProgress:
    """Progress of a search: distinct architectures scored, or compute seconds spent, against the budget."""

    def __init__(self, budget, enabled: bool) -> None:
        total = budget.max_evals if budget.max_evals is not None else budget.max_time
        self.bar = ProgressBar("searching", None if total is None else float(total), enabled)
        self.budget = budget

    def __enter__(self) -> "SearchProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def on_evaluation(self, context, evaluation) -> None:
        done = len(context.explored) if self.budget.max_evals is not None else context.compute_seconds
        self.bar.update(done, f"{len(context.explored)} scored, {context.compute_seconds:.1f} s compute")
