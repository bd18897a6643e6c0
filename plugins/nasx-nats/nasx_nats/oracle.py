"""Ground truth of the NATS-Bench spaces: the compact table ``nats_tss.csv.gz`` (topology space), or the official
NATS-Bench files read through the ``nats_bench`` package (both spaces)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Sequence

import networkx as nx

from nasx.errors import NasxError
from nasx.interfaces import Constraint, Cost, Oracle

TABLE_NAME = "nats_tss.csv.gz"
OFFICIAL_DIR_NAME = "NATS-tss-v1_0-3ffb9-simple"
SSS_DIR_NAME = "NATS-sss-v1_0-50262-simple"


class TssTableOracle(Oracle):
    """Seed-averaged 200-epoch test accuracy, params and FLOPs of all 15625 cells, from the compact table."""

    def __init__(self, space, path: Path) -> None:
        self.space = space
        self.source = str(path)
        dataset = space.dataset
        self.rows: dict[str, tuple[float, Cost]] = {}
        with gzip.open(path, "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                cost = Cost(float(row[f"{dataset}_flops_M"]), float(row[f"{dataset}_params_M"]))
                self.rows[row["arch"]] = (float(row[f"{dataset}_test_acc"]), cost)
        if len(self.rows) != len(space):
            raise NasxError(f"{path} has {len(self.rows)} architectures, expected {len(space)}")

    def test_accuracy(self, genotype: nx.DiGraph) -> float:
        return self.rows[self.space.encode(genotype)][0]

    def records(self):
        return ((arch, accuracy, cost) for arch, (accuracy, cost) in self.rows.items())

    def optimum(self, constraints: Sequence[Constraint]) -> tuple[str, float] | None:
        feasible = [
            (accuracy, arch)
            for arch, (accuracy, cost) in self.rows.items()
            if all(c.is_feasible(cost) for c in constraints)
        ]
        if not feasible:
            return None
        accuracy, arch = max(feasible)
        return arch, accuracy


class OfficialOracle(Oracle):
    """Official NATS-Bench files (``create(path, kind, fast_mode=True)``): seed-averaged test accuracy of the
    space's full training schedule (200 epochs for the topology space, 90 for the size space)."""

    #: the ``nats_bench`` space (``tss`` or ``sss``) and the training schedule whose accuracy is reported
    kind: str
    epochs: str

    def __init__(self, space, path: Path) -> None:
        try:
            import nats_bench
        except ImportError:  # pragma: no cover - nats_bench is a dependency of this plugin
            raise NasxError("reading official NATS-Bench files needs the nats_bench package") from None
        self.space = space
        self.source = str(path)
        try:
            self.api = nats_bench.create(str(path), self.kind, fast_mode=True, verbose=False)
        except Exception as exc:
            raise NasxError(f"cannot read NATS-Bench files at {str(path)!r}: {exc}") from None

    def _index(self, genotype: nx.DiGraph) -> int:
        return self.api.query_index_by_arch(self.space.encode(genotype))

    def _query(self, method, genotype: nx.DiGraph, hp: str) -> dict:
        index = self._index(genotype)
        try:
            return method(index, self.space.dataset, hp=hp)
        except Exception as exc:  # the API raises bare errors for indices whose records are missing
            raise NasxError(f"no NATS-Bench record of {self.space.encode(genotype)} (index {index}) in "
                            f"{self.source}: {exc}") from None

    def test_accuracy(self, genotype: nx.DiGraph) -> float:
        info = self._query(lambda i, d, hp: self.api.get_more_info(i, d, hp=hp, is_random=False), genotype,
                           self.epochs)
        return float(info["test-accuracy"])


class TssOfficialOracle(OfficialOracle):
    kind, epochs = "tss", "200"


class SssOfficialOracle(OfficialOracle):
    kind, epochs = "sss", "90"


def find_tss_oracle(space, data_dir: Path | None, benchmark_dir: str | None) -> Oracle | None:
    """Official files when asked for, else the compact table, else official files inside the data dir."""
    if benchmark_dir:
        path = Path(benchmark_dir).expanduser()
        if not path.exists():
            raise NasxError(f"NATS-Bench directory {str(path)!r} does not exist")
        return TssOfficialOracle(space, path)
    if data_dir is None:
        return None
    table = Path(data_dir) / TABLE_NAME
    if table.is_file():
        return TssTableOracle(space, table)
    for candidate in (Path(data_dir) / OFFICIAL_DIR_NAME, Path(data_dir) / "nats_fake_torch_dir" / OFFICIAL_DIR_NAME):
        if candidate.is_dir():
            return TssOfficialOracle(space, candidate)
    return None


def find_sss_oracle(space, data_dir: Path | None, benchmark_dir: str | None) -> Oracle | None:
    """Official size-space files when asked for, else ``NATS-sss-v1_0-50262-simple`` inside the data dir.

    The three-architecture test copy in ``nats_fake_torch_dir`` is used only when named explicitly: a search
    would almost never end on one of its three architectures.
    """
    if benchmark_dir:
        path = Path(benchmark_dir).expanduser()
        if not path.exists():
            raise NasxError(f"NATS-Bench directory {str(path)!r} does not exist")
        return SssOfficialOracle(space, path)
    if data_dir is not None and (Path(data_dir) / SSS_DIR_NAME).is_dir():
        return SssOfficialOracle(space, Path(data_dir) / SSS_DIR_NAME)
    return None
