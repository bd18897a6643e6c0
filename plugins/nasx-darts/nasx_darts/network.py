"""The DARTS CIFAR evaluation network (``NetworkCIFAR`` of quark0/darts ``cnn/model.py`` with the operations of
``cnn/operations.py``), written anew with the same layers in the same order, so parameter counts are DARTS's.

Stem: 3x3 conv to 3C channels + BN. Then ``layers`` cells; cells layers//3 and 2*layers//3 are reduction cells
that double the channels and halve the side. A cell first maps its two inputs to C channels (1x1 ReLU-Conv-BN, or
a factorized reduction when the previous cell reduced), applies its operations (stride 2 on the inputs of a
reduction cell), and concatenates its four nodes (4C channels). Global average pooling and a linear classifier
follow. Optional: DARTS's auxiliary head after cell 2*layers//3, and drop path on every operation but identities.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from nasx_darts.genotype import CELLS, CONCAT, NODES, Cell, Genes
from nasx_darts.space import STEM_MULTIPLIER, reduction_cells


def relu_conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """DARTS's ReLUConvBN with a 1x1 kernel (the cells' preprocessing)."""
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """Halves the side with two stride-2 1x1 convolutions, the second shifted by one pixel, each giving half the
    output channels (DARTS's FactorizedReduce; the side must be even)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def separable_conv(channels: int, kernel: int, stride: int) -> nn.Sequential:
    """DARTS's SepConv: (ReLU, depthwise kxk, pointwise 1x1, BN) twice, the first depthwise with the stride."""
    padding = kernel // 2
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, kernel, stride=stride, padding=padding, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, kernel, padding=padding, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
    )


def dilated_conv(channels: int, kernel: int, stride: int) -> nn.Sequential:
    """DARTS's DilConv: ReLU, depthwise kxk with dilation 2, pointwise 1x1, BN."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, kernel, stride=stride, padding=kernel - 1, dilation=2, groups=channels,
                  bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
    )


def make_op(op: str, channels: int, stride: int) -> nn.Module:
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)
    if op.startswith("sep_conv_"):
        return separable_conv(channels, int(op[-1]), stride)
    if op.startswith("dil_conv_"):
        return dilated_conv(channels, int(op[-1]), stride)
    raise ValueError(f"unknown operation {op!r}")


def drop_path(x: torch.Tensor, probability: float) -> torch.Tensor:
    """Zero whole samples with the given probability and scale the others by 1 / (1 - probability)."""
    keep = 1.0 - probability
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class DartsCell(nn.Module):
    def __init__(self, cell: Cell, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(c_prev_prev, channels) if reduction_prev
                            else relu_conv_bn(c_prev_prev, channels))
        self.preprocess1 = relu_conv_bn(c_prev, channels)
        ops, sources = [], []
        for pairs in cell:
            for source, op in pairs:
                ops.append(make_op(op, channels, 2 if reduction and source < 2 else 1))
                sources.append(source)
        self.ops = nn.ModuleList(ops)
        self.sources = sources
        # DARTS drops every path but identities (stride-1 skip connections)
        self.droppable = [not isinstance(module, nn.Identity) for module in ops]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_probability: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(NODES)):
            total = None
            for slot in (2 * node, 2 * node + 1):
                value = self.ops[slot](states[self.sources[slot]])
                if self.training and drop_probability > 0 and self.droppable[slot]:
                    value = drop_path(value, drop_probability)
                total = value if total is None else total + value
            states.append(total)
        return torch.cat([states[node] for node in CONCAT], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's AuxiliaryHeadCIFAR: on the 8x8 output of cell 2*layers//3, pooled to 2x2 (its first ReLU is not
    in place here, which changes no value: every consumer of that output starts with a ReLU)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(nn.Module):
    """``forward`` gives the logits. For training as DARTS does: ``forward_with_auxiliary`` also gives the
    auxiliary head's logits (in training mode, with ``auxiliary``), and ``drop_path_probability`` (DARTS raises it
    linearly from 0 over the epochs) applies in training mode."""

    def __init__(self, genes: Genes, channels: int, layers: int, num_classes: int, auxiliary: bool = False,
                 drop_path_probability: float = 0.0) -> None:
        super().__init__()
        stem_channels = STEM_MULTIPLIER * channels
        self.stem = nn.Sequential(nn.Conv2d(3, stem_channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(stem_channels))
        cell_of = dict(zip(CELLS, genes))
        c_prev_prev, c_prev, c_current = stem_channels, stem_channels, channels
        reductions = reduction_cells(layers)
        self.auxiliary_after = reductions[1]
        cells, reduction_prev, auxiliary_channels = [], False, 0
        for index in range(layers):
            reduction = index in reductions
            if reduction:
                c_current *= 2
            cells.append(DartsCell(cell_of["reduce" if reduction else "normal"], c_prev_prev, c_prev, c_current,
                                   reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, len(CONCAT) * c_current
            if index == self.auxiliary_after:
                auxiliary_channels = c_prev
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = AuxiliaryHead(auxiliary_channels, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.drop_path_probability = float(drop_path_probability)

    def forward_with_auxiliary(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits, auxiliary logits); the latter is None without an auxiliary head or in evaluation mode."""
        return self._run(x, auxiliary=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, auxiliary=False)[0]

    def _run(self, x: torch.Tensor, auxiliary: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        auxiliary_logits = None
        s0 = s1 = self.stem(x)
        for index, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_probability)
            if auxiliary and index == self.auxiliary_after and self.auxiliary_head is not None and self.training:
                auxiliary_logits = self.auxiliary_head(s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1)), auxiliary_logits
