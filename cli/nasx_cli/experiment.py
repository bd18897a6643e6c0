"""``nasx experiment``: a grid of searches (searchers x proxy sets x datasets x constraints x budgets x seeds)
sharing one score cache, with a tidy table of every run and a summary per cell of the grid.

A grid comes from a TOML file, from the command line, or both (command-line values replace the file's)::

    space = "nats-tss"
    datasets = ["cifar10", "cifar100"]
    seeds = 10                      # 0..9, or a list such as [0, 3, 7]
    budgets = [{ max_time = 45 }]   # one entry per budget; keys max_evals, max_time, max_wall
    constraints = [{}, { max_flops = 100, max_params = 0.8 }]   # {} = unconstrained

    [[searches]]
    label = "FreeREA"
    search = "freerea"
    proxies = ["naswot", "logsynflow", "skip"]
    combiner = "freerea"
    options = ["freerea.population_size=25"]

``images`` is one file for every dataset, or a table per dataset (datasets left out use the synthetic batch);
``$NASX_DATA`` and other environment variables in a path are expanded::

    images = { cifar10 = "$NASX_DATA/cifar10_test_512_jpeg.npz" }
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from pathlib import Path
from typing import Any

from nasx.errors import NasxError
from nasx.options import applicable, check_all_used, option_table, parse_assignments
from nasx_cli.progress import ProgressBar

GRID_KEYS = {"space", "datasets", "seeds", "budgets", "constraints", "searches", "images", "init", "init_seed",
             "options"}
SEARCH_KEYS = {"label", "search", "proxies", "combiner", "options"}
BUDGET_KEYS = {"max_evals", "max_time", "max_wall"}
CONSTRAINT_KEYS = {"max_flops", "max_params"}


def load_grid(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            grid = tomllib.load(handle)
    except OSError as exc:
        raise NasxError(f"cannot read the grid {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NasxError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(grid) - GRID_KEYS)
    if unknown:
        raise NasxError(f"{path}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(GRID_KEYS))})")
    return grid


def merge_command_line(grid: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """The grid with the command line's values in place of the file's."""
    grid = dict(grid)
    if args["space"]:
        grid["space"] = args["space"]
    if args["datasets"]:
        grid["datasets"] = list(args["datasets"])
    if args["seeds"] is not None:
        grid["seeds"] = args["seeds"]
    budgets = _command_line_budgets(args)
    if budgets:
        grid["budgets"] = budgets
    if args["constraint_settings"]:
        grid["constraints"] = [_parse_setting(text) for text in args["constraint_settings"]]
    if args["searches"]:
        if not args["proxy_sets"]:
            raise NasxError("--search needs at least one --proxies (e.g. --proxies naswot,logsynflow,skip)")
        grid["searches"] = [
            {"label": f"{search}[{proxies}]" if len(args["proxy_sets"]) > 1 else search,
             "search": search, "proxies": proxies.split(","), "combiner": args["combiner"]}
            for search in args["searches"] for proxies in args["proxy_sets"]
        ]
    if args["images"]:
        grid["images"] = args["images"]
    if args["option_pairs"]:
        grid["options"] = [*grid.get("options", []), *args["option_pairs"]]
    return grid


def _command_line_budgets(args: dict[str, Any]) -> list[dict[str, float]]:
    """Budgets from --max-evals/--max-time/--max-wall. Limits of different kinds given once each make one budget;
    one kind may be repeated (``--max-evals 100 --max-evals 1000``) for several budgets, each also bounded by the
    kinds given once."""
    values = {key: list(args.get(key) or ()) for key in sorted(BUDGET_KEYS)}
    repeated = [key for key, given in values.items() if len(given) > 1]
    if len(repeated) > 1:
        names = " and ".join("--" + key.replace("_", "-") for key in repeated)
        raise NasxError(f"only one budget option may be repeated ({names} both are)")
    shared = {key: given[0] for key, given in values.items() if len(given) == 1}
    if not repeated:
        return [shared] if shared else []
    return [{**shared, repeated[0]: value} for value in values[repeated[0]]]


def _parse_setting(text: str) -> dict[str, float]:
    """'max_flops=100,max_params=0.8' (or 'none') -> {'max_flops': 100.0, 'max_params': 0.8}."""
    if text.strip().lower() in ("", "none"):
        return {}
    setting = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in CONSTRAINT_KEYS:
            raise NasxError(f"--constraint {text!r}: expected max_flops=F,max_params=P (or none)")
        try:
            setting[key] = float(value)
        except ValueError:
            raise NasxError(f"--constraint {text!r}: {value!r} is not a number") from None
    return setting


def expand(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of the grid, as a description (no work done)."""
    for key in ("space", "datasets", "searches"):
        if not grid.get(key):
            raise NasxError(f"the grid needs '{key}' (a TOML key, or --{key.rstrip('s')} on the command line)")
    seeds = grid.get("seeds", 1)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise NasxError("the grid has no seeds")
    budgets = grid.get("budgets") or [{"max_evals": 100}]
    constraints = grid.get("constraints") or [{}]
    for budget in budgets:
        _check_keys(budget, BUDGET_KEYS, "budget")
    for setting in constraints:
        _check_keys(setting, CONSTRAINT_KEYS, "constraint setting")
    runs = []
    for dataset in grid["datasets"]:
        for entry in grid["searches"]:
            _check_keys(entry, SEARCH_KEYS, "search")
            if not entry.get("search") or not entry.get("proxies"):
                raise NasxError(f"each search needs 'search' and 'proxies': {entry}")
            for setting in constraints:
                for budget in budgets:
                    for seed in seeds:
                        runs.append({"dataset": dataset, "label": entry.get("label", entry["search"]),
                                     "search": entry["search"], "proxies": list(entry["proxies"]),
                                     "combiner": entry.get("combiner", "freerea"),
                                     "options": list(entry.get("options", [])),
                                     "constraints": dict(setting), "budget": dict(budget), "seed": int(seed)})
    return runs


def _check_keys(entry: dict, allowed: set[str], what: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise NasxError(f"unknown {what} key {unknown[0]!r} (keys: {', '.join(sorted(allowed))})")


def run_grid(plugins, grid: dict[str, Any], args: dict[str, Any]) -> list[dict[str, Any]]:
    from nasx_cli.run import execute

    runs = expand(grid)
    for dataset in grid["datasets"]:
        images_for(grid, dataset)  # a bad path table fails before any work
    # Grid-wide options go to the runs whose components have them; each must concern at least one run.
    grid_options = list(grid.get("options", []))
    components = {}
    for run in runs:
        run["components"] = option_table((
            plugins.get("space", grid["space"]), *(plugins.get("proxy", p) for p in run["proxies"]),
            plugins.get("combiner", run["combiner"]), plugins.get("searcher", run["search"])))
        for name, defaults in run["components"].items():
            components.setdefault(name, {}).update(defaults)
    check_all_used(parse_assignments(grid_options), components)
    rows = []
    with ProgressBar("experiment", len(runs), enabled=not args["quiet"]) as progress:
        for number, run in enumerate(runs, start=1):
            progress.update(number - 1, f"run {number}/{len(runs)}: {run['dataset']} {run['label']} seed {run['seed']}")
            run_args = {
                "space": grid["space"], "dataset": run["dataset"], "proxies": tuple(run["proxies"]),
                "combiner": run["combiner"], "searcher_name": run["search"], "seed": run["seed"],
                "max_evals": run["budget"].get("max_evals"), "max_time": run["budget"].get("max_time"),
                "max_wall": run["budget"].get("max_wall"), "max_flops": run["constraints"].get("max_flops"),
                "max_params": run["constraints"].get("max_params"), "data_dir": args["data_dir"],
                "images": images_for(grid, run["dataset"]), "init_scheme": grid.get("init", args["init_scheme"]),
                "init_seed": grid.get("init_seed", args["init_seed"]), "cache": args["cache"],
                "no_cache": args["no_cache"], "quiet": True,
                "option_pairs": (*applicable(grid_options, run["components"]), *run["options"]),
            }
            record = execute(plugins, run_args)
            rows.append({
                "dataset": run["dataset"], "label": run["label"], "search": run["search"],
                "proxies": "+".join(run["proxies"]), "combiner": run["combiner"],
                "constraints": _describe(run["constraints"]), "budget": _describe(run["budget"]),
                "seed": run["seed"], "arch": record["arch"], "index": record["index"],
                "test_accuracy": record["test_accuracy"], "optimum_accuracy": record["optimum_accuracy"],
                "regret": record["regret"], "evaluated": record["evaluated"],
                "compute_seconds": record["compute_seconds"], "wall_seconds": record["wall_seconds"],
                "stop_reason": record["stop_reason"],
            })
        progress.update(len(runs))
    return rows


def images_for(grid: dict[str, Any], dataset: str) -> str | None:
    """The input images of one dataset: the grid's single file, its per-dataset table's entry, or None."""
    images = grid.get("images")
    if isinstance(images, dict):
        unknown = sorted(set(images) - set(grid["datasets"]))
        if unknown:
            raise NasxError(f"images: {unknown[0]!r} is not one of the grid's datasets")
        images = images.get(dataset)
    if images is None:
        return None
    if not isinstance(images, str):
        raise NasxError(f"images: expected a path or a table of paths per dataset, got {images!r}")
    expanded = os.path.expandvars(images)
    if "$" in expanded:
        raise NasxError(f"images: {images!r} names an environment variable that is not set")
    return expanded


def _describe(setting: dict[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in sorted(setting.items())) or "none"


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, label, constraints, budget): means and standard deviations over the seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["label"], row["constraints"], row["budget"]), []).append(row)
    summary = []
    for (dataset, label, constraints, budget), members in groups.items():
        accuracy = [m["test_accuracy"] for m in members if m["test_accuracy"] is not None]
        regret = [m["regret"] for m in members if m["regret"] is not None]
        summary.append({
            "dataset": dataset, "label": label, "constraints": constraints, "budget": budget,
            "seeds": len(members),
            "accuracy_mean": statistics.fmean(accuracy) if accuracy else None,
            "accuracy_std": statistics.pstdev(accuracy) if accuracy else None,
            "regret_mean": statistics.fmean(regret) if regret else None,
            "optimum_accuracy": members[0]["optimum_accuracy"],
            "compute_seconds_mean": statistics.fmean(m["compute_seconds"] for m in members),
            "wall_seconds_mean": statistics.fmean(m["wall_seconds"] for m in members),
            "evaluated_mean": statistics.fmean(m["evaluated"] for m in members),
        })
    return summary


def print_summary(summary: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from nasx_cli.report import wide_console

    table = Table(title="experiment summary (mean ± std over seeds; std is the population std)")
    for header in ("dataset", "search", "constraints", "budget", "seeds", "test acc %", "regret", "compute s",
                   "wall s", "scored"):
        table.add_column(header, justify="left" if header in ("dataset", "search", "constraints", "budget")
                         else "right")
    for row in summary:
        accuracy = ("n/a" if row["accuracy_mean"] is None
                    else f"{row['accuracy_mean']:.2f} ± {row['accuracy_std']:.2f}")
        regret = "n/a" if row["regret_mean"] is None else f"{row['regret_mean']:.2f}"
        table.add_row(row["dataset"], row["label"], row["constraints"], row["budget"], str(row["seeds"]), accuracy,
                      regret, f"{row['compute_seconds_mean']:.1f}", f"{row['wall_seconds_mean']:.1f}",
                      f"{row['evaluated_mean']:.0f}")
    wide_console().print(table)


def write_outputs(rows, summary, directory: str) -> list[Path]:
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in (("runs", rows), ("summary", summary)):
            path = out / f"{name}.csv"
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
            written.append(path)
        path = out / "experiment.json"
        path.write_text(json.dumps({"runs": rows, "summary": summary}, indent=1) + "\n")
        written.append(path)
    except OSError as exc:
        raise NasxError(f"cannot write to {directory!r}: {exc.strerror}") from None
    return written


def plot(summary: list[dict[str, Any]], path: str) -> None:
    """Mean test accuracy against mean compute time per search (log x), one panel per dataset and
    constraint setting; several budgets of one search make a line."""
    from nasx_cli.plotting import pyplot, save

    plt = pyplot()
    panels = sorted({(r["dataset"], r["constraints"]) for r in summary if r["accuracy_mean"] is not None})
    if not panels:
        raise NasxError("--plot needs ground truth (test accuracy): set --data-dir or NASX_DATA")
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (dataset, constraints) in zip(axes[0], panels):
        rows = [r for r in summary if r["dataset"] == dataset and r["constraints"] == constraints]
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
