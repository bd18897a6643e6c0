"""A tiny torch-free space and proxy for testing searchers and combiners quickly.

Genotypes are chains of ``length`` nodes, each with a ``bit``; the ``ones`` proxy counts the set bits, so the
optimum is known: all ones. Cost: FLOPs = number of ones, params = number of ones / 10 (millions).
"""

from __future__ import annotations

import random

import networkx as nx

from nasx.errors import InvalidGenotype
from nasx.genotype import frozen
from nasx.interfaces import Cost, EnumerableSpace, EvolvableSpace, Proxy


class BitChains(EvolvableSpace):
    """Chains of ``length`` bits, with the genetic operators but no enumeration (so any length is cheap)."""

    name = "toy-bits"
    datasets = ("toy",)
    defaults = {"length": 8}

    @property
    def length(self) -> int:
        return self.options["length"]

    @property
    def input_shape(self):
        return (1, 1, self.length)

    @property
    def num_classes(self) -> int:
        return 2

    def from_bits(self, bits) -> nx.DiGraph:
        bits = list(bits)
        graph = nx.DiGraph()
        for i, bit in enumerate(bits):
            graph.add_node(i, bit=int(bit))
        graph.add_edges_from((i, i + 1) for i in range(len(bits) - 1))
        return frozen(graph)

    def bits(self, genotype) -> tuple[int, ...]:
        return tuple(genotype.nodes[i]["bit"] for i in range(self.length))

    def sample(self, rng: random.Random):
        return self.from_bits(rng.randint(0, 1) for _ in range(self.length))

    def encode(self, genotype) -> str:
        return "".join(map(str, self.bits(genotype)))

    def decode(self, text: str):
        if len(text) != self.length or set(text) - {"0", "1"}:
            raise InvalidGenotype(f"not a {self.length}-bit string: {text!r}")
        return self.from_bits(int(c) for c in text)

    def build(self, genotype):
        raise NotImplementedError("toy genotypes have no network; only genotype proxies score them")

    def cost(self, genotype) -> Cost:
        ones = sum(self.bits(genotype))
        return Cost(flops_m=float(ones), params_m=ones / 10)

    def mutate(self, genotype, rng):
        bits = list(self.bits(genotype))
        position = rng.randrange(self.length)
        bits[position] = 1 - bits[position]
        return self.from_bits(bits)

    def crossover(self, first, second, rng):
        return self.from_bits(a if rng.random() < 0.5 else b for a, b in zip(self.bits(first), self.bits(second)))

    # one categorical gene per bit, so that black-box searchers (optuna) run on the toy space too
    def categorical(self):
        return [(f"bit_{i}", (0, 1)) for i in range(self.length)]

    def to_categorical(self, genotype):
        return {f"bit_{i}": bit for i, bit in enumerate(self.bits(genotype))}

    def from_categorical(self, values):
        return self.from_bits(values[f"bit_{i}"] for i in range(self.length))


class BitSpace(BitChains, EnumerableSpace):
    """The enumerable bit space: genotype ``i`` has the binary digits of ``i``."""

    def __len__(self) -> int:
        return 2**self.length

    def genotype_at(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} genotypes")
        return self.decode(format(index, f"0{self.length}b"))  # the binary digits of the index

    def index_of(self, genotype) -> int:
        return int(self.encode(genotype), 2)


class OnesProxy(Proxy):
    name = "toy-ones"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        return float(sum(space.bits(genotype)))
