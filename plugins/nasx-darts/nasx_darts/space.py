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

import random
from typing import ClassVar

import networkx as nx

from nasx.interfaces import Cost, EvolvableSpace
from nasx.options import Check, positive
from nasx_darts.genotype import (CELLS, CONCAT, NODES, OPS, Genes, format_genes, genes_to_graph, graph_to_genes,
                                 node_genes, parse_genes)

#: classes per dataset; every dataset has 32x32 RGB images
DATASETS = {"cifar10": 10, "cifar100": 100}
INPUT_SIDE = 32
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

    # dataset facts -------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return DATASETS[self.dataset]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, INPUT_SIDE, INPUT_SIDE)

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
                                     self.num_classes)
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


def auxiliary_head_params(channels: int, num_classes: int) -> int:
    """Parameters of DARTS's CIFAR auxiliary head (1x1 conv to 128, BN, 2x2 conv to 768, BN, linear)."""
    return channels * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768 + 768 * num_classes + num_classes


def network_cost(genes: Genes, channels: int, layers: int, num_classes: int,
                 side: int = INPUT_SIDE) -> tuple[int, int]:
    """(parameters, FLOPs) of the DARTS CIFAR network without its auxiliary head (see ``DartsSpace.cost``)."""
    cell_of = dict(zip(CELLS, genes))
    stem = STEM_MULTIPLIER * channels
    params = 3 * 9 * stem + 2 * stem
    flops = 3 * 9 * stem * side * side
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
            flops += c_in * current * side * side
        out_side = side // 2 if reduction else side
        for node, pairs in zip(NODES, cell_of["reduce" if reduction else "normal"]):
            for source, op in pairs:
                op_params, op_flops = op_cost(op, current, 2 if reduction and source < 2 else 1)
                params += op_params
                flops += op_flops * out_side * out_side
        c_prev_prev, c_prev, side = c_prev, len(CONCAT) * current, out_side
    params += c_prev * num_classes + num_classes
    flops += c_prev * num_classes + num_classes
    return params, flops
