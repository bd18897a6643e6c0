"""Ground truth of NAS-Bench-NLP from ``nbnlp_recipes_wt2_ptb.csv.gz``, looked up by recipe.

Losses are the final-epoch test cross-entropy in nats per token (perplexity = exp(loss)); lower is better.
PTB, ``ground_truth=replicates`` (default): the mean over every successful multi-run training of the recipe, i.e.
the replicate-group means (``ptb_test_loss_mean``) of its distinct groups weighted by their successful runs
(``ptb_n_ok``). ``ground_truth=same-id``: the mean of the runs that share a row's recipe id (``ptb_test_loss``).
WikiText-2: the mean ``wt2_test_loss`` of the recipe's rows whose training ended without NaN.
"""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path
from typing import Sequence

import networkx as nx

from nasx.errors import InvalidGenotype, NasxError
from nasx.interfaces import Constraint, Oracle
from nasx_nbnlp.recipe import canonical, parse

TABLE_NAME = "nbnlp_recipes_wt2_ptb.csv.gz"


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


class NbNlpTable:
    """The rows grouped by canonical recipe: ground truth and the benchmark's parameter counts."""

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        self.order: list[str] = []  # canonical recipes, in the order they first appear
        self.rows: dict[str, list[dict]] = {}
        try:
            with gzip.open(path, "rt", newline="") as handle:
                for row in csv.DictReader(handle):
                    key = canonical(parse(row["recipe_json"]))
                    if key not in self.rows:
                        self.order.append(key)
                        self.rows[key] = []
                    self.rows[key].append(row)
        except (OSError, KeyError, InvalidGenotype, EOFError) as exc:
            raise NasxError(f"cannot read the NAS-Bench-NLP table {str(path)!r}: {exc}") from None
        if not self.rows:
            raise NasxError(f"the NAS-Bench-NLP table {str(path)!r} has no rows")

    def ptb_loss(self, key: str, mode: str) -> float:
        rows = self.rows.get(key, [])
        if mode == "same-id":
            losses = [_number(r["ptb_test_loss"]) for r in rows]
            losses = [v for v in losses if math.isfinite(v)]
            return sum(losses) / len(losses) if losses else math.nan
        groups = {}
        for row in rows:
            mean, runs = _number(row["ptb_test_loss_mean"]), _number(row["ptb_n_ok"])
            if math.isfinite(mean) and runs > 0:
                groups[row["seed_group"]] = (mean, runs)
        runs = sum(n for _, n in groups.values())
        return sum(m * n for m, n in groups.values()) / runs if runs else math.nan

    def wt2_loss(self, key: str) -> float:
        losses = [_number(r["wt2_test_loss"]) for r in self.rows.get(key, []) if r["wt2_status"] == "OK"]
        losses = [v for v in losses if math.isfinite(v)]
        return sum(losses) / len(losses) if losses else math.nan

    def params(self, key: str, dataset: str) -> float:
        """The benchmark's own parameter count (the same in every row of a recipe), NaN when absent."""
        column = "ptb_params" if dataset == "ptb" else "wt2_params"
        counts = {_number(r[column]) for r in self.rows.get(key, [])}
        counts = {c for c in counts if math.isfinite(c)}
        return counts.pop() if len(counts) == 1 else math.nan


_TABLES: dict[str, NbNlpTable] = {}


def load_table(path: Path) -> NbNlpTable:
    key = str(Path(path).resolve())
    if key not in _TABLES:
        _TABLES[key] = NbNlpTable(Path(path))
    return _TABLES[key]


class NbNlpOracle(Oracle):
    """Test loss (lower is better) of the recipes in the table; NaN for any other recipe."""

    higher_is_better = False

    def __init__(self, space, table: NbNlpTable) -> None:
        self.space = space
        self.table = table
        self.source = table.source
        dataset, mode = space.dataset, space.options["ground_truth"]
        self.metric = ("PTB" if dataset == "ptb" else "WikiText-2") + " test loss (nats per token)"
        self.losses = {key: (table.ptb_loss(key, mode) if dataset == "ptb" else table.wt2_loss(key))
                       for key in table.order}

    def test_accuracy(self, genotype: nx.DiGraph) -> float:
        """The test loss (not an accuracy: lower is better, see ``higher_is_better``)."""
        return self.losses.get(self.space.encode(genotype), math.nan)

    def perplexity(self, genotype: nx.DiGraph) -> float:
        return math.exp(self.test_accuracy(genotype))

    def genotypes(self) -> list[nx.DiGraph]:
        """The recipes with ground truth, in the table's order."""
        return [self.space.decode(key) for key in self.table.order if math.isfinite(self.losses[key])]

    def optimum(self, constraints: Sequence[Constraint]) -> tuple[str, float] | None:
        # The table holds a few hundred of the space's cells: its best is not the optimum of the space.
        return None


def find_nbnlp_oracle(space, data_dir: Path | None) -> Oracle | None:
    if data_dir is None:
        return None
    path = Path(data_dir) / TABLE_NAME
    return NbNlpOracle(space, load_table(path)) if path.is_file() else None
