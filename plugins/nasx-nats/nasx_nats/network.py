"""Torch networks of the NATS-Bench spaces, with the same layers in the same order as NATS-Bench's own: stem, cells
joined by residual reduction blocks, BN + ReLU, global pooling, linear. The topology space varies the cell, the size
space the channels of each of its five blocks.

One network may hold K models side by side (horizontal fusion, as HFTA and Packed-Ensembles run several models as
one; see :mod:`nasx.fusion`): each activation holds the K models' channels one block after another, convolutions are
grouped (``groups = K``), BatchNorm runs over all K blocks (each model keeps its own statistics), the stem reads the
shared input once, and the classifier is a grouped 1x1 convolution. Where the models chose different operations on
an edge, each operation runs on the channels of the models that chose it (gathered), and its result is added to
theirs. Models of different widths (the size space) are padded to the widest: their extra channels hold zeros. With
K = 1 every module is exactly NATS-Bench's.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from nasx.fusion import Layout
from nasx.torch_utils import join_blocks
from nasx_nats.tss import EDGES, NUM_NODES

#: operations that start with a ReLU (so a proxy's hooks observe the node they read)
RELU_FIRST = ("nor_conv_1x1", "nor_conv_3x3")


def conv(c_in: int, c_out: int, kernel: int, stride: int = 1, models: int = 1) -> nn.Conv2d:
    """A convolution of ``models`` models side by side (c_in and c_out channels each)."""
    return nn.Conv2d(models * c_in, models * c_out, kernel, stride=stride, padding=kernel // 2, bias=False,
                     groups=models)


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, models: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        conv(c_in, c_out, kernel, stride, models),
        nn.BatchNorm2d(models * c_out),
    )


def make_op(op: str, c_in: int, c_out: int, models: int = 1, same_width: bool | None = None) -> nn.Module | None:
    """The module of one edge for ``models`` models; None for 'none' (whose output, zero, adds nothing to a node's
    sum).

    When the channels change (edges leaving a size-space cell's input: ``same_width`` False), a skip becomes
    NATS-Bench's stride-1 factorized reduction (1x1 conv + BN) and a pooling is preceded by a 1x1 ReLU-Conv-BN. A
    skip between padded widths that differ (models whose own widths agree) takes the first channels of each block.
    """
    same_width = c_in == c_out if same_width is None else same_width
    if op == "none":
        return None
    if op == "skip_connect":
        if same_width:
            return nn.Identity() if c_in == c_out else Repad(c_in, c_out, models)
        return nn.Sequential(conv(c_in, c_out, 1, models=models), nn.BatchNorm2d(models * c_out))
    if op == "nor_conv_1x1":
        return relu_conv_bn(c_in, c_out, 1, models=models)
    if op == "nor_conv_3x3":
        return relu_conv_bn(c_in, c_out, 3, models=models)
    if op == "avg_pool_3x3":
        pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        return pool if same_width else nn.Sequential(relu_conv_bn(c_in, c_out, 1, models=models), pool)
    raise ValueError(f"unknown operation {op!r}")


def starts_with_relu(op: str, same_width: bool) -> bool:
    return op in RELU_FIRST or (op == "avg_pool_3x3" and not same_width)


class Repad(nn.Module):
    """Blocks of ``c_in`` channels cut or zero-padded to ``c_out``: a skip of models whose own widths fit both."""

    def __init__(self, c_in: int, c_out: int, models: int) -> None:
        super().__init__()
        self.c_in, self.c_out, self.models = c_in, c_out, models

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = min(self.c_in, self.c_out)
        blocks = x.new_zeros((x.shape[0], self.models, self.c_out, *x.shape[2:]))
        blocks[:, :, :kept] = x.unflatten(1, (self.models, self.c_in))[:, :, :kept]
        return blocks.flatten(1, 2).contiguous(memory_format=memory_format(x))


def memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last for a 4-d tensor laid out so (and not also contiguous), else contiguous_format."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _by_model(x: torch.Tensor, block: int) -> tuple[torch.Tensor, int]:
    """A view of x (N, models * block, H, W) with the models in a dimension of their own, and that dimension: after
    the spatial ones in the channels-last layout, so that each model's block stays contiguous in memory."""
    if memory_format(x) is torch.channels_last:
        return x.permute(0, 2, 3, 1).unflatten(3, (-1, block)), 3
    return x.unflatten(1, (-1, block)), 1


def select_models(x: torch.Tensor, models: torch.Tensor, block: int) -> torch.Tensor:
    """The blocks of ``block`` channels of the given models (positions) of x, in their order and x's layout."""
    blocks, dim = _by_model(x, block)
    chosen = blocks.index_select(dim, models).flatten(dim, dim + 1)
    return chosen.permute(0, 3, 1, 2) if dim == 3 else chosen


def add_to_models(total: torch.Tensor, models: torch.Tensor, block: int, term: torch.Tensor) -> None:
    """Add term's blocks to those of the given models (positions) of total, in place."""
    blocks, dim = _by_model(total, block)
    terms = term.permute(0, 2, 3, 1).unflatten(3, (-1, block)) if dim == 3 else term.unflatten(1, (-1, block))
    blocks.index_add_(dim, models, terms)


def record_blocks(module: nn.Module, models: Sequence[int], widths_in: Sequence[int],
                  widths_out: Sequence[int]) -> None:
    """Note on each convolution of ``module`` (which maps widths_in to widths_out channels, per model) the shape
    of its weight in each model's own network: one block per model, in order (see ``_Network.blocks``)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            layer.blocks = [(k, (w_out, w_in, *layer.kernel_size))
                            for k, w_in, w_out in zip(models, widths_in, widths_out)]


def per_model(value, models: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * models


class Group:
    """The models (positions) that run one operation on one edge, whether the node it feeds is observed for them
    (``Cell.dead_operations``), and whether they are all the models (then nothing is gathered)."""

    def __init__(self, key: str, u: int, v: int, op: str, models: tuple[int, ...], total: int, observed: bool) -> None:
        self.key, self.u, self.v, self.op, self.models, self.observed = key, u, v, op, models, observed
        self.every_model = models == tuple(range(total))


class Cell(nn.Module):
    """Node v is the sum of op(u -> v)(node u) over u < v; the cell's output is the last node. Edges from the
    input map c_in to c_out channels, the others keep c_out.

    ``genes``: the operations (one per edge), or a list of them, one per model, for K models side by side; ``c_in``
    and ``c_out``: the channels, or one count per model (the block of each is the widest).
    """

    def __init__(self, genes, c_in, c_out=None) -> None:
        super().__init__()
        models = [tuple(genes)] if isinstance(genes[0], str) else [tuple(g) for g in genes]
        self.models = count = len(models)
        widths_in = per_model(c_in, count)
        widths_out = widths_in if c_out is None else per_model(c_out, count)
        self.c_in, self.c_out = max(widths_in), max(widths_out)
        same_width = [a == b for a, b in zip(widths_in, widths_out)]

        def variant(k: int, u: int, op: str) -> str:
            """The operation of model k on an edge leaving node u, with the channel change it makes."""
            return op if u or same_width[k] or op not in ("skip_connect", "avg_pool_3x3") else f"{op}_resized"

        # Per model and node: whether its value is read by something that matters — the cell's output, or a ReLU
        # (whose activations proxies observe through hooks) — directly or through later nodes.
        observed_by_model: list[list[bool]] = []
        for k, genes_k in enumerate(models):
            observed = [False] * NUM_NODES
            observed[-1] = True
            for u in range(NUM_NODES - 2, -1, -1):
                observed[u] = any(
                    op != "none" and (observed[v] or starts_with_relu(op, u > 0 or same_width[k]))
                    for (w, v), op in zip(EDGES, genes_k) if w == u)
            observed_by_model.append(observed)

        self.edges = nn.ModuleDict()
        self.groups: list[Group] = []
        for position, (u, v) in enumerate(EDGES):
            kinds: dict[tuple[str, bool], list[int]] = {}
            for k, genes_k in enumerate(models):
                if genes_k[position] != "none":
                    kinds.setdefault((variant(k, u, genes_k[position]), observed_by_model[k][v]), []).append(k)
            for (kind, observed), members in kinds.items():
                alone = len(kinds) == 1 and len(members) == count
                key = f"{u}_{v}" if alone else f"{u}_{v}_{kind}" + ("" if observed else "_unobserved")
                op = kind.removesuffix("_resized")
                c_from = self.c_in if u == 0 else self.c_out
                self.edges[key] = make_op(op, c_from, self.c_out, len(members),
                                          same_width=u > 0 or not kind.endswith("_resized"))
                widths = widths_in if u == 0 else widths_out
                record_blocks(self.edges[key], members, [widths[k] for k in members], [widths_out[k] for k in members])
                group = Group(key, u, v, op, tuple(members), count, observed)
                self.groups.append(group)
                if not group.every_model:  # a buffer, so that it follows the network to its device
                    self.register_buffer(f"models_{key}", torch.tensor(members), persistent=False)
                relu = leading_relu(self.edges[key])
                if relu is not None:
                    relu.layout = Layout(group.models, c_from, tuple(widths[k] for k in members), (id(self), u))
        self.inputs = [[g for g in self.groups if g.v == v] for v in range(NUM_NODES)]
        # Off by default (every operation runs, as in NATS-Bench). A proxy may switch it on for one computation:
        # see dead_operations.
        self.skip_dead_operations = False
        self._observed = [any(o[v] for o in observed_by_model) for v in range(NUM_NODES)]

    def _gather(self, node: torch.Tensor, group: Group) -> torch.Tensor:
        """The channels of the group's models (in its order) of a node that holds every model's."""
        if group.every_model:
            return node
        return select_models(node, self.get_buffer(f"models_{group.key}"), self.c_in if group.u == 0 else self.c_out)

    def dead_operations(self) -> list[str]:
        """Names of the operations whose result never reaches the cell's output nor any ReLU: they feed a node
        that nothing observed reads (in NB201, a node whose outgoing edges are all 'none', or lead only to such
        nodes through skips and poolings). With ``skip_dead_operations`` on, forward runs only their leading ReLU
        (if any), so hooks on every ReLU see the same activations; the output, its gradient with respect to every
        other parameter, and every activation that is observed stay exactly the same, and their own layers (and
        BatchNorm running statistics) are left untouched."""
        return [g.key for g in self.groups if not g.observed]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for v in range(1, NUM_NODES):
            node, owned = None, False
            for group in self.inputs[v]:
                operation = self.edges[group.key]
                if self.skip_dead_operations and not group.observed:
                    relu = leading_relu(operation)
                    if relu is not None:
                        relu(self._gather(nodes[group.u], group))
                    continue
                term = operation(self._gather(nodes[group.u], group))
                if group.every_model:
                    node, owned = (term, False) if node is None else (node + term, True)
                    continue
                if node is None:
                    shape = (term.shape[0], self.models * self.c_out, *term.shape[2:])
                    node = torch.empty(shape, dtype=term.dtype, device=term.device,
                                       memory_format=memory_format(term)).zero_()
                elif not owned:
                    node = node.clone()
                owned = True
                add_to_models(node, self.get_buffer(f"models_{group.key}"), self.c_out, term)
            if node is None and not (self.skip_dead_operations and not self._observed[v]):
                node = x.new_zeros((x.shape[0], self.models * self.c_out, *x.shape[2:]))
            nodes.append(node)  # None only for a node nothing observed reads (every operation reading it is dead)
        return nodes[-1]


def leading_relu(module: nn.Module) -> nn.ReLU | None:
    """The ReLU an operation starts with (relu_conv_bn, or a pooling preceded by one), else None."""
    while isinstance(module, nn.Sequential) and len(module):
        module = module[0]
    return module if isinstance(module, nn.ReLU) else None


class ResidualReduction(nn.Module):
    """Stride-2 residual block between stages: two 3x3 ReLU-Conv-BN, shortcut AvgPool(2) + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, models: int = 1) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, stride=2, models=models)
        self.conv_b = relu_conv_bn(c_out, c_out, 3, models=models)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), conv(c_in, c_out, 1, models=models))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class _Network(nn.Module):
    """What the two spaces' networks share: stem, blocks, head and classifier, for one or K models."""

    def _build(self, blocks: Sequence[tuple], widths: Sequence[Sequence[int]], num_classes: int) -> None:
        """``blocks``: (kind, argument) per block, 'cell' with the models' genes or 'reduction'; ``widths``: per
        block, each model's channels (the stem has block 0's)."""
        count = len(widths[0])
        self.models = count
        padded = [max(w) for w in widths]
        # The input is the same for every model: the stem reads it once and writes each model's channels.
        self.stem = nn.Sequential(nn.Conv2d(3, count * padded[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(count * padded[0]))
        every = range(count)
        record_blocks(self.stem, every, (3,) * count, widths[0])
        layers: list[nn.Module] = []
        previous = widths[0]
        for (kind, genes), width in zip(blocks, widths):
            if kind == "reduction":
                reduction = ResidualReduction(max(previous), max(width), count)
                for part, (c_in, c_out) in ((reduction.conv_a, (previous, width)), (reduction.conv_b, (width, width)),
                                            (reduction.shortcut, (previous, width))):
                    record_blocks(part, every, c_in, c_out)
                self._lay_out(reduction.conv_a[0], previous)
                self._lay_out(reduction.conv_b[0], width)
                layers.append(reduction)
            else:
                layers.append(Cell(genes, list(previous), list(width)))
            previous = width
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(count * max(previous)), nn.ReLU(inplace=True))
        self._lay_out(self.head[1], previous)
        self.pool = nn.AdaptiveAvgPool2d(1)
        if count == 1:
            self.classifier = nn.Linear(previous[0], num_classes)
        else:  # a grouped 1x1 convolution is K linear layers side by side (Packed-Ensembles' linear layer)
            self.classifier = nn.Conv2d(count * max(previous), count * num_classes, 1, groups=count)
        self.classifier.blocks = [(k, (num_classes, previous[k])) for k in every]
        #: builds the models' own networks (set by the space's build_fused); see ``networks``
        self.make_networks: Callable[[], list[nn.Module]] | None = None
        self._networks: list[nn.Module] | None = None

    def _lay_out(self, relu: nn.ReLU, widths: Sequence[int]) -> None:
        relu.layout = Layout(tuple(range(self.models)), max(widths), tuple(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.head(self.cells(self.stem(x))))
        if isinstance(self.classifier, nn.Linear):
            return self.classifier(torch.flatten(features, 1))
        return torch.flatten(self.classifier(features), 1)

    # fusion (nasx.fusion) ------------------------------------------------------------------------------
    @property
    def networks(self) -> list[nn.Module]:
        """The models' own networks, as the space builds them (built on first use, on the CPU)."""
        if self._networks is None:
            if self.make_networks is None:
                raise RuntimeError("this network was not built by a space's build_fused: it holds no models")
            self._networks = self.make_networks()
        return self._networks

    def blocks(self, module: nn.Module) -> list[tuple[int, tuple[int, ...]]] | None:
        """For a convolution or linear layer: (model, shape of the weight in the model's own network) of each block
        of its weight's first dimension, in order; None for other modules."""
        return module.__dict__.get("blocks")

    def layout(self, module: nn.Module) -> Layout | None:
        """How the output channels of a ReLU, or of a layer with weights (its weight's first dimension), are split
        among the models (see :class:`nasx.fusion.Layout`); None for other modules."""
        if "layout" in module.__dict__:
            return module.__dict__["layout"]
        blocks = self.blocks(module)
        if blocks is None:
            return None
        return Layout(tuple(k for k, _ in blocks), module.weight.shape[0] // len(blocks),
                      tuple(shape[0] for _, shape in blocks))

    def load_networks(self) -> None:
        """Copy the weights and statistics of ``networks`` into this one: each tensor is its models' tensors,
        zero-padded to the block, one after another."""
        states = [dict(n.state_dict(keep_vars=True)) for n in self.networks]
        own = self.state_dict(keep_vars=True)
        with torch.no_grad():
            for name, sources in self._sources().items():
                tensor = own[name]
                if tensor.dim() == 0:  # num_batches_tracked: the same count in every model
                    tensor.copy_(states[sources[0][0]][sources[0][1]])
                    continue
                tensor.copy_(join_blocks([states[k][single] for k, single in sources], tensor.shape))

    def _sources(self) -> dict[str, list[tuple[int, str]]]:
        """Per weight or buffer of this network: (model, name in the model's own network) of each of its blocks."""
        if getattr(self, "_source_names", None) is None:
            sources: dict[str, list[tuple[int, str]]] = {}
            for name in self.state_dict():
                parts = name.split(".")
                if parts[0] == "cells" and parts[2] == "edges":
                    cell = self.cells[int(parts[1])]
                    group = next(g for g in cell.groups if g.key == parts[3])
                    single = ".".join([*parts[:3], f"{group.u}_{group.v}", *parts[4:]])
                    sources[name] = [(k, single) for k in group.models]
                else:
                    sources[name] = [(k, name) for k in range(self.models)]
            self._source_names = sources
        return self._source_names


class TopologyNetwork(_Network):
    """``genes``: the cell's operations, one per edge, or a list of them, one per model."""

    def __init__(self, genes, stage_channels, cells_per_stage: int, num_classes: int) -> None:
        super().__init__()
        count = 1 if isinstance(genes[0], str) else len(genes)
        blocks, widths = [], []
        for stage, channels in enumerate(stage_channels):
            if stage:
                blocks.append(("reduction", None))
                widths.append((channels,) * count)
            blocks.extend([("cell", genes)] * cells_per_stage)
            widths.extend([(channels,) * count] * cells_per_stage)
        self._build(blocks, widths, num_classes)


class SizeNetwork(_Network):
    """The size space's network: stem, cell, reduction, cell, reduction, cell, with channels[i] in block i;
    ``channels``: five counts, or a list of them, one per model."""

    def __init__(self, genes: tuple[str, ...], channels, num_classes: int) -> None:
        super().__init__()
        models = [tuple(channels)] if isinstance(channels[0], int) else [tuple(c) for c in channels]
        blocks = [("reduction", None) if block % 2 else ("cell", [genes] * len(models))
                  for block in range(len(models[0]))]
        self._build(blocks, list(zip(*models)), num_classes)
