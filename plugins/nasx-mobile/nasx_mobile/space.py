"""The ``mobile`` space: MobileNetV2-style networks of inverted residual blocks, as in Once-for-All (OFA).

It is OFA's ProxylessNAS space exactly, the space of its released supernet
``ofa_proxyless_d234_e346_k357_w1.3`` (mit-han-lab/once-for-all, ``ofa/model_zoo.py`` and
``ofa/imagenet_classification/elastic_nn/networks/ofa_proxyless.py``, commit
f03b2673db313b9167e2a1c2b7a5cad540cc1313): ``ks_list=[3, 5, 7]``, ``expand_ratio_list=[3, 4, 6]``,
``depth_list=[2, 3, 4]``, ``width_mult=1.3``. A network is

- a 3x3 stride-2 convolution to 32 channels, BatchNorm, ReLU6 (the stem);
- a fixed first block: depthwise 3x3 + 1x1 projection to 16 channels (expansion 1, no residual);
- six stages of inverted residual blocks of 24, 40, 80, 96, 192 and 320 channels, strides 2, 2, 2, 1, 2, 1, with
  at most 4, 4, 4, 4, 4 and 1 blocks: each block is a 1x1 expansion to ``expand`` times its input channels, a
  depthwise ``kernel`` x ``kernel`` convolution (the stage's stride in its first block), a 1x1 projection, each
  followed by BatchNorm (and ReLU6, except the projection); a block whose input and output shapes agree adds its
  input (the residual);
- a 1x1 convolution to 1280 channels, BatchNorm, ReLU6, global average pooling, dropout and a linear classifier.

All widths are multiplied by ``width_mult`` and rounded to multiples of 8 as OFA rounds them (``make_divisible``).
Convolutions have no bias; BatchNorm has OFA's momentum 0.1 and eps 1e-3; padding is kernel // 2, so a network
takes any input resolution (it downsamples by 32).

The genotype is OFA's sub-network setting: a kernel size and an expansion ratio for each of the 21 block slots
and a depth for each stage (the last stage always has its single block), the ``ks``, ``e`` and ``d`` that
``OFAProxylessNASNets.set_active_subnet`` and ``sample_active_subnet`` take. The slots beyond a stage's depth are
part of the genotype, as in OFA (a depth mutation activates one), but not of the network: genotypes that differ
only there have the same ``key``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import networkx as nx

from nasx.errors import InvalidGenotype
from nasx.genotype import frozen, stable_hash
from nasx.interfaces import Cost, EvolvableSpace, SquareImages
from nasx.options import Check, positive

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
#: ProxylessNAS's widths: stem, first block, the six stages, the 1x1 convolution before pooling
BASE_WIDTHS = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
STAGE_STRIDES = (2, 2, 2, 1, 2, 1)
STAGE_SLOTS = (4, 4, 4, 4, 4, 1)
#: stage of each of the 21 block slots, in network order
SLOT_STAGE = tuple(stage for stage, slots in enumerate(STAGE_SLOTS) for _ in range(slots))
NUM_SLOTS = len(SLOT_STAGE)
CHANNEL_DIVISIBLE = 8
BN_MOMENTUM, BN_EPS = 0.1, 1e-3
DOWNSAMPLING = 32

#: classes and image side of each dataset
DATASETS = {"imagenet": (1000, 224), "cifar10": (10, 32), "cifar100": (100, 32)}

below_one = Check(lambda value: 0 <= value < 1, "at least 0 and below 1")


def make_divisible(value: float, divisor: int = CHANNEL_DIVISIBLE) -> int:
    """OFA's (and TensorFlow's MobileNet's) rounding of a width to a multiple of ``divisor``, never below 90 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class Arch(NamedTuple):
    """OFA's sub-network setting: ``ks`` and ``e`` of the 21 block slots, ``d`` of the 6 stages."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]

    def active_slots(self) -> list[int]:
        """The slots that are blocks of the network: the first ``d`` of each stage."""
        first = 0
        active = []
        for depth, slots in zip(self.d, STAGE_SLOTS):
            active.extend(range(first, first + depth))
            first += slots
        return active


@dataclass(frozen=True)
class Block:
    """One inverted residual block of a built network."""

    in_channels: int
    out_channels: int
    kernel: int
    expand: int
    middle: int
    stride: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True)
class Layout:
    """The widths and blocks of one network (what ``network.MobileNetwork`` builds and ``cost`` counts)."""

    in_channels: int
    stem: int
    first_block: int
    blocks: tuple[Block, ...]
    last: int
    num_classes: int


def layout(arch: Arch, width_mult: float, in_channels: int, num_classes: int) -> Layout:
    """The network of ``arch`` (OFA's ``OFAProxylessNASNets`` with that sub-network active)."""
    widths = [make_divisible(base * width_mult) for base in BASE_WIDTHS]
    stem, first_block, stage_widths, last = widths[0], widths[1], widths[2:-1], widths[-1]
    blocks = []
    channels = first_block
    for slot in arch.active_slots():
        stage = SLOT_STAGE[slot]
        first_of_stage = slot == sum(STAGE_SLOTS[:stage])
        middle = make_divisible(round(channels * arch.e[slot]))
        blocks.append(Block(channels, stage_widths[stage], arch.ks[slot], arch.e[slot], middle,
                            STAGE_STRIDES[stage] if first_of_stage else 1))
        channels = stage_widths[stage]
    return Layout(in_channels, stem, first_block, tuple(blocks), last, num_classes)


def reduced(side: int, stride: int) -> int:
    """Output side of a convolution of odd kernel k with padding k // 2 and ``stride``."""
    return (side - 1) // stride + 1


def layout_cost(net: Layout, height: int, width: int) -> tuple[int, int]:
    """(parameters, FLOPs) of a network: every parameter (convolution weights, BatchNorm weights and biases, the
    classifier's weights and biases); FLOPs in the NATS-Bench definition, the multiply-accumulates of convolutions
    (k*k*Cin/groups*Cout*Hout*Wout) and of the classifier (in*out + out)."""
    params = flops = 0

    def conv(c_in: int, c_out: int, kernel: int, groups: int, positions: int) -> None:
        nonlocal params, flops
        weights = kernel * kernel * (c_in // groups) * c_out
        params += weights + 2 * c_out  # and the BatchNorm that follows every convolution
        flops += weights * positions

    height, width = reduced(height, 2), reduced(width, 2)
    conv(net.in_channels, net.stem, 3, 1, height * width)
    conv(net.stem, net.stem, 3, net.stem, height * width)  # first block: depthwise 3x3, projection
    conv(net.stem, net.first_block, 1, 1, height * width)
    for block in net.blocks:
        conv(block.in_channels, block.middle, 1, 1, height * width)
        height, width = reduced(height, block.stride), reduced(width, block.stride)
        conv(block.middle, block.middle, block.kernel, block.middle, height * width)
        conv(block.middle, block.out_channels, 1, 1, height * width)
    conv(net.blocks[-1].out_channels, net.last, 1, 1, height * width)
    params += net.last * net.num_classes + net.num_classes
    flops += net.last * net.num_classes + net.num_classes
    return params, flops


class MobileSpace(SquareImages, EvolvableSpace):
    name = "mobile"
    summary = ("Once-for-All's MobileNetV2-style ProxylessNAS space (kernel 3/5/7, expansion 3/4/6, depth 2/3/4 "
               "per stage) for phones and microcontrollers; any data, no ground truth")
    datasets: ClassVar[tuple[str, ...]] = tuple(DATASETS)
    image_datasets = DATASETS
    default_dataset = "imagenet"
    cost_is_exact = True  # cost() counts every parameter of build()
    benchmarked = False  # no trained networks of this space are published with their accuracies
    adapts_to_data = True
    min_resolution = DOWNSAMPLING  # smaller images leave the last stages 1x1 feature maps of padding
    # width_mult: OFA's released space is 1.3 (1.0: ProxylessNAS's own widths); dropout: before the classifier of
    # the network that is trained (export), OFA's default 0.1; the proxies' network has none
    defaults = {"width_mult": 1.3, "dropout": 0.1}
    option_checks = {"width_mult": positive, "dropout": below_one}

    def __init__(self, dataset: str | None = None, **options) -> None:
        super().__init__(dataset, **options)
        # cached scores are keyed by the version: the width changes every network
        self.version = f"1:w{self.options['width_mult']}"

    # genotype <-> OFA's setting <-> text -----------------------------------------------------------
    @staticmethod
    def arch(genotype: nx.DiGraph) -> Arch:
        try:
            nodes = [genotype.nodes[slot] for slot in range(NUM_SLOTS)]
            ks = tuple(int(node["kernel"]) for node in nodes)
            e = tuple(int(node["expand"]) for node in nodes)
            active = [bool(node["active"]) for node in nodes]
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise InvalidGenotype(f"not a mobile genotype: slots 0..{NUM_SLOTS - 1} need 'kernel', 'expand' and "
                                  f"'active' ({exc})") from None
        d = tuple(sum(active[slot] for slot in range(NUM_SLOTS) if SLOT_STAGE[slot] == stage)
                  for stage in range(len(STAGE_SLOTS)))
        arch = Arch(ks, e, d)
        check_arch(arch)
        if [slot in arch.active_slots() for slot in range(NUM_SLOTS)] != active:
            raise InvalidGenotype("not a mobile genotype: the active slots of a stage must be its first ones")
        return arch

    @staticmethod
    def from_arch(arch: Arch) -> nx.DiGraph:
        """The genotype of OFA's setting: one node per block slot (``stage``, ``kernel``, ``expand``, ``active``),
        edges along the network's blocks."""
        check_arch(arch)
        active = arch.active_slots()
        graph = nx.DiGraph()
        for slot in range(NUM_SLOTS):
            graph.add_node(slot, stage=SLOT_STAGE[slot], kernel=arch.ks[slot], expand=arch.e[slot],
                           active=slot in active)
        graph.add_edges_from(zip(active, active[1:]))
        return frozen(graph)

    def encode(self, genotype: nx.DiGraph) -> str:
        arch = self.arch(genotype)
        return json.dumps({"ks": list(arch.ks), "e": list(arch.e), "d": list(arch.d)}, sort_keys=True,
                          separators=(",", ":"))

    def decode(self, text: str) -> nx.DiGraph:
        if not isinstance(text, str):
            raise InvalidGenotype(f"a mobile architecture is text, got {type(text).__name__}")
        try:
            setting = json.loads(text)
        except ValueError:
            setting = None
        if not isinstance(setting, dict) or set(setting) != {"ks", "e", "d"} or not all(
                isinstance(values, list) and all(type(v) is int for v in values) for values in setting.values()):
            raise InvalidGenotype(f"malformed mobile architecture {text[:80]!r}: expected OFA's setting as JSON, "
                                  '{"d":[6 depths],"e":[21 expansion ratios],"ks":[21 kernel sizes]}')
        return self.from_arch(Arch(tuple(setting["ks"]), tuple(setting["e"]), tuple(setting["d"])))

    def key(self, genotype: nx.DiGraph) -> str:
        """The same for genotypes that differ only in slots beyond their stages' depths (the same network)."""
        arch = self.arch(genotype)
        blocks = ",".join(f"{arch.ks[slot]}:{arch.e[slot]}" for slot in arch.active_slots())
        return stable_hash(self.name, f"d={arch.d};blocks={blocks}")

    # the categorical encoding (Optuna's searcher): every gene of OFA's setting; the last stage's depth is fixed
    def categorical(self) -> list[tuple[str, tuple[int, ...]]]:
        return ([(f"ks_{slot}", KERNELS) for slot in range(NUM_SLOTS)] + [(f"e_{slot}", EXPANDS) for slot in
                range(NUM_SLOTS)] + [(f"d_{stage}", DEPTHS) for stage in range(len(STAGE_SLOTS) - 1)])

    def to_categorical(self, genotype: nx.DiGraph) -> dict[str, int]:
        arch = self.arch(genotype)
        return {**{f"ks_{slot}": arch.ks[slot] for slot in range(NUM_SLOTS)},
                **{f"e_{slot}": arch.e[slot] for slot in range(NUM_SLOTS)},
                **{f"d_{stage}": arch.d[stage] for stage in range(len(STAGE_SLOTS) - 1)}}

    def from_categorical(self, values) -> nx.DiGraph:
        return self.from_arch(Arch(tuple(values.get(f"ks_{slot}") for slot in range(NUM_SLOTS)),
                                   tuple(values.get(f"e_{slot}") for slot in range(NUM_SLOTS)),
                                   tuple(values.get(f"d_{stage}") for stage in range(len(STAGE_SLOTS) - 1)) + (1,)))

    # operators ----------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> nx.DiGraph:
        """Every gene uniformly from its choices, as OFA's ``sample_active_subnet`` (the last stage's depth is 1)."""
        ks = tuple(rng.choice(KERNELS) for _ in range(NUM_SLOTS))
        e = tuple(rng.choice(EXPANDS) for _ in range(NUM_SLOTS))
        d = tuple(rng.choice(DEPTHS) for _ in STAGE_SLOTS[:-1]) + (1,)
        return self.from_arch(Arch(ks, e, d))

    def mutate(self, genotype: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """One gene that the network uses changes to another of its choices: the kernel size or the expansion ratio
        of a block, or the depth of a stage (of the first five; a deeper stage activates its next slot)."""
        arch = self.arch(genotype)
        genes = [("ks", slot) for slot in arch.active_slots()] + [("e", slot) for slot in arch.active_slots()]
        genes += [("d", stage) for stage in range(len(STAGE_SLOTS) - 1)]
        field, position = rng.choice(genes)
        choices = {"ks": KERNELS, "e": EXPANDS, "d": DEPTHS}[field]
        values = list(getattr(arch, field))
        values[position] = rng.choice([value for value in choices if value != values[position]])
        return self.from_arch(arch._replace(**{field: tuple(values)}))

    def crossover(self, first: nx.DiGraph, second: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """Uniform crossover: each gene (every slot's kernel size and expansion ratio, every stage's depth) from
        either parent; every combination is valid."""
        parents = (self.arch(first), self.arch(second))
        return self.from_arch(Arch(*(tuple(rng.choice(parents)[field][position]
                                           for position in range(len(parents[0][field])))
                                     for field in range(len(Arch._fields)))))

    # costs and networks --------------------------------------------------------------------------
    def layout(self, genotype: nx.DiGraph) -> Layout:
        return layout(self.arch(genotype), self.options["width_mult"], self.input_shape[0], self.num_classes)

    def cost(self, genotype: nx.DiGraph) -> Cost:
        """Parameters and FLOPs of ``build(genotype)`` at the data's resolution, counted analytically
        (``layout_cost``)."""
        params, flops = layout_cost(self.layout(genotype), *self.input_shape[1:])
        return Cost(flops_m=flops / 1e6, params_m=params / 1e6)

    def build(self, genotype: nx.DiGraph):
        """The network the proxies score: without dropout (it would make their scores random)."""
        from nasx_mobile.network import MobileNetwork

        return MobileNetwork(self.layout(genotype))

    def build_for_training(self, genotype: nx.DiGraph):
        """The network to train: with ``dropout`` before the classifier, as OFA trains it."""
        from nasx_mobile.network import MobileNetwork

        return MobileNetwork(self.layout(genotype), dropout=self.options["dropout"])

    def proxy_problem(self, proxy) -> str | None:
        if proxy.name == "epsilon" and not str(proxy.options.get("weights", "")).strip():
            return ("its two constant weights are fitted per space and the paper has none for this one; the pairs of "
                    "NAS-Bench-201 and -101 make every output one value here (BatchNorm eps 1e-3 shrinks small "
                    "constants to zero), so give a pair, e.g. -o epsilon.weights=0.01,1")
        if proxy.name == "gradsign" and min(self.input_shape[1:]) <= DOWNSAMPLING:
            return (f"it runs each image alone in training mode, and at {self.input_shape[1]}x{self.input_shape[2]} "
                    "the last stages' 1x1 feature maps give BatchNorm one value per channel (use images larger "
                    f"than {DOWNSAMPLING} pixels)")
        if proxy.name == "az_trainability" and any(side % DOWNSAMPLING for side in self.input_shape[1:]):
            return (f"it folds each block's input into its output's size, which needs every stride to halve the "
                    f"feature maps exactly, and {self.input_shape[1]}x{self.input_shape[2]} is not a multiple of "
                    f"{DOWNSAMPLING} (use such a size)")
        return None

    def skip_edges(self, genotype: nx.DiGraph) -> list[tuple[int, int]]:
        """The residual connections, between layers numbered in order (0: the image, then the output of each
        convolution). Each bypasses one block's three convolutions, so the ``skip`` proxy gives 2 for every
        network of this space."""
        edges = []
        layer = 3  # the stem's convolution, the first block's depthwise and projection convolutions
        for block in self.layout(genotype).blocks:
            if block.residual:
                edges.append((layer, layer + 3))
            layer += 3
        return edges


def check_arch(arch: Arch) -> None:
    """Raises InvalidGenotype unless ``arch`` is a setting of the space."""
    for field, length, choices in (("ks", NUM_SLOTS, KERNELS), ("e", NUM_SLOTS, EXPANDS),
                                   ("d", len(STAGE_SLOTS), DEPTHS)):
        values = getattr(arch, field)
        if len(values) != length:
            raise InvalidGenotype(f"mobile '{field}' needs {length} values, got {len(values)}")
        for position, value in enumerate(values[:-1] if field == "d" else values):  # d[5] is checked below
            if value not in choices:
                raise InvalidGenotype(f"mobile '{field}'[{position}] is {value}; choose one of {choices}")
    if arch.d[-1] != 1:
        raise InvalidGenotype(f"mobile 'd'[5] is {arch.d[-1]}: the last stage has one block")
