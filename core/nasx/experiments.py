"""``nasx experiment``: every combination of searches x proxy sets x datasets x constraints x budgets x seeds,
with one shared score cache and one executor whose workers start once (see :mod:`nasx.grid` for the grid's
form)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from nasx import jsonio
from nasx._build import DEFAULT_COMBINER, Options, Running, expand_proxy_sets, option_pairs
from nasx._run import budget_or_default, run_search_command
from nasx.errors import NasxError
from nasx.options import applicable, check_all_used, option_table, parse_assignments
from nasx.settings import Data, Execution, Inputs, Limits

if TYPE_CHECKING:  # pragma: no cover
    from nasx.plugins import Plugins

DEFAULT_SPACE = "nats-tss"


@dataclass
class ExperimentResult:
    """Every run of a grid (this call's and, with ``resume``, those recorded before) and the summary per cell."""

    runs: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    written: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] != "ok"]

    def to_dict(self) -> dict[str, Any]:
        return jsonio.strict({"runs": self.runs, "summary": self.summary})


def experiment_command(
    plugins: "Plugins",
    spec: dict[str, Any],
    data_dir: str | os.PathLike | None,
    data: Data | None,
    init: str | None,
    init_seed: int | None,
    cache: Any,
    execution: Execution,
    out: str | os.PathLike | None,
    resume: bool,
    plot: str | os.PathLike | None,
    progress: bool,
    on_failure: Callable[[dict[str, Any]], None] | None,
) -> ExperimentResult:
    from nasx import grid as grids
    from nasx.progress import ProgressBar

    if data is not None:  # own data names the task: every run searches for it
        data.check_alone(dataset=(spec.get("datasets") or [None])[0], images=spec.get("images"))
        spec["datasets"] = [data.images.task.name]
    elif spec.get("space") and not spec.get("datasets"):
        spec["datasets"] = [plugins.get("space", spec["space"]).dataset_or_default(None)]
    runs = grids.expand(spec)
    for dataset in spec["datasets"]:
        grids.images_for(spec, dataset)  # a bad path table fails before any work
    init = init if init is not None else spec.get("init", "kaiming")
    init_seed = init_seed if init_seed is not None else spec.get("init_seed", 0)
    Inputs(init=init, init_seed=init_seed)  # checked before any work
    # Grid-wide options go to the runs whose components have them; each must concern at least one run.
    grid_options = list(spec.get("options", []))
    everything: dict[str, dict[str, Any]] = {}
    for entry in runs:
        chosen = expand_proxy_sets(plugins, entry["proxies"])
        entry["combiner"] = entry["combiner"] or chosen.combiner or DEFAULT_COMBINER
        entry["components"] = option_table((
            plugins.get("space", spec["space"]), *(plugins.get("proxy", p) for p in chosen.proxies),
            plugins.get("combiner", entry["combiner"]), plugins.get("searcher", entry["search"])))
        for name, defaults in entry["components"].items():
            everything.setdefault(name, {}).update(defaults)
    check_all_used(parse_assignments(grid_options), everything)
    for entry in runs:
        entry["run_options"] = (*applicable(grid_options, entry["components"]), *entry["options"])
        entry["images"] = grids.images_for(spec, entry["dataset"])
        entry["run_key"] = grids.run_key({
            "space": spec["space"], "init": init, "init_seed": init_seed,
            **{k: entry[k] for k in ("dataset", "label", "search", "proxies", "combiner", "run_options",
                                     "constraints", "budget", "seed", "images")},
            # the dataset names own data by content and resolution; its batch also depends on the seed
            **({"data_seed": data.seed} if data is not None else {})})

    log = grids.RunLog(out, resume) if out is not None else None
    done = log.done() if log is not None else set()
    fresh: list[dict[str, Any]] = []
    # one executor for the whole grid: its workers start once
    with Running(plugins, execution) as running, ProgressBar("experiment", len(runs), enabled=progress) as bar:
        shared = Execution(device=running.device, executor=running.executor, batch_archs=running.batch_archs)
        for number, entry in enumerate(runs, start=1):
            if entry["run_key"] in done:
                continue
            bar.update(number - 1, f"run {number}/{len(runs)}: {entry['dataset']} {entry['label']} "
                                   f"seed {entry['seed']}")
            inputs = Inputs(data_dir=data_dir, images=entry["images"], init=init, init_seed=init_seed, cache=cache,
                            data=data)
            row = _experiment_run(plugins, spec["space"], entry, inputs, shared)
            fresh.append(row)
            if log is not None:
                log.append(row)
            if row["status"] != "ok" and on_failure is not None:
                on_failure(row)
        bar.update(len(runs))
    keys = [entry["run_key"] for entry in runs]
    rows = log.latest(keys) if log is not None else fresh
    summary = grids.summarise(rows)
    result = ExperimentResult(rows, summary)
    if out is not None:
        directory = Path(out)
        result.written = [
            grids.write_table(directory / "runs.csv", rows, grids.RUN_FIELDS),
            grids.write_table(directory / "summary.csv", summary, grids.SUMMARY_FIELDS),
            jsonio.write(directory / "experiment.json", result.to_dict()),
        ]
    if plot is not None:
        from nasx.plotting import plot_experiment

        plot_experiment(summary, os.fspath(plot))
        result.written.append(Path(plot))
    return result


def _experiment_run(plugins: "Plugins", space: str, entry: dict[str, Any], inputs: Inputs,
                    execution: Execution) -> dict[str, Any]:
    """One run of a grid as a row: its result, or its error when it raised."""
    from nasx import grid as grids

    row: dict[str, Any] = {
        "dataset": entry["dataset"], "label": entry["label"], "search": entry["search"],
        "proxies": "+".join(entry["proxies"]), "combiner": entry["combiner"],
        "constraints": grids.describe(entry["constraints"]), "budget": grids.describe(entry["budget"]),
        "seed": entry["seed"], "status": "ok", "arch": None, "index": None, "test_accuracy": None,
        "optimum_accuracy": None, "regret": None, "evaluated": None, "compute_seconds": None, "wall_seconds": None,
        "stop_reason": None, "error": None, "run_key": entry["run_key"],
    }
    dataset = entry["dataset"] if inputs.data is None else None  # own data names the task itself
    try:
        found = run_search_command(
            plugins, space, dataset, entry["proxies"], entry["combiner"], entry["search"], entry["seed"],
            budget_or_default(**entry["budget"]), Limits(**entry["constraints"]), inputs, execution, entry["run_options"],
            out=None, progress=False)
    except Exception as exc:  # one failed run must not lose the grid; KeyboardInterrupt still stops it
        row["status"] = "failed"
        row["error"] = str(exc) if isinstance(exc, NasxError) else f"{type(exc).__name__}: {exc}"
        return row
    row.update({
        "arch": found.arch, "index": found.index, "test_accuracy": found.test_accuracy,
        "optimum_accuracy": found.optimum_accuracy, "regret": found.regret, "evaluated": found.evaluated,
        "compute_seconds": found.compute_seconds, "wall_seconds": found.wall_seconds,
        "stop_reason": found.stop_reason,
    })
    return row


def merge_grid(grid, *, space, datasets, searches, proxies, combiner, seeds, max_evals, max_time, max_wall,
               constraints, images, options: Options) -> dict[str, Any]:
    """The grid (a TOML file or a dict) with the keyword arguments' values in place of its own."""
    from nasx import grid as grids

    if grid is None:
        spec: dict[str, Any] = {}
    elif isinstance(grid, Mapping):
        spec = dict(grid)
        grids.check_grid_keys(spec)
    else:
        spec = grids.load_grid(grid)
    if space:
        spec["space"] = space
    spec.setdefault("space", DEFAULT_SPACE)
    if grids.as_list(datasets):
        spec["datasets"] = grids.as_list(datasets)
    if seeds is not None:
        spec["seeds"] = seeds
    budgets = grids.command_line_budgets(max_evals, max_time, max_wall)
    if budgets:
        spec["budgets"] = budgets
    if grids.as_list(constraints):
        spec["constraints"] = [grids.parse_setting(c) for c in grids.as_list(constraints)]
    search_names = grids.as_list(searches)
    sets = grids.proxy_sets(proxies)
    if search_names:
        if not sets:
            raise NasxError("--search needs at least one --proxies (e.g. --proxies naswot,logsynflow,skip)")
        spec["searches"] = [
            {"label": f"{name}[{','.join(names)}]" if len(sets) > 1 else name,
             "search": name, "proxies": names, **({"combiner": combiner} if combiner is not None else {})}
            for name in search_names for names in sets
        ]
    elif sets:
        raise NasxError("--proxies needs at least one --search")
    if images is not None:
        spec["images"] = dict(images) if isinstance(images, Mapping) else os.fspath(images)
    pairs = option_pairs(options)
    if pairs:
        spec["options"] = [*spec.get("options", []), *pairs]
    return spec
