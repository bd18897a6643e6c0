"""The NAS-Bench-101 space (``nb101``): cells of at most 7 vertices and 9 edges, operations on vertices.

Genotype: a frozen DiGraph over vertices 0..n-1 (0 = input, n-1 = output, edges from lower to higher vertices),
each vertex with an ``op`` attribute, always pruned (every vertex lies on an input -> output path).
String form: the vertices in order, each interior vertex and the output with its inputs, e.g.
``input;conv3x3-bn-relu:0;maxpool3x3:0,1;output:1,2``.
Key: the benchmark's own module hash, so isomorphic cells are one architecture (as in the benchmark).
"""

from __future__ import annotations

import random
from typing import ClassVar

import networkx as nx
import numpy as np

from nasx.errors import InvalidGenotype, NasxError
from nasx.genotype import frozen
from nasx.interfaces import Cost, EvolvableSpace
from nasx.options import one_of
from nasx_nb101.cell import (INPUT, INPUT_SIDE, MAX_VERTICES, NUM_CLASSES, OPS, OUTPUT, module_hash,
                             params_and_flops, problem, prune)

# Attempts before an operator gives up; a valid result is found in a few tries in practice.
MAX_TRIES = 10_000


class Nb101Space(EvolvableSpace):
    name = "nb101"
    summary = "NAS-Bench-101: 423624 cells of <= 7 vertices and <= 9 edges (CIFAR-10)"
    datasets: ClassVar[tuple[str, ...]] = ("cifar10",)
    default_dataset = "cifar10"
    version = "1"  # bump when the networks or the genotype encoding change
    cost_is_exact = True  # cost() counts every parameter of build()
    # "specs": NAS-Bench-101's own random specifications (no data needed; favours small cells);
    # "cells": uniform over the benchmark's 423624 cells, drawn from nb101.csv.gz in $NASX_DATA.
    defaults = {"sampling": "specs"}
    option_checks = {"sampling": one_of("specs", "cells")}

    # genotype <-> cell ---------------------------------------------------------------------------
    @staticmethod
    def cell(genotype: nx.DiGraph) -> tuple[np.ndarray, list[str]]:
        """(adjacency matrix, operations) of a genotype."""
        try:
            n = genotype.number_of_nodes()
            ops = [genotype.nodes[v]["op"] for v in range(n)]
        except (KeyError, AttributeError) as exc:
            raise InvalidGenotype(f"not an nb101 genotype: vertices must be 0..n-1 with an op ({exc})") from None
        matrix = np.zeros((n, n), dtype=np.int8)
        for u, v in genotype.edges:
            matrix[u, v] = 1
        return matrix, ops

    @staticmethod
    def from_cell(matrix, ops) -> nx.DiGraph:
        """The (pruned) genotype of a cell; InvalidGenotype when it is not one of the benchmark's."""
        matrix = np.asarray(matrix, dtype=np.int8)
        ops = list(ops)
        if matrix.ndim != 2 or matrix.shape != (len(ops), len(ops)):
            raise InvalidGenotype(f"adjacency of shape {matrix.shape} does not fit {len(ops)} operations")
        if np.any(np.tril(matrix)):
            raise InvalidGenotype("edges must go from a lower to a higher vertex")
        pruned = prune(matrix, ops)
        if pruned is None:
            raise InvalidGenotype("the input is not connected to the output")
        matrix, ops = pruned
        reason = problem(matrix, ops)
        if reason:
            raise InvalidGenotype(f"not a NAS-Bench-101 cell: {reason}")
        graph = nx.DiGraph()
        for v, op in enumerate(ops):
            graph.add_node(v, op=op)
        graph.add_edges_from(zip(*(int_list.tolist() for int_list in np.nonzero(matrix))))
        return frozen(graph)

    def encode(self, genotype: nx.DiGraph) -> str:
        matrix, ops = self.cell(genotype)
        parts = [ops[0]]
        for v in range(1, len(ops)):
            parts.append(f"{ops[v]}:{','.join(str(u) for u in np.flatnonzero(matrix[:, v]).tolist())}")
        return ";".join(parts)

    def decode(self, text: str) -> nx.DiGraph:
        if not isinstance(text, str):
            raise InvalidGenotype(f"an nb101 cell is text, got {type(text).__name__}")
        parts = text.strip().split(";")
        if len(parts) < 2 or parts[0] != INPUT:
            raise InvalidGenotype(f"malformed nb101 cell {text!r}: expected 'input;op:inputs;...;output:inputs'")
        n = len(parts)
        if n > MAX_VERTICES:
            raise InvalidGenotype(f"malformed nb101 cell {text!r}: more than {MAX_VERTICES} vertices")
        matrix = np.zeros((n, n), dtype=np.int8)
        ops = [INPUT]
        for v, part in enumerate(parts[1:], start=1):
            op, sep, sources = part.partition(":")
            if not sep:
                raise InvalidGenotype(f"malformed nb101 cell {text!r}: vertex {v} needs 'op:inputs'")
            try:
                inputs = [int(s) for s in sources.split(",")]
            except ValueError:
                raise InvalidGenotype(f"malformed nb101 cell {text!r}: inputs of vertex {v} are not numbers") from None
            if any(not 0 <= u < v for u in inputs):
                raise InvalidGenotype(f"malformed nb101 cell {text!r}: vertex {v} takes inputs from 0..{v - 1} only")
            matrix[inputs, v] = 1
            ops.append(op)
        return self.from_cell(matrix, ops)

    def key(self, genotype: nx.DiGraph) -> str:
        return module_hash(*self.cell(genotype))

    # dataset facts -------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return NUM_CLASSES

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, INPUT_SIDE, INPUT_SIDE)

    # operators ----------------------------------------------------------------------------------
    def _first_valid(self, propose, what: str) -> nx.DiGraph:
        for _ in range(MAX_TRIES):
            matrix, ops = propose()
            try:
                return self.from_cell(matrix, ops)
            except InvalidGenotype:
                continue
        raise InvalidGenotype(f"nb101: no valid {what} found in {MAX_TRIES} tries")  # pragma: no cover

    def sample(self, rng: random.Random) -> nx.DiGraph:
        """With ``sampling=specs``: each of the 21 possible edges of a 7-vertex cell with probability 1/2, each op
        uniformly, until the pruned cell is valid: uniform over valid 7-vertex specifications (NAS-Bench-101's own
        random sampling), which favours cells with few vertices. With ``sampling=cells``: uniform over the
        benchmark's 423624 cells (their trained representatives), read from the table."""
        if self.options["sampling"] == "cells":
            table = self._table()
            return self.from_cell(*table.cell(rng.randrange(len(table))))

        def propose():
            matrix = np.triu(np.array([[rng.random() < 0.5 for _ in range(MAX_VERTICES)]
                                       for _ in range(MAX_VERTICES)], dtype=np.int8), k=1)
            return matrix, [INPUT, *(rng.choice(OPS) for _ in range(MAX_VERTICES - 2)), OUTPUT]

        return self._first_valid(propose, "sample")

    def mutate(self, genotype: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """One change: an interior vertex's operation, one edge flipped (vertices left off every input -> output
        path are pruned), or one new vertex on a new path u -> w -> v; retried until the result is a valid cell
        with another hash."""
        matrix, ops = self.cell(genotype)
        original = module_hash(matrix, ops)
        n = len(ops)

        def propose():
            moves = ["edge"] + (["op"] if n > 2 else []) + (["vertex"] if n < MAX_VERTICES else [])
            move = rng.choice(moves)
            new_matrix, new_ops = matrix.copy(), list(ops)
            if move == "op":
                v = rng.randrange(1, n - 1)
                new_ops[v] = rng.choice([op for op in OPS if op != ops[v]])
            elif move == "edge":
                u = rng.randrange(n - 1)
                v = rng.randrange(u + 1, n)
                new_matrix[u, v] ^= 1
            else:
                w = rng.randrange(1, n)  # the new vertex goes before the current vertex w
                new_matrix = np.insert(np.insert(new_matrix, w, 0, axis=0), w, 0, axis=1)
                new_ops.insert(w, rng.choice(OPS))
                new_matrix[rng.randrange(w), w] = 1
                new_matrix[w, rng.randrange(w + 1, n + 1)] = 1
            return new_matrix, new_ops

        for _ in range(MAX_TRIES):
            child = self._first_valid(propose, "mutation")
            if self.key(child) != original:
                return child
        raise InvalidGenotype("nb101: no mutation changes this cell")  # pragma: no cover

    def crossover(self, first: nx.DiGraph, second: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """Uniform crossover of the two cells padded to 7 vertices: each of the 21 edge genes and 5 operation
        genes from either parent; retried until the pruned child is valid (else a copy of a parent)."""
        parents = [_padded(*self.cell(first)), _padded(*self.cell(second))]

        def propose():
            matrix = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
            for u in range(MAX_VERTICES):
                for v in range(u + 1, MAX_VERTICES):
                    matrix[u, v] = rng.choice(parents)[0][u, v]
            ops = [INPUT, *(rng.choice(parents)[1][v] for v in range(1, MAX_VERTICES - 1)), OUTPUT]
            return matrix, ops

        try:
            return self._first_valid(propose, "crossover")
        except InvalidGenotype:  # pragma: no cover - parents are valid, so some choice of genes is
            return rng.choice([first, second])

    # costs and networks --------------------------------------------------------------------------
    def cost(self, genotype: nx.DiGraph) -> Cost:
        """The benchmark's parameter count of this cell's network, and its FLOPs (nasx's convention)."""
        params, flops = params_and_flops(*self.cell(genotype))
        return Cost(flops_m=flops / 1e6, params_m=params / 1e6)

    def build(self, genotype: nx.DiGraph):
        from nasx_nb101.network import build_network

        return build_network(*self.cell(genotype))

    def skip_edges(self, genotype: nx.DiGraph) -> list[tuple[int, int]]:
        """Edges that jump over at least one vertex (u -> v with v > u + 1), as FreeREA counts skips."""
        return [(u, v) for u, v in sorted(genotype.edges) if v > u + 1]

    def _table(self):
        from nasx.data import resolve_data_dir
        from nasx_nb101.oracle import TABLE_NAME, load_table

        path = resolve_data_dir(required=True) / TABLE_NAME
        if not path.is_file():
            raise NasxError(f"nb101 sampling=cells needs {path}")
        return load_table(path)

    # ground truth ------------------------------------------------------------------------------
    def oracle(self, data_dir):
        from nasx_nb101.oracle import find_nb101_oracle

        return find_nb101_oracle(self, data_dir)


def _padded(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]]:
    """A cell as 7 vertices: interior vertices keep their positions, unused ones (no edges) precede the output."""
    n = len(ops)
    padded = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    position = list(range(n - 1)) + [MAX_VERTICES - 1]
    padded[np.ix_(position, position)] = matrix
    padded_ops = ops[:-1] + [OPS[0]] * (MAX_VERTICES - n) + [OUTPUT]
    return padded, padded_ops
