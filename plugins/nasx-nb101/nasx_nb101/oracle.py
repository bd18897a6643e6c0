"""Ground truth of NAS-Bench-101 from the compact table ``nb101.csv.gz``, looked up by module hash.

The 423,624 rows are held in numpy arrays (hash as 32 ASCII hex digits, sorted; accuracy; parameters; the cell packed
into an adjacency bit mask and an op code string), about 30 MB, instead of Python objects per row.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Sequence

import networkx as nx
import numpy as np

from nasx.errors import NasxError
from nasx.interfaces import Constraint, Cost, Oracle
from nasx_nb101.cell import OPS, params_and_flops

TABLE_NAME = "nb101.csv.gz"
ROWS = 423624
_OP_CODE = {"input": "i", "output": "o", OPS[0]: "3", OPS[1]: "1", OPS[2]: "m"}
_CODE_OP = {code: op for op, code in _OP_CODE.items()}


class Nb101Table:
    """Hash-sorted arrays of the table; one copy per process is enough, whatever the dataset."""

    def __init__(self, path: Path) -> None:
        # ASCII hex rather than raw bytes: numpy's fixed-width bytes drop trailing zero bytes.
        hashes = np.empty(ROWS, dtype="S32")
        accuracy = np.empty(ROWS, dtype=np.float64)
        params = np.empty(ROWS, dtype=np.int64)
        adjacency = np.empty(ROWS, dtype=np.uint64)
        ops = np.empty(ROWS, dtype="S7")
        count = 0
        try:
            with gzip.open(path, "rt", newline="") as handle:
                for count, row in enumerate(csv.DictReader(handle), start=1):
                    if count > ROWS:
                        break
                    i = count - 1
                    hashes[i] = row["hash"].encode("ascii")
                    accuracy[i] = float(row["test_acc"]) * 100.0  # the table stores a fraction
                    params[i] = int(row["params"])
                    adjacency[i] = int(row["adjacency"][::-1], 2)
                    ops[i] = "".join(_OP_CODE[op] for op in row["ops"].split(",")).encode()
        except (OSError, KeyError, ValueError) as exc:
            raise NasxError(f"cannot read the NAS-Bench-101 table {str(path)!r}: {exc}") from None
        if count != ROWS:
            raise NasxError(f"{path} has {count} rows, expected {ROWS}")
        order = np.argsort(hashes)
        self.hashes, self.accuracy, self.params = hashes[order], accuracy[order], params[order]
        self.adjacency, self.ops = adjacency[order], ops[order]
        self.source = str(path)

    def __len__(self) -> int:
        return len(self.hashes)

    def position(self, module_hash: str) -> int:
        key = module_hash.encode("ascii")
        position = int(np.searchsorted(self.hashes, key))
        if position >= len(self.hashes) or self.hashes[position] != key:
            raise NasxError(f"cell {module_hash} is not in the NAS-Bench-101 table {self.source}")
        return position

    def cell(self, position: int) -> tuple[np.ndarray, list[str]]:
        """The stored (trained) representative of a row: adjacency matrix and operations."""
        ops = [_CODE_OP[code] for code in self.ops[position].decode()]
        n = len(ops)
        bits = int(self.adjacency[position])
        matrix = np.array([(bits >> k) & 1 for k in range(n * n)], dtype=np.int8).reshape(n, n)
        return matrix, ops


_TABLES: dict[str, Nb101Table] = {}


def load_table(path: Path) -> Nb101Table:
    key = str(Path(path).resolve())
    if key not in _TABLES:
        _TABLES[key] = Nb101Table(Path(path))
    return _TABLES[key]


class Nb101Oracle(Oracle):
    """Mean test accuracy (percent) of the three 108-epoch trainings, and the benchmark's parameter count."""

    def __init__(self, space, table: Nb101Table) -> None:
        self.space = space
        self.table = table
        self.source = table.source

    def _position(self, genotype: nx.DiGraph) -> int:
        return self.table.position(self.space.key(genotype))

    def test_accuracy(self, genotype: nx.DiGraph) -> float:
        return float(self.table.accuracy[self._position(genotype)])

    def optimum(self, constraints: Sequence[Constraint]) -> tuple[str, float] | None:
        # Walk down from the most accurate cell; costs are computed only until the first feasible one.
        for position in np.argsort(-self.table.accuracy, kind="stable"):
            matrix, ops = self.table.cell(int(position))
            if constraints:
                params, flops = params_and_flops(matrix, ops)
                cost = Cost(flops_m=flops / 1e6, params_m=params / 1e6)
                if not all(c.is_feasible(cost) for c in constraints):
                    continue
            genotype = self.space.from_cell(matrix, ops)
            return self.space.encode(genotype), float(self.table.accuracy[position])
        return None


def find_nb101_oracle(space, data_dir: Path | None) -> Oracle | None:
    if data_dir is None:
        return None
    path = Path(data_dir) / TABLE_NAME
    return Nb101Oracle(space, load_table(path)) if path.is_file() else None
