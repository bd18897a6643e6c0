"""The NATS-Bench size space (SSS): one fixed cell, five blocks whose channel counts are searched.

Genotype: a frozen DiGraph chain 0 -> 1 -> 2 -> 3 -> 4 (stem side to classifier side), each node with a
``channels`` attribute from 8, 16, ..., 64. Canonical string: the NATS-Bench form ``8:16:24:32:64``.
Blocks 0, 2 and 4 are cells, blocks 1 and 3 residual reduction blocks; the stem has block 0's channels.
"""

from __future__ import annotations

import random
from typing import ClassVar

import networkx as nx

from nasx.errors import InvalidGenotype
from nasx.genotype import frozen
from nasx.interfaces import Cost, EnumerableSpace, EvolvableSpace, SquareImages
from nasx_nats.tss import DATASETS, EDGES, arch_to_genes

CHANNELS = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_BLOCKS = 5
# The cell every size-space network uses (NATS-Bench's choice: the best cell of its topology space's sizes).
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


class NatsSizeSpace(SquareImages, EvolvableSpace, EnumerableSpace):
    name = "nats-sss"
    summary = "NATS-Bench size space: 32768 channel configurations (8..64) of 5 blocks around a fixed cell"
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

    # genotype <-> channels ----------------------------------------------------------------------
    @staticmethod
    def channels(genotype: nx.DiGraph) -> tuple[int, ...]:
        try:
            return tuple(int(genotype.nodes[block]["channels"]) for block in range(NUM_BLOCKS))
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise InvalidGenotype(f"not a nats-sss genotype: blocks 0..4 need 'channels' ({exc})") from None

    @staticmethod
    def from_channels(channels) -> nx.DiGraph:
        channels = tuple(channels)
        if len(channels) != NUM_BLOCKS or any(c not in CHANNELS for c in channels):
            raise InvalidGenotype(f"nats-sss needs {NUM_BLOCKS} channel counts from {CHANNELS}, got {channels}")
        graph = nx.DiGraph()
        for block, width in enumerate(channels):
            graph.add_node(block, channels=width)
        graph.add_edges_from((block, block + 1) for block in range(NUM_BLOCKS - 1))
        return frozen(graph)

    def encode(self, genotype: nx.DiGraph) -> str:
        return ":".join(str(c) for c in self.channels(genotype))

    def decode(self, text: str) -> nx.DiGraph:
        if not isinstance(text, str):
            raise InvalidGenotype(f"a nats-sss architecture is text, got {type(text).__name__}")
        try:
            channels = tuple(int(part) for part in text.strip().split(":"))
        except ValueError:
            raise InvalidGenotype(f"malformed nats-sss architecture {text!r}: expected e.g. 8:16:24:32:64") from None
        return self.from_channels(channels)

    # categorical encoding: one gene per block, its channels -----------------------------------------
    def categorical(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(f"block_{block}", CHANNELS) for block in range(NUM_BLOCKS)]

    def to_categorical(self, genotype: nx.DiGraph) -> dict[str, int]:
        return {f"block_{block}": width for block, width in enumerate(self.channels(genotype))}

    def from_categorical(self, values) -> nx.DiGraph:
        return self.from_channels(values.get(f"block_{block}") for block in range(NUM_BLOCKS))

    # operators ----------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> nx.DiGraph:
        return self.from_channels(rng.choice(CHANNELS) for _ in range(NUM_BLOCKS))

    def mutate(self, genotype: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        channels = list(self.channels(genotype))
        block = rng.randrange(NUM_BLOCKS)
        channels[block] = rng.choice([c for c in CHANNELS if c != channels[block]])
        return self.from_channels(channels)

    def crossover(self, first: nx.DiGraph, second: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        pairs = zip(self.channels(first), self.channels(second))
        return self.from_channels(a if rng.random() < 0.5 else b for a, b in pairs)

    # enumeration in the official order (ascending, the last block fastest) ------------------------------
    def __len__(self) -> int:
        return len(CHANNELS) ** NUM_BLOCKS

    def genotype_at(self, index: int) -> nx.DiGraph:
        if not 0 <= index < len(self):
            raise InvalidGenotype(f"nats-sss index {index} is outside 0..{len(self) - 1}")
        digits = []
        for _ in range(NUM_BLOCKS):
            index, digit = divmod(index, len(CHANNELS))
            digits.append(CHANNELS[digit])
        return self.from_channels(reversed(digits))

    def index_of(self, genotype: nx.DiGraph) -> int:
        index = 0
        for width in self.channels(genotype):
            index = index * len(CHANNELS) + CHANNELS.index(width)
        return index

    # costs (the NATS definitions) ---------------------------------------------------------------
    def cost(self, genotype: nx.DiGraph) -> Cost:
        """Parameters and FLOPs as NATS-Bench reports them, computed analytically (conv weights, BN affine, the
        classifier; FLOPs of convolutions and the classifier only), as for the topology space."""
        channels = self.channels(genotype)
        classes, (_, height, image_width) = self.num_classes, self.input_shape
        genes = arch_to_genes(CELL)
        first = channels[0]
        params = 3 * 9 * first + 2 * first
        flops = 3 * 9 * first * height * image_width
        previous = first
        for block, width in enumerate(channels):
            if block % 2:  # residual reduction: 3x3 stride-2 and 3x3 ReLU-Conv-BN, AvgPool + 1x1 conv shortcut
                height, image_width = height // 2, image_width // 2
                params += 9 * previous * width + 2 * width + 9 * width * width + 2 * width + previous * width
                flops += (9 * previous * width + 9 * width * width + previous * width) * height * image_width
            else:
                for (u, _), op in zip(EDGES, genes):
                    c_in = previous if u == 0 else width
                    kernel = {"nor_conv_3x3": 9, "nor_conv_1x1": 1}.get(op, 0)
                    if op == "skip_connect" and c_in != width:
                        kernel = 1  # factorized reduction: 1x1 conv + BN
                    if op == "avg_pool_3x3" and c_in != width:
                        kernel = 1  # 1x1 ReLU-Conv-BN before the pooling
                    if kernel:
                        params += kernel * c_in * width + 2 * width
                        flops += kernel * c_in * width * height * image_width
            previous = width
        params += 2 * previous + previous * classes + classes
        flops += previous * classes + classes
        return Cost(flops_m=flops / 1e6, params_m=params / 1e6)

    # networks --------------------------------------------------------------------------------
    def build(self, genotype: nx.DiGraph):
        from nasx_nats.network import SizeNetwork

        return SizeNetwork(arch_to_genes(CELL), self.channels(genotype), self.num_classes)

    def build_fused(self, genotypes):
        """The genotypes' networks side by side (:mod:`nasx.fusion`), each block padded to the widest model's
        channels (the extra channels hold zeros)."""
        from nasx_nats.network import SizeNetwork

        network = SizeNetwork(arch_to_genes(CELL), [self.channels(g) for g in genotypes], self.num_classes)
        network.make_networks = lambda: [self.build(g) for g in genotypes]
        return network

    def proxy_problem(self, proxy) -> str | None:
        if proxy.name == "epsilon" and not str(proxy.options.get("weights", "")).strip():
            return ("its two constant weights are fitted per space and the paper has none for this one; with "
                    "NAS-Bench-201's pair (1e-7, 1) every output of these networks is 0 at the first weight, so "
                    "every score is NaN: give a pair, e.g. -o epsilon.weights=1e-3,1")
        return super().proxy_problem(proxy)

    def skip_edges(self, genotype: nx.DiGraph) -> list[tuple[int, int]]:
        return [(u, v) for (u, v), op in zip(EDGES, arch_to_genes(CELL)) if op == "skip_connect"]

    # ground truth ------------------------------------------------------------------------------
    def oracle(self, data_dir):
        from nasx_nats.oracle import find_sss_oracle

        return find_sss_oracle(self, data_dir, self.options["benchmark_dir"] or None)
