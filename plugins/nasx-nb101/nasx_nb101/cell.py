"""NAS-Bench-101 cells without torch: pruning, validity, the benchmark's module hash, channels and costs.

A cell is an upper-triangular adjacency matrix over vertices 0..n-1 (0 = input, n-1 = output) and one
operation per vertex. These functions follow the definitions of the NAS-Bench-101 paper and its graph_util /
model_spec / model_builder modules, so that hashes and parameter counts equal the benchmark's.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

INPUT, OUTPUT = "input", "output"
# The benchmark's operations in its canonical order; a vertex's hash label is its position here.
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9
# Network of the benchmark: stem channels, stacks of modules, CIFAR-10 input and classes.
STEM_CHANNELS = 128
NUM_STACKS = 3
MODULES_PER_STACK = 3
INPUT_SIDE = 32
NUM_CLASSES = 10

Matrix = np.ndarray


def prune(matrix: Matrix, ops: Sequence[str]) -> tuple[Matrix, list[str]] | None:
    """Drop the vertices that are not on an input -> output path; None when input does not reach output."""
    matrix = np.asarray(matrix, dtype=np.int8)
    n = len(ops)
    from_input = _reachable(matrix, 0, forward=True)
    to_output = _reachable(matrix, n - 1, forward=False)
    keep = sorted(from_input & to_output)
    if 0 not in keep or n - 1 not in keep:
        return None
    return matrix[np.ix_(keep, keep)].copy(), [ops[v] for v in keep]


def _reachable(matrix: Matrix, start: int, forward: bool) -> set[int]:
    seen, stack = {start}, [start]
    while stack:
        vertex = stack.pop()
        neighbours = np.flatnonzero(matrix[vertex] if forward else matrix[:, vertex])
        for other in neighbours.tolist():
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


def problem(matrix: Matrix, ops: Sequence[str]) -> str | None:
    """Why a pruned cell is not in NAS-Bench-101, or None when it is."""
    n = len(ops)
    if matrix.shape != (n, n):
        return f"adjacency is {matrix.shape[0]}x{matrix.shape[1]} for {n} operations"
    if n < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        return "the first vertex must be 'input' and the last 'output'"
    bad = [op for op in ops[1:-1] if op not in OPS]
    if bad:
        return f"unknown operation {bad[0]!r} (operations: {', '.join(OPS)})"
    if np.any(np.tril(matrix)):
        return "edges must go from a lower to a higher vertex"
    if n > MAX_VERTICES:
        return f"{n} vertices after pruning (at most {MAX_VERTICES})"
    edges = int(matrix.sum())
    if edges > MAX_EDGES:
        return f"{edges} edges after pruning (at most {MAX_EDGES})"
    return None


def labels(ops: Sequence[str]) -> list[int]:
    """The hash labels of the benchmark: input -1, output -2, interior ops by their position in OPS."""
    return [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def module_hash(matrix: Matrix, ops: Sequence[str]) -> str:
    """NAS-Bench-101's isomorphism-invariant module hash (32 hex digits) of a pruned cell.

    Each vertex starts from the md5 of (out-degree, in-degree, label); then, once per vertex, every vertex's hash
    becomes the md5 of its sorted in-neighbour hashes, its sorted out-neighbour hashes and its own hash. The module
    hash is the md5 of the sorted final vertex hashes. The exact string forms matter: they are the benchmark's.
    """
    matrix = np.asarray(matrix)
    n = len(ops)
    in_degree = matrix.sum(axis=0).tolist()
    out_degree = matrix.sum(axis=1).tolist()
    hashes = [_md5(str((out_degree[v], in_degree[v], label))) for v, label in enumerate(labels(ops))]
    sources = [np.flatnonzero(matrix[:, v]).tolist() for v in range(n)]
    targets = [np.flatnonzero(matrix[v]).tolist() for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5("".join(sorted(hashes[w] for w in sources[v])) + "|"
                 + "".join(sorted(hashes[w] for w in targets[v])) + "|" + hashes[v])
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def vertex_channels(in_channels: int, out_channels: int, matrix: Matrix) -> list[int]:
    """Output channels of every vertex of a module (the benchmark's rule).

    The output's channels are split evenly among the vertices that feed it (the first ones get one extra channel
    when the split is uneven); every other interior vertex gets the largest channel count among its successors.
    """
    n = matrix.shape[0]
    channels = [0] * n
    channels[0], channels[n - 1] = in_channels, out_channels
    if n == 2:
        return channels
    feeding_output = int(matrix[1:, n - 1].sum())
    share, extra = divmod(out_channels, feeding_output)
    for v in range(1, n - 1):
        if matrix[v, n - 1]:
            channels[v] = share + (1 if extra > 0 else 0)
            extra -= 1
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            channels[v] = max((channels[w] for w in range(v + 1, n - 1) if matrix[v, w]), default=0)
    return channels


def params_and_flops(matrix: Matrix, ops: Sequence[str]) -> tuple[int, int]:
    """Trainable parameters (the benchmark's count) and FLOPs of the whole network.

    Parameters: conv weights (no biases), BatchNorm scale and shift, the dense layer's weights and biases.
    FLOPs: multiply-accumulates of every convolution (k*k*Cin*Cout*H*W) plus the dense layer (in*out + out), as
    nasx counts them for NATS-Bench; max-pooling, additions and BatchNorm are free.
    """
    n = len(ops)
    params = 9 * 3 * STEM_CHANNELS + 2 * STEM_CHANNELS
    side = INPUT_SIDE
    flops = 9 * 3 * STEM_CHANNELS * side * side
    in_channels = out_channels = STEM_CHANNELS
    for stack in range(NUM_STACKS):
        if stack:
            side //= 2  # 2x2 max-pooling between stacks
            out_channels *= 2
        for _ in range(MODULES_PER_STACK):
            channels = vertex_channels(in_channels, out_channels, matrix)
            module_params = module_flops = 0
            for v in range(1, n):
                if matrix[0, v]:  # the input reaches a vertex through a 1x1 projection (conv-bn-relu)
                    module_params += in_channels * channels[v] + 2 * channels[v]
                    module_flops += in_channels * channels[v]
            for v in range(1, n - 1):
                kernel = {"conv3x3-bn-relu": 9, "conv1x1-bn-relu": 1}.get(ops[v], 0)
                if kernel:
                    module_params += kernel * channels[v] * channels[v] + 2 * channels[v]
                    module_flops += kernel * channels[v] * channels[v]
            params += module_params
            flops += module_flops * side * side
            in_channels = out_channels
    params += out_channels * NUM_CLASSES + NUM_CLASSES
    flops += out_channels * NUM_CLASSES + NUM_CLASSES
    return params, flops
