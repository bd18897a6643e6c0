"""DARTS genotypes: their text form, their genes and their graph (no torch here).

A DARTS cell has two inputs, 0 (the output of the cell before the previous one) and 1 (the previous cell's output),
and four nodes 2..5; node i adds the results of two operations, each applied to a distinct earlier state 0..i-1. The
cell's output concatenates nodes 2..5. A genotype has a normal cell and a reduction cell.

Text form (the ``repr`` of the DARTS code's ``Genotype`` namedtuple), e.g.::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=range(2, 6),
             reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ...], reduce_concat=range(2, 6))

with the two (operation, input) pairs of node 2, then of node 3, and so on. The canonical string lists each node's
pairs by increasing input and writes ``range(2, 6)``; parsing also accepts ``[2, 3, 4, 5]``, lists for tuples, either
quote, any spacing and positional fields. Text is parsed with ``ast``, never evaluated.
"""

from __future__ import annotations

import ast

import networkx as nx

from nasx.errors import InvalidGenotype
from nasx.genotype import frozen

#: DARTS's candidate operations without 'none' (which the final DARTS cells never contain).
OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
       "dil_conv_5x5")
CELLS = ("normal", "reduce")
#: the intermediate nodes; states 0 and 1 are the cell's inputs
NODES = (2, 3, 4, 5)
#: the nodes whose outputs the cell concatenates
CONCAT = (2, 3, 4, 5)
FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
FORM = ("expected Genotype(normal=[(op, input), ...], normal_concat=range(2, 6), reduce=[(op, input), ...], "
        "reduce_concat=range(2, 6))")

#: one node: its two (input, op) pairs, by increasing input
Node = tuple[tuple[int, str], tuple[int, str]]
#: one cell: its four nodes; a genotype's genes are (normal cell, reduction cell)
Cell = tuple[Node, Node, Node, Node]
Genes = tuple[Cell, Cell]


def node_genes(pairs) -> Node:
    """The canonical node of two (input, op) pairs: sorted by input (the node adds them, so order is immaterial)."""
    first, second = sorted((int(source), str(op)) for source, op in pairs)
    return first, second


def check_cell(cell_name: str, cell: Cell) -> None:
    """InvalidGenotype unless every node reads two distinct earlier states through known operations."""
    if len(cell) != len(NODES):
        raise InvalidGenotype(f"darts {cell_name} cell needs {len(NODES)} nodes, got {len(cell)}")
    for node, pairs in zip(NODES, cell):
        for source, op in pairs:
            if op not in OPS:
                raise InvalidGenotype(f"unknown operation {op!r} in the darts {cell_name} cell; "
                                      f"operations: {', '.join(OPS)}")
            if not 0 <= source < node:
                raise InvalidGenotype(f"darts {cell_name} cell: node {node} reads state {source}; node {node} "
                                      f"reads states 0..{node - 1} (0 and 1 are the cell's inputs)")
        if pairs[0][0] == pairs[1][0]:
            raise InvalidGenotype(f"darts {cell_name} cell: node {node} reads state {pairs[0][0]} twice; each node "
                                  "reads two distinct states")


# ---------------------------------------------------------------------------------------------------------------
# text


def format_genes(genes: Genes) -> str:
    """The canonical string of a genotype."""
    parts = []
    for cell_name, cell in zip(CELLS, genes):
        pairs = ", ".join(f"({op!r}, {source})" for pairs_of_node in cell for source, op in pairs_of_node)
        parts.append(f"{cell_name}=[{pairs}], {cell_name}_concat=range({CONCAT[0]}, {CONCAT[-1] + 1})")
    return f"Genotype({', '.join(parts)})"


def parse_genes(text: str) -> Genes:
    """Genes of a genotype's text form; InvalidGenotype (one line) for anything else."""
    if not isinstance(text, str):
        raise InvalidGenotype(f"a darts genotype is text, got {type(text).__name__}")
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise InvalidGenotype(f"malformed darts genotype {_shortened(text)}: {FORM}") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise InvalidGenotype(f"malformed darts genotype {_shortened(text)}: {FORM}")
    if len(call.args) > len(FIELDS):
        raise InvalidGenotype(f"malformed darts genotype: Genotype takes {len(FIELDS)} fields, got {len(call.args)}")
    fields = dict(zip(FIELDS, call.args))
    for keyword in call.keywords:
        if keyword.arg not in FIELDS:
            raise InvalidGenotype(f"malformed darts genotype: unknown field {keyword.arg!r}; fields: "
                                  f"{', '.join(FIELDS)}")
        if keyword.arg in fields:
            raise InvalidGenotype(f"malformed darts genotype: field {keyword.arg!r} is given twice")
        fields[keyword.arg] = keyword.value
    missing = [name for name in FIELDS if name not in fields]
    if missing:
        raise InvalidGenotype(f"malformed darts genotype: field {missing[0]!r} is missing; {FORM}")
    cells = []
    for cell_name in CELLS:
        _check_concat(cell_name, fields[f"{cell_name}_concat"])
        pairs = _pairs(cell_name, fields[cell_name])
        cell = tuple(node_genes(((source, op) for op, source in pairs[2 * i:2 * i + 2])) for i in range(len(NODES)))
        check_cell(cell_name, cell)
        cells.append(cell)
    return cells[0], cells[1]


def _pairs(cell_name: str, value: ast.expr) -> list[tuple[str, int]]:
    """The (op, input) pairs of a cell's list."""
    expected = 2 * len(NODES)
    if not isinstance(value, (ast.List, ast.Tuple)):
        raise InvalidGenotype(f"darts {cell_name} cell must be a list of (op, input) pairs")
    if len(value.elts) != expected:
        raise InvalidGenotype(f"darts {cell_name} cell needs {expected} (op, input) pairs (2 for each of "
                              f"{len(NODES)} nodes), got {len(value.elts)}")
    pairs = []
    for element in value.elts:
        items = element.elts if isinstance(element, (ast.List, ast.Tuple)) else []
        op = _constant(items[0], str) if len(items) == 2 else None
        source = _constant(items[1], int) if len(items) == 2 else None
        if op is None or source is None:
            raise InvalidGenotype(f"darts {cell_name} cell: every entry must be an (op, input) pair such as "
                                  "('sep_conv_3x3', 0)")
        pairs.append((op, source))
    return pairs


def _check_concat(cell_name: str, value: ast.expr) -> None:
    concat = None
    if isinstance(value, (ast.List, ast.Tuple)):
        concat = [_constant(item, int) for item in value.elts]
    elif (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "range"
          and not value.keywords and len(value.args) == 2):
        low, high = (_constant(item, int) for item in value.args)
        if low is not None and high is not None:
            concat = list(range(low, high))
    if concat != list(CONCAT):
        raise InvalidGenotype(f"darts {cell_name}_concat must be range(2, 6) or [2, 3, 4, 5]: the darts space's "
                              "cells concatenate all four nodes")


def _constant(node: ast.expr, kind: type):
    """The value of a literal of type ``kind`` (a bool is not an int here), else None."""
    if isinstance(node, ast.Constant) and type(node.value) is kind:
        return node.value
    return None


def _shortened(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# ---------------------------------------------------------------------------------------------------------------
# graph


def genes_to_graph(genes: Genes) -> nx.DiGraph:
    """The frozen genotype graph: nodes (cell, state) for states 0..5 of both cells, and one edge
    (cell, input) -> (cell, node) with its ``op`` for each operation."""
    graph = nx.DiGraph()
    for cell_name, cell in zip(CELLS, genes):
        graph.add_nodes_from((cell_name, state) for state in range(NODES[-1] + 1))
        for node, pairs in zip(NODES, cell):
            for source, op in pairs:
                graph.add_edge((cell_name, source), (cell_name, node), op=op)
    return frozen(graph)


def graph_to_genes(graph: nx.DiGraph) -> Genes:
    """Genes of a genotype graph; InvalidGenotype when the graph is not a darts genotype."""
    expected_nodes = {(cell_name, state) for cell_name in CELLS for state in range(NODES[-1] + 1)}
    try:
        if set(graph.nodes) != expected_nodes:
            raise InvalidGenotype("not a darts genotype: nodes must be (cell, state) for states 0..5 of both cells")
        cells = []
        for cell_name in CELLS:
            nodes = []
            for node in NODES:
                edges = list(graph.in_edges((cell_name, node), data=True))
                if any(source[0] != cell_name for source, _, _ in edges):
                    raise InvalidGenotype(f"not a darts genotype: an edge from the other cell reaches {cell_name} "
                                          f"node {node}")
                incoming = [(source[1], data["op"]) for source, _, data in edges]
                if len(incoming) != 2:
                    raise InvalidGenotype(f"not a darts genotype: {cell_name} node {node} has {len(incoming)} "
                                          "inputs, not 2")
                nodes.append(node_genes(incoming))
            cell = tuple(nodes)
            check_cell(cell_name, cell)
            cells.append(cell)
        if graph.number_of_edges() != 2 * len(NODES) * len(CELLS):
            raise InvalidGenotype("not a darts genotype: an edge ends at a cell's input state")
    except (KeyError, AttributeError, TypeError) as exc:
        raise InvalidGenotype(f"not a darts genotype ({type(exc).__name__}: {exc})") from None
    return cells[0], cells[1]
