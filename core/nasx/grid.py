"""Grids of searches for ``nasx.experiment``: searchers x proxy sets x datasets x constraints x budgets x seeds.

A grid comes from a TOML file, a dict, keyword arguments, or a mix (keyword arguments replace the file's values)::

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

Each finished run is appended to ``runs.jsonl`` (and ``runs.csv``) in the output folder at once, so an
interrupted grid loses nothing and ``resume`` continues it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

from nasx import jsonio
from nasx.errors import NasxError

GRID_KEYS = {"space", "datasets", "seeds", "budgets", "constraints", "searches", "images", "init", "init_seed",
             "options"}
SEARCH_KEYS = {"label", "search", "proxies", "combiner", "options"}
BUDGET_KEYS = {"max_evals", "max_time", "max_wall"}
CONSTRAINT_KEYS = {"max_flops", "max_params"}
#: columns of runs.csv, in order
RUN_FIELDS = ("dataset", "label", "search", "proxies", "combiner", "constraints", "budget", "seed", "status",
              "arch", "index", "test_accuracy", "optimum_accuracy", "regret", "evaluated", "compute_seconds",
              "wall_seconds", "stop_reason", "error", "run_key")
RUN_LOG = "runs.jsonl"


def load_grid(path: str | os.PathLike | None) -> dict[str, Any]:
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
        raise NasxError(f"cannot read the grid {str(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NasxError(f"{path}: not valid TOML: {exc}") from None
    check_grid_keys(grid, str(path))
    return grid


def check_grid_keys(grid: dict[str, Any], where: str = "the grid") -> None:
    unknown = sorted(set(grid) - GRID_KEYS)
    if unknown:
        raise NasxError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(GRID_KEYS))})")


def as_list(value: Any) -> list:
    """None -> [], a scalar -> [scalar], a sequence -> list."""
    if value is None:
        return []
    if isinstance(value, (str, int, float, dict)):
        return [value]
    return list(value)


def proxy_sets(value: Any) -> list[list[str]]:
    """Proxy sets from 'a,b' strings or lists of names: 'a,b' -> [['a', 'b']], ['a,b', 'c'] -> [['a','b'], ['c']]."""
    if isinstance(value, str):
        value = [value]
    sets = []
    for entry in as_list(value):
        names = [n.strip() for n in entry.split(",")] if isinstance(entry, str) else list(entry)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise NasxError(f"a proxy set must name proxies, e.g. 'naswot,logsynflow'; got {entry!r}")
        sets.append(names)
    return sets


def command_line_budgets(max_evals: Any, max_time: Any, max_wall: Any) -> list[dict[str, float]]:
    """Budgets from max_evals/max_time/max_wall. Limits of different kinds given once each make one budget;
    one kind may be repeated (``--max-evals 100 --max-evals 1000``) for several budgets, each also bounded by the
    kinds given once."""
    values = {"max_evals": as_list(max_evals), "max_time": as_list(max_time), "max_wall": as_list(max_wall)}
    repeated = [key for key, given in values.items() if len(given) > 1]
    if len(repeated) > 1:
        names = " and ".join("--" + key.replace("_", "-") for key in repeated)
        raise NasxError(f"only one budget option may be repeated ({names} both are)")
    shared = {key: given[0] for key, given in values.items() if len(given) == 1}
    if not repeated:
        return [shared] if shared else []
    return [{**shared, repeated[0]: value} for value in values[repeated[0]]]


def parse_setting(text: Any) -> dict[str, float]:
    """'max_flops=100,max_params=0.8' (or 'none', or a dict) -> {'max_flops': 100.0, 'max_params': 0.8}."""
    if isinstance(text, dict):
        _check_keys(text, CONSTRAINT_KEYS, "constraint setting")
        return dict(text)
    if text is None or str(text).strip().lower() in ("", "none"):
        return {}
    setting = {}
    for part in str(text).split(","):
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
                                     "combiner": entry.get("combiner"),  # None: the set's, else the default
                                     "options": list(entry.get("options", [])),
                                     "constraints": dict(setting), "budget": dict(budget), "seed": int(seed)})
    return runs


def _check_keys(entry: dict, allowed: set[str], what: str) -> None:
    if not isinstance(entry, dict):
        raise NasxError(f"a {what} must be a table, got {entry!r}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise NasxError(f"unknown {what} key {unknown[0]!r} (keys: {', '.join(sorted(allowed))})")


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
    if not isinstance(images, (str, os.PathLike)):
        raise NasxError(f"images: expected a path or a table of paths per dataset, got {images!r}")
    expanded = os.path.expandvars(os.fspath(images))
    if "$" in expanded:
        raise NasxError(f"images: {images!r} names an environment variable that is not set")
    return expanded


def describe(setting: dict[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in sorted(setting.items())) or "none"


def run_key(description: dict[str, Any]) -> str:
    """Identity of one run (its grid cell and seed): a run with the same key is the same computation."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunLog:
    """``runs.jsonl`` and ``runs.csv`` in an output folder, one line per finished run, flushed as it finishes."""

    def __init__(self, directory: str | os.PathLike, resume: bool) -> None:
        self.directory = Path(directory)
        self.path = self.directory / RUN_LOG
        self.csv_path = self.directory / "runs.csv"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NasxError(f"cannot write to {str(directory)!r}: {exc.strerror}") from None
        if self.path.exists() and not resume:
            raise NasxError(f"{self.path} holds runs of an earlier experiment: add --resume to continue it, or "
                            "choose another --out")
        self.records = self._read() if resume else []

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        text = self.path.read_text()
        if text and not text.endswith("\n"):
            # a run killed while writing leaves a partial last line: drop it, that run is done again
            text = text[: text.rfind("\n") + 1]
            self.path.write_text(text)
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise NasxError(f"{self.path}, line {number}: not a run record; move the file away") from None
        return records

    def done(self) -> set[str]:
        """Keys of the runs that finished successfully."""
        return {r["run_key"] for r in self.records if r.get("status") == "ok"}

    def append(self, row: dict[str, Any]) -> None:
        self.records.append(row)
        try:
            with self.path.open("a") as handle:
                handle.write(jsonio.dumps(row) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            new = not self.csv_path.exists()
            with self.csv_path.open("a", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=RUN_FIELDS, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(csv_row(row))
        except OSError as exc:
            raise NasxError(f"cannot write to {str(self.directory)!r}: {exc.strerror}") from None

    def latest(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """The last record of each of these runs (in this order), skipping runs never recorded."""
        last = {r["run_key"]: r for r in self.records}
        return [last[key] for key in keys if key in last]


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for CSV: non-finite floats and None as empty cells."""
    return {k: ("" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v) for k, v in row.items()}


def write_table(path: Path, rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> Path:
    """A CSV file of ``rows`` (the ``fields`` columns), its folder made if needed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(csv_row(row) for row in rows)
    except OSError as exc:
        raise NasxError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    return path


SUMMARY_FIELDS = ("dataset", "label", "constraints", "budget", "seeds", "failed", "accuracy_mean", "accuracy_std",
                  "regret_mean", "optimum_accuracy", "compute_seconds_mean", "wall_seconds_mean", "evaluated_mean")


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, label, constraints, budget): means and standard deviations over the seeds that
    finished, and how many failed."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["label"], row["constraints"], row["budget"]), []).append(row)
    summary = []
    for (dataset, label, constraints, budget), members in groups.items():
        ok = [m for m in members if m.get("status", "ok") == "ok"]
        accuracy = [m["test_accuracy"] for m in ok if m["test_accuracy"] is not None]
        regret = [m["regret"] for m in ok if m["regret"] is not None]

        def mean(field: str) -> float | None:
            return statistics.fmean(m[field] for m in ok) if ok else None

        summary.append({
            "dataset": dataset, "label": label, "constraints": constraints, "budget": budget,
            "seeds": len(ok), "failed": len(members) - len(ok),
            "accuracy_mean": statistics.fmean(accuracy) if accuracy else None,
            "accuracy_std": statistics.pstdev(accuracy) if accuracy else None,
            "regret_mean": statistics.fmean(regret) if regret else None,
            "optimum_accuracy": ok[0]["optimum_accuracy"] if ok else None,
            "compute_seconds_mean": mean("compute_seconds"),
            "wall_seconds_mean": mean("wall_seconds"),
            "evaluated_mean": mean("evaluated"),
        })
    return summary
