"""The DARTS cell space (``darts``): a normal and a reduction cell, each of 4 nodes that add two operations on two
distinct earlier states, 7 operations; about 1.1e18 genotypes. No ground truth (no benchmark covers it here).

Two networks per genotype, both DARTS's CIFAR network (nasx_darts.network):

- the evaluation network (options ``channels`` = 36, ``layers`` = 20, as DARTS trains its final cells): what
  ``cost`` counts (parameters and FLOPs as the DARTS papers count them, without the auxiliary head) and what
  ``build_for_training`` gives (``nasx export``), with DARTS's auxiliary head (``auxiliary``) and drop path
  (``drop_path``) when asked for;
- the proxies' network (``proxy_channels`` = 16, ``proxy_layers`` = 8: the size of DARTS's own search network,
  about 12x fewer FLOPs): what ``build`` gives, so every proxy scores it. Set them to the evaluation network's
  values to score that network instead.
"""

from __future__ import annotations

import itertools
import random
from typing import ClassVar

import networkx as nx

from nasx.errors import InvalidGenotype, NasxError
from nasx.interfaces import Cost, EvolvableSpace, Task
from nasx.options import Check, positive
from nasx_darts.genotype import (CELLS, CONCAT, NODES, OPS, Genes, check_cell, format_genes, genes_to_graph,
                                 graph_to_genes, node_genes, parse_genes)

#: classes per dataset; every dataset has 32x32 RGB images
DATASETS = {"cifar10": 10, "cifar100": 100}
INPUT_SIDE = 32
#: the sides of the maps DARTS's CIFAR auxiliary head reads (pooled 5/3 to 2x2, then a 2x2 convolution to 1x1)
AUXILIARY_SIDES = (8, 10)
STEM_MULTIPLIER = 3
VERSION = "1"  # bump when the networks or the genotype encoding change

#: proxies not defined on DARTS networks -> why (a phrase, as ``proxy_problem`` gives it)
_NOT_A_CHAIN = "it measures a stem and a chain of blocks, and each DARTS cell reads the two cells before it"
UNDEFINED_PROXIES = {name: _NOT_A_CHAIN for name in ("az_expressivity", "az_progressivity", "az_trainability")}

at_least_three = Check(lambda value: value >= 3, "an integer of at least 3 (the network has two reduction cells)")
below_one = Check(lambda value: 0 <= value < 1, "at least 0 and below 1")


class DartsSpace(EvolvableSpace):
    name = "darts"
    summary = "DARTS cells (normal + reduction, 4 nodes of 2 inputs, 7 ops); DARTS's CIFAR network, no ground truth"
    datasets: ClassVar[tuple[str, ...]] = tuple(DATASETS)
    default_dataset = "cifar10"
    version = VERSION
    cost_is_exact = False  # cost() counts the evaluation network; build() is the proxies' smaller one
    benchmarked = False  # no ground truth can be had for DARTS cells here
    defaults = {"channels": 36, "layers": 20, "auxiliary": False, "drop_path": 0.0, "proxy_channels": 16,
                "proxy_layers": 8}
    option_checks = {"channels": positive, "layers": at_least_three, "drop_path": below_one,
                     "proxy_channels": positive, "proxy_layers": at_least_three}
    # own data: the two reduction cells halve the side with factorized reductions, which need even sides
    adapts_to_data = True
    min_resolution = 4
    resolution_multiple = 4

    def __init__(self, dataset: str | None = None, **options) -> None:
        super().__init__(dataset, **options)
        options = self.options
        # Cached scores are keyed by the space's version, not its options: the sizes that change scores (the proxies'
        # network, and the evaluation network that the params and flops proxies read) are part of it.
        self.version = (f"{VERSION}:{options['channels']}x{options['layers']}:"
                        f"{options['proxy_channels']}x{options['proxy_layers']}")
        self.cost_is_exact = (options["proxy_channels"], options["proxy_layers"]) == (options["channels"],
                                                                                     options["layers"])

    # genotype <-> genes <-> text ------------------------------------------------------------------
    @staticmethod
    def genes(genotype: nx.DiGraph) -> Genes:
        return graph_to_genes(genotype)

    @staticmethod
    def from_genes(genes: Genes) -> nx.DiGraph:
        return genes_to_graph(genes)

    def encode(self, genotype: nx.DiGraph) -> str:
        return format_genes(self.genes(genotype))

    def decode(self, text: str) -> nx.DiGraph:
        return self.from_genes(parse_genes(text))

    # categorical encoding: per cell and node, the pair of states it reads and the op on each ------------
    def categorical(self) -> list[tuple[str, tuple[str, ...]]]:
        """Three genes per node of each cell: ``normal_node3_inputs`` (the two distinct states it reads, e.g.
        ``"0,2"``; node 2 reads 0 and 1), ``normal_node3_op_low`` and ``normal_node3_op_high`` (the operations on
        the lower and on the higher of the two). Every combination is a valid genotype and each genotype has one."""
        genes = []
        for cell in CELLS:
            for node in NODES:
                pairs = tuple(f"{a},{b}" for a, b in itertools.combinations(range(node), 2))
                genes += [(f"{cell}_node{node}_inputs", pairs), (f"{cell}_node{node}_op_low", OPS),
                          (f"{cell}_node{node}_op_high", OPS)]
        return genes

    def to_categorical(self, genotype: nx.DiGraph) -> dict[str, str]:
        values = {}
        for cell_name, cell in zip(CELLS, self.genes(genotype)):
            for node, ((low, op_low), (high, op_high)) in zip(NODES, cell):  # a node's pairs are by input
                values[f"{cell_name}_node{node}_inputs"] = f"{low},{high}"
                values[f"{cell_name}_node{node}_op_low"] = op_low
                values[f"{cell_name}_node{node}_op_high"] = op_high
        return values

    def from_categorical(self, values) -> nx.DiGraph:
        cells = []
        for cell_name in CELLS:
            nodes = []
            for node in NODES:
                prefix = f"{cell_name}_node{node}"
                try:
                    low, high = (int(part) for part in str(values[f"{prefix}_inputs"]).split(","))
                    pairs = ((low, values[f"{prefix}_op_low"]), (high, values[f"{prefix}_op_high"]))
                except (KeyError, ValueError):
                    raise InvalidGenotype(f"darts genes lack or misstate {prefix}'s inputs and ops") from None
                nodes.append(node_genes(pairs))
            check_cell(cell_name, tuple(nodes))
            cells.append(tuple(nodes))
        return self.from_genes((cells[0], cells[1]))

    # dataset facts (the task's, for own data) ---------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.task.num_classes if self.task is not None else DATASETS[self.dataset]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.task.input_shape if self.task is not None else (3, INPUT_SIDE, INPUT_SIDE)

    def for_data(self, task: Task) -> "DartsSpace":
        """Also checks that DARTS's auxiliary head (``auxiliary``), made for CIFAR's 8x8 maps, fits the images."""
        adapted = super().for_data(task)
        if self.options["auxiliary"]:
            height, width = task.input_shape[1:]
            if not all(AUXILIARY_SIDES[0] <= side // 4 <= AUXILIARY_SIDES[1] for side in (height, width)):
                raise NasxError(f"-o darts.auxiliary=true: DARTS's auxiliary head reads maps of "
                                f"{AUXILIARY_SIDES[0]} to {AUXILIARY_SIDES[1]} pixels a side (images of "
                                f"{4 * AUXILIARY_SIDES[0]} to {4 * AUXILIARY_SIDES[1]}), not those of {height}x{width} "
                                "images; leave it off or use --resolution 32")
        return adapted

    def proxy_problem(self, proxy) -> str | None:
        return UNDEFINED_PROXIES.get(proxy.name)

    # operators ----------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> nx.DiGraph:
        """Each node of each cell reads two distinct states drawn uniformly from its earlier ones, each through an
        operation drawn uniformly (with replacement): uniform over the space. This is the random sampling of
        Li & Talwalkar's random search (liamcli/randomNAS_release, ``sample_arch``) and of NAS-Bench-301, and DARTS
        derives its cells with two distinct inputs per node."""
        cells = []
        for _ in CELLS:
            cells.append(tuple(node_genes(zip(rng.sample(range(node), 2), (rng.choice(OPS), rng.choice(OPS))))
                               for node in NODES))
        return self.from_genes((cells[0], cells[1]))

    def mutate(self, genotype: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """One operation of one cell changes: either its op (to another op) or the state it reads (to another
        state that its node does not read yet; node 2 has no other). Every other operation stays."""
        cells = [list(map(list, cell)) for cell in self.genes(genotype)]
        cell = rng.randrange(len(CELLS))
        position = rng.randrange(len(NODES))
        node = NODES[position]
        pairs = cells[cell][position]
        slot = rng.randrange(2)
        source, op = pairs[slot]
        free_sources = [s for s in range(node) if s not in (pairs[0][0], pairs[1][0])]
        if free_sources and rng.random() < 0.5:
            pairs[slot] = (rng.choice(free_sources), op)
        else:
            pairs[slot] = (source, rng.choice([other for other in OPS if other != op]))
        cells[cell][position] = node_genes(pairs)
        return self.from_genes(tuple(tuple(cell_nodes) for cell_nodes in cells))

    def crossover(self, first: nx.DiGraph, second: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """Uniform crossover of whole nodes: each node of each cell (its two operations and inputs) comes from
        either parent, so the child is always valid."""
        parents = (self.genes(first), self.genes(second))
        return self.from_genes(tuple(
            tuple(rng.choice(parents)[cell][position] for position in range(len(NODES)))
            for cell in range(len(CELLS))))

    # costs and networks --------------------------------------------------------------------------
    def cost(self, genotype: nx.DiGraph) -> Cost:
        """Parameters and FLOPs of the evaluation network (``channels``, ``layers``) without the auxiliary head,
        computed analytically: every parameter that DARTS's ``count_parameters_in_MB`` counts (it leaves out the
        names containing "auxiliary"); FLOPs are the multiply-adds of convolutions
        (k*k*Cin/groups*Cout*Hout*Wout) and of the classifier (in*out + out), as for NATS-Bench; pooling, BatchNorm
        and additions are not counted."""
        params, flops = network_cost(self.genes(genotype), self.options["channels"], self.options["layers"],
                                     self.num_classes, self.input_shape[1:])
        return Cost(flops_m=flops / 1e6, params_m=params / 1e6)

    def build(self, genotype: nx.DiGraph):
        """The proxies' network: ``proxy_channels`` and ``proxy_layers``, no auxiliary head, no drop path."""
        from nasx_darts.network import DartsNetwork

        return DartsNetwork(self.genes(genotype), self.options["proxy_channels"], self.options["proxy_layers"],
                            self.num_classes)

    def build_for_training(self, genotype: nx.DiGraph):
        """The evaluation network, as DARTS trains it: ``channels``, ``layers``, the auxiliary head with
        ``auxiliary`` (its logits come from ``forward_with_auxiliary``) and drop path ``drop_path``."""
        from nasx_darts.network import DartsNetwork

        return DartsNetwork(self.genes(genotype), self.options["channels"], self.options["layers"],
                            self.num_classes, auxiliary=self.options["auxiliary"],
                            drop_path_probability=self.options["drop_path"])

    def skip_edges(self, genotype: nx.DiGraph) -> list[tuple[int, int]]:
        """The skip connections that are identities, as (state, node) with states numbered 0, 1 (the cell's
        inputs), 2..5 (its nodes): every skip_connect of the normal cell, and those of the reduction cell that
        read a node (one that reads a cell input is a strided factorized reduction, a convolution)."""
        edges = []
        for cell_name, cell in zip(CELLS, self.genes(genotype)):
            for node, pairs in zip(NODES, cell):
                edges.extend((source, node) for source, op in pairs
                             if op == "skip_connect" and (cell_name == "normal" or source >= 2))
        return edges

    # ground truth ------------------------------------------------------------------------------
    def oracle(self, data_dir):
        """None: no trained results of this space are available (NDS's DARTS table cannot be obtained here)."""
        return None


def reduction_cells(layers: int) -> tuple[int, int]:
    """Indices of the network's two reduction cells (DARTS: layers // 3 and 2 * layers // 3)."""
    return layers // 3, 2 * layers // 3


def op_cost(op: str, channels: int, stride: int) -> tuple[int, int]:
    """(parameters, FLOPs per output position) of one operation on ``channels`` channels."""
    if op.startswith("sep_conv_"):
        kernel = int(op[-1])
        # two rounds of depthwise kxk + pointwise 1x1 + BatchNorm (weight and bias)
        return 2 * (kernel * kernel * channels + channels * channels + 2 * channels), \
            2 * (kernel * kernel * channels + channels * channels)
    if op.startswith("dil_conv_"):
        kernel = int(op[-1])
        return kernel * kernel * channels + channels * channels + 2 * channels, \
            kernel * kernel * channels + channels * channels
    if op == "skip_connect" and stride == 2:  # factorized reduction: two 1x1 convs to half the channels each, BN
        return channels * channels + 2 * channels, channels * channels
    return 0, 0  # identity, poolings


def network_cost(genes: Genes, channels: int, layers: int, num_classes: int,
                 shape: tuple[int, int] = (INPUT_SIDE, INPUT_SIDE)) -> tuple[int, int]:
    """(parameters, FLOPs) of the DARTS CIFAR network without its auxiliary head (see ``DartsSpace.cost``) for
    inputs of ``shape`` = (height, width)."""
    cell_of = dict(zip(CELLS, genes))
    stem = STEM_MULTIPLIER * channels
    height, width = shape
    params = 3 * 9 * stem + 2 * stem
    flops = 3 * 9 * stem * height * width
    c_prev_prev, c_prev, current = stem, stem, channels
    reductions = reduction_cells(layers)
    for index in range(layers):
        reduction = index in reductions
        if reduction:
            current *= 2
        # both preprocessings give `current` channels at the side of the previous cell's output (a factorized
        # reduction of a twice larger input costs what a 1x1 convolution of this side costs)
        for c_in in (c_prev_prev, c_prev):
            params += c_in * current + 2 * current
            flops += c_in * current * height * width
        out_height, out_width = (height // 2, width // 2) if reduction else (height, width)
        for node, pairs in zip(NODES, cell_of["reduce" if reduction else "normal"]):
            for source, op in pairs:
                op_params, op_flops = op_cost(op, current, 2 if reduction and source < 2 else 1)
                params += op_params
                flops += op_flops * out_height * out_width
        c_prev_prev, c_prev, height, width = c_prev, len(CONCAT) * current, out_height, out_width
    params += c_prev * num_classes + num_classes
    flops += c_prev * num_classes + num_classes
    return params, flops
