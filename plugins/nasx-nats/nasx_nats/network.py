"""Torch networks of the NATS-Bench spaces, with the same layers in the same order as NATS-Bench's own: stem, cells
joined by residual reduction blocks, BN + ReLU, global pooling, linear. The topology space varies the cell, the size
space the channels of each of its five blocks."""

from __future__ import annotations

import torch
from torch import nn

from nasx_nats.tss import EDGES, NUM_NODES


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


def make_op(op: str, c_in: int, c_out: int) -> nn.Module | None:
    """The module of one edge; None for 'none' (whose output, zero, adds nothing to a node's sum).

    When the channels change (edges leaving a size-space cell's input), a skip becomes NATS-Bench's stride-1
    factorized reduction (1x1 conv + BN) and a pooling is preceded by a 1x1 ReLU-Conv-BN.
    """
    if op == "none":
        return None
    if op == "skip_connect":
        if c_in == c_out:
            return nn.Identity()
        return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
    if op == "nor_conv_1x1":
        return relu_conv_bn(c_in, c_out, 1)
    if op == "nor_conv_3x3":
        return relu_conv_bn(c_in, c_out, 3)
    if op == "avg_pool_3x3":
        pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        return pool if c_in == c_out else nn.Sequential(relu_conv_bn(c_in, c_out, 1), pool)
    raise ValueError(f"unknown operation {op!r}")


class Cell(nn.Module):
    """Node v is the sum of op(u -> v)(node u) over u < v; the cell's output is the last node. Edges from the
    input map c_in to c_out channels, the others keep c_out."""

    def __init__(self, genes: tuple[str, ...], c_in: int, c_out: int | None = None) -> None:
        super().__init__()
        c_out = c_in if c_out is None else c_out
        self.c_out = c_out
        self.edges = nn.ModuleDict()
        for (u, v), op in zip(EDGES, genes):
            module = make_op(op, c_in if u == 0 else c_out, c_out)
            if module is not None:
                self.edges[f"{u}_{v}"] = module
        self.inputs = [
            [(u, f"{u}_{v}") for (u, w) in EDGES if w == v and f"{u}_{v}" in self.edges] for v in range(NUM_NODES)
        ]
        # Off by default (every operation runs, as in NATS-Bench). A proxy may switch it on for one computation:
        # see dead_operations.
        self.skip_dead_operations = False
        self._observed = self._observed_nodes()

    def _observed_nodes(self) -> list[bool]:
        """Per node: whether its value is read by something that matters — the cell's output, or a ReLU (whose
        activations proxies observe through hooks) — directly or through later nodes."""
        observed = [False] * NUM_NODES
        observed[-1] = True
        for u in range(NUM_NODES - 2, -1, -1):
            observed[u] = any(
                observed[v] or leading_relu(self.edges[name]) is not None
                for v in range(u + 1, NUM_NODES)
                for w, name in self.inputs[v]
                if w == u
            )
        return observed

    def dead_operations(self) -> list[str]:
        """Names of the operations whose result never reaches the cell's output nor any ReLU: they feed a node
        that nothing observed reads (in NB201, a node whose outgoing edges are all 'none', or lead only to such
        nodes through skips and poolings). With ``skip_dead_operations`` on, forward runs only their leading ReLU
        (if any), so hooks on every ReLU see the same activations; the output, its gradient with respect to every
        other parameter, and every activation that is observed stay exactly the same, and their own layers (and
        BatchNorm running statistics) are left untouched."""
        return [name for v in range(1, NUM_NODES) if not self._observed[v] for _, name in self.inputs[v]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for v in range(1, NUM_NODES):
            if self.skip_dead_operations and not self._observed[v]:
                for u, name in self.inputs[v]:
                    relu = leading_relu(self.edges[name])
                    if relu is not None:
                        relu(nodes[u])
                nodes.append(None)  # never read: every operation reading it is dead too
                continue
            terms = [self.edges[name](nodes[u]) for u, name in self.inputs[v]]
            if terms:
                nodes.append(sum(terms[1:], terms[0]))
            else:
                nodes.append(x.new_zeros((x.shape[0], self.c_out, *x.shape[2:])))
        return nodes[-1]


def leading_relu(module: nn.Module) -> nn.ReLU | None:
    """The ReLU an operation starts with (relu_conv_bn, or a pooling preceded by one), else None."""
    while isinstance(module, nn.Sequential) and len(module):
        module = module[0]
    return module if isinstance(module, nn.ReLU) else None


class ResidualReduction(nn.Module):
    """Stride-2 residual block between stages: two 3x3 ReLU-Conv-BN, shortcut AvgPool(2) + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, stride=2)
        self.conv_b = relu_conv_bn(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class TopologyNetwork(nn.Module):
    def __init__(self, genes: tuple[str, ...], stage_channels, cells_per_stage: int, num_classes: int) -> None:
        super().__init__()
        first = stage_channels[0]
        self.stem = nn.Sequential(nn.Conv2d(3, first, 3, padding=1, bias=False), nn.BatchNorm2d(first))
        layers: list[nn.Module] = []
        previous = first
        for stage, channels in enumerate(stage_channels):
            if stage:
                layers.append(ResidualReduction(previous, channels))
            layers.extend(Cell(genes, channels) for _ in range(cells_per_stage))
            previous = channels
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(previous), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(features), 1))


class SizeNetwork(nn.Module):
    """The size space's network: stem, cell, reduction, cell, reduction, cell, with channels[i] in block i."""

    def __init__(self, genes: tuple[str, ...], channels: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0]))
        layers: list[nn.Module] = []
        previous = channels[0]
        for block, width in enumerate(channels):
            layers.append(ResidualReduction(previous, width) if block % 2 else Cell(genes, previous, width))
            previous = width
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(previous), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(features), 1))
