"""The NATS-Bench topology space (TSS, = NAS-Bench-201): a 4-node cell with one operation on each of 6 edges.

Genotype: a frozen DiGraph with nodes 0..3 and all six edges u -> v (u < v), each with an ``op`` attribute.
Canonical string: the NB201 arch string, e.g. ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|``.
"""

from __future__ import annotations

import itertools
import random
from functools import cached_property
from typing import ClassVar

import networkx as nx

from nasx.errors import InvalidGenotype
from nasx.genotype import frozen
from nasx.interfaces import Cost, EnumerableSpace, EvolvableSpace, SquareImages

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edge order of the arch string and of the genes: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
OP_POSITIONS = {op: position for position, op in enumerate(OPS)}
NUM_NODES = 4
# Channels of the three stages, cells per stage, and the classifier's classes and input side per dataset.
STAGE_CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}
# Seed of the shuffle that fixes the official index order (NAS-Bench-201 / NATS-Bench generation script).
INDEX_SHUFFLE_SEED = 88


def dead_edges(genotype: nx.DiGraph) -> list[tuple[int, int]]:
    """Edges with an operation (not 'none') that lie on no input -> output path of operations: their result
    never reaches the cell's output, or their input never depends on the cell's input."""
    live = nx.DiGraph()
    live.add_nodes_from((0, NUM_NODES - 1))
    live.add_edges_from((u, v) for u, v, op in genotype.edges(data="op") if op != "none")
    fed = nx.descendants(live, 0) | {0}
    feeding = nx.ancestors(live, NUM_NODES - 1) | {NUM_NODES - 1}
    return sorted((u, v) for u, v in live.edges if not (u in fed and v in feeding))


def edge_gene(source: int, target: int) -> str:
    """The name of an edge's gene in the categorical encoding, as the arch string writes the edge."""
    return f"edge_{target}<-{source}"


def genes_to_arch(genes: tuple[str, ...]) -> str:
    parts, position = [], 0
    for node in range(1, NUM_NODES):
        parts.append("|" + "|".join(f"{genes[position + i]}~{i}" for i in range(node)) + "|")
        position += node
    return "+".join(parts)


def arch_to_genes(text: str) -> tuple[str, ...]:
    if not isinstance(text, str):
        raise InvalidGenotype(f"an arch string is text, got {type(text).__name__}")
    levels = text.strip().split("+")
    if len(levels) != NUM_NODES - 1:
        raise InvalidGenotype(f"malformed NB201 arch string {text!r}: expected {NUM_NODES - 1} '+'-separated nodes")
    genes = []
    for node, level in enumerate(levels, start=1):
        if not (level.startswith("|") and level.endswith("|")) or len(level) < 2:
            raise InvalidGenotype(f"malformed NB201 arch string {text!r}: node {node} must be written |op~i|...|")
        entries = level[1:-1].split("|")
        if len(entries) != node:
            raise InvalidGenotype(f"malformed NB201 arch string {text!r}: node {node} needs {node} inputs")
        for source, entry in enumerate(entries):
            op, sep, index = entry.partition("~")
            if not sep or index != str(source):
                raise InvalidGenotype(f"malformed NB201 arch string {text!r}: expected '{op}~{source}'")
            if op not in OPS:
                raise InvalidGenotype(f"unknown operation {op!r} in {text!r}; operations: {', '.join(OPS)}")
            genes.append(op)
    return tuple(genes)


class NatsTopologySpace(SquareImages, EvolvableSpace, EnumerableSpace):
    name = "nats-tss"
    summary = "NATS-Bench topology space (NAS-Bench-201): 15625 cells, 5 ops on 6 edges"
    datasets: ClassVar[tuple[str, ...]] = tuple(DATASETS)
    image_datasets = DATASETS
    default_dataset = "cifar10"
    version = "1"  # bump when the networks or the genotype encoding change
    cost_is_exact = True  # cost() counts every parameter of build()
    fusable = True  # build_fused: several architectures in one network
    defaults = {"benchmark_dir": ""}
    # own data: the two stride-2 reduction blocks need sides divisible by 4 (their pooled shortcut rounds down)
    adapts_to_data = True
    min_resolution = 4
    resolution_multiple = 4
    subsets: ClassVar[dict[str, str]] = {
        # GRAF's NB201 features cover these cells, and the VKDNW paper's NB201 table is measured on them
        "no-dead-edges": "the 9445 cells in which every operation lies on an input -> output path",
    }

    # genotype <-> genes -------------------------------------------------------------------------
    @staticmethod
    def genes(genotype: nx.DiGraph) -> tuple[str, ...]:
        try:
            return tuple(genotype.edges[u, v]["op"] for u, v in EDGES)
        except (KeyError, AttributeError) as exc:
            raise InvalidGenotype(f"not a nats-tss genotype: missing edge or op ({exc})") from None

    @staticmethod
    def from_genes(genes: tuple[str, ...]) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(range(NUM_NODES))
        for (u, v), op in zip(EDGES, genes, strict=True):
            graph.add_edge(u, v, op=op)
        return frozen(graph)

    def encode(self, genotype: nx.DiGraph) -> str:
        return genes_to_arch(self.genes(genotype))

    def decode(self, text: str) -> nx.DiGraph:
        return self.from_genes(arch_to_genes(text))

    # categorical encoding: one gene per edge, its operation ------------------------------------------
    def categorical(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(edge_gene(u, v), OPS) for u, v in EDGES]

    def to_categorical(self, genotype: nx.DiGraph) -> dict[str, str]:
        return {edge_gene(u, v): op for (u, v), op in zip(EDGES, self.genes(genotype))}

    def from_categorical(self, values) -> nx.DiGraph:
        genes = tuple(values.get(edge_gene(u, v)) for u, v in EDGES)
        if any(op not in OPS for op in genes):
            raise InvalidGenotype(f"nats-tss genes need one of {', '.join(OPS)} on each edge, got {dict(values)}")
        return self.from_genes(genes)

    # operators ----------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> nx.DiGraph:
        return self.from_genes(tuple(rng.choice(OPS) for _ in EDGES))

    def mutate(self, genotype: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        genes = list(self.genes(genotype))
        position = rng.randrange(len(genes))
        genes[position] = rng.choice([op for op in OPS if op != genes[position]])
        return self.from_genes(tuple(genes))

    def crossover(self, first: nx.DiGraph, second: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        pairs = zip(self.genes(first), self.genes(second))
        return self.from_genes(tuple(a if rng.random() < 0.5 else b for a, b in pairs))

    # enumeration in the official order ------------------------------------------------------------
    @cached_property
    def _order(self) -> list[int]:
        """The official order, as positions in the product order of the genes (the first edge's operation varies
        slowest): the generation script shuffles the arch strings, and a shuffle depends only on the length, so
        the same shuffle of their positions gives the same order without writing 15,625 strings."""
        order = list(range(len(self)))
        random.Random(INDEX_SHUFFLE_SEED).shuffle(order)
        return order

    @cached_property
    def _index_at_position(self) -> list[int]:
        indices = [0] * len(self)
        for index, position in enumerate(self._order):
            indices[position] = index
        return indices

    @cached_property
    def _archs(self) -> list[str]:
        products = list(itertools.product(OPS, repeat=len(EDGES)))
        return [genes_to_arch(products[position]) for position in self._order]

    def __len__(self) -> int:
        return len(OPS) ** len(EDGES)

    def genotype_at(self, index: int) -> nx.DiGraph:
        if not 0 <= index < len(self):
            raise InvalidGenotype(f"nats-tss index {index} is outside 0..{len(self) - 1}")
        return self.decode(self._archs[index])

    def index_of(self, genotype: nx.DiGraph) -> int:
        position = 0
        for op in self.genes(genotype):
            position = position * len(OPS) + OP_POSITIONS[op]
        return self._index_at_position[position]

    # costs (the NATS definitions) ---------------------------------------------------------------
    def cost(self, genotype: nx.DiGraph) -> Cost:
        """Parameters and FLOPs as NATS-Bench reports them, computed analytically.

        Parameters count conv weights and BatchNorm affine weights; FLOPs count only convolutions
        (k*k*Cin*Cout*Hout*Wout) and the classifier (in*out + out), as NATS does.
        """
        genes = self.genes(genotype)
        n1x1 = genes.count("nor_conv_1x1")
        n3x3 = genes.count("nor_conv_3x3")
        classes, (_, height, width) = self.num_classes, self.input_shape
        c0 = STAGE_CHANNELS[0]
        params = 3 * 9 * c0 + 2 * c0  # stem conv + BN
        flops = 3 * 9 * c0 * height * width
        previous = c0
        for stage, channels in enumerate(STAGE_CHANNELS):
            if stage:  # residual reduction block: two 3x3 ReLU-Conv-BN (first strided) and a 1x1 shortcut
                height, width = height // 2, width // 2
                params += 9 * previous * channels + 2 * channels + 9 * channels * channels + 2 * channels
                params += previous * channels
                flops += (9 * previous * channels + 9 * channels * channels + previous * channels) * height * width
            cell_params = n1x1 * (channels * channels + 2 * channels) + n3x3 * (9 * channels * channels + 2 * channels)
            cell_flops = (n1x1 + 9 * n3x3) * channels * channels * height * width
            params += CELLS_PER_STAGE * cell_params
            flops += CELLS_PER_STAGE * cell_flops
            previous = channels
        params += 2 * previous + previous * classes + classes  # last BN, classifier
        flops += previous * classes + classes
        return Cost(flops_m=flops / 1e6, params_m=params / 1e6)

    # networks --------------------------------------------------------------------------------
    def build(self, genotype: nx.DiGraph):
        from nasx_nats.network import TopologyNetwork

        return TopologyNetwork(self.genes(genotype), STAGE_CHANNELS, CELLS_PER_STAGE, self.num_classes)

    def build_fused(self, genotypes):
        """The genotypes' networks side by side (:mod:`nasx.fusion`): cells whose edges run each operation on the
        models that chose it."""
        from nasx_nats.network import TopologyNetwork

        network = TopologyNetwork([self.genes(g) for g in genotypes], STAGE_CHANNELS, CELLS_PER_STAGE,
                                  self.num_classes)
        network.make_networks = lambda: [self.build(g) for g in genotypes]
        return network

    def skip_edges(self, genotype: nx.DiGraph) -> list[tuple[int, int]]:
        return [(u, v) for u, v in EDGES if genotype.edges[u, v]["op"] == "skip_connect"]

    def in_subset(self, subset: str, genotype: nx.DiGraph) -> bool:
        if subset == "no-dead-edges":
            return not dead_edges(genotype)
        return super().in_subset(subset, genotype)

    # ground truth ------------------------------------------------------------------------------
    def oracle(self, data_dir):
        from nasx_nats.oracle import find_tss_oracle

        return find_tss_oracle(self, data_dir, self.options["benchmark_dir"] or None)
