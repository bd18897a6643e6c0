"""The mobile space: OFA's setting as genotype and text, operators, networks and their costs against counts taken
from the built networks, own data."""

import json
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nasx.errors import InvalidGenotype, NasxError
from nasx.interfaces import Task
from nasx.testing.contracts import SpaceContract
from nasx_mobile.space import (DEPTHS, EXPANDS, KERNELS, NUM_SLOTS, SLOT_STAGE, STAGE_SLOTS, Arch, MobileSpace,
                               make_divisible)

seeds = st.integers(min_value=0, max_value=2**32 - 1)
archs = st.builds(Arch, st.tuples(*[st.sampled_from(KERNELS)] * NUM_SLOTS),
                  st.tuples(*[st.sampled_from(EXPANDS)] * NUM_SLOTS),
                  st.tuples(*[st.sampled_from(DEPTHS)] * (len(STAGE_SLOTS) - 1), st.just(1)))


@pytest.fixture(scope="module")
def mobile():
    return MobileSpace(dataset="cifar10")


class TestContract(SpaceContract):
    samples = 10

    @pytest.fixture
    def space(self):
        return MobileSpace()  # ImageNet at 224, the space's own setting


def genes(space, genotype):
    """Every gene: the 21 kernel sizes, the 21 expansion ratios, the 6 depths."""
    arch = space.arch(genotype)
    return arch.ks + arch.e + arch.d


@given(archs)
def test_text_is_ofas_setting_and_round_trips(arch):
    space = MobileSpace()
    genotype = space.from_arch(arch)
    text = space.encode(genotype)
    assert json.loads(text) == {"ks": list(arch.ks), "e": list(arch.e), "d": list(arch.d)}
    assert space.arch(space.decode(text)) == arch
    assert space.encode(space.decode(text)) == text
    assert space.key(space.decode(text)) == space.key(genotype)
    # the genotype's edges follow the network's blocks: the first d slots of each stage
    active = [slot for slot in range(NUM_SLOTS) if genotype.nodes[slot]["active"]]
    assert list(genotype.edges) == list(zip(active, active[1:]))
    assert [sum(SLOT_STAGE[slot] == stage for slot in active) for stage in range(6)] == list(arch.d)


@given(seeds)
@settings(max_examples=50)
def test_sampling_draws_valid_settings_reproducibly(seed):
    space = MobileSpace()
    genotype = space.sample(random.Random(seed))
    assert space.encode(genotype) == space.encode(space.sample(random.Random(seed)))
    assert space.arch(genotype).d[-1] == 1


@given(seeds)
def test_mutation_changes_exactly_one_gene_of_the_network(seed):
    space = MobileSpace()
    rng = random.Random(seed)
    parent = space.sample(rng)
    child = space.mutate(parent, rng)
    assert sum(a != b for a, b in zip(genes(space, parent), genes(space, child))) == 1
    assert space.key(child) != space.key(parent)  # never a gene of an unused slot: the network changes
    assert space.decode(space.encode(child)) is not None


@given(seeds)
def test_crossover_takes_each_gene_from_a_parent(seed):
    space = MobileSpace()
    rng = random.Random(seed)
    first, second = space.sample(rng), space.sample(rng)
    child = genes(space, space.crossover(first, second, rng))
    assert all(c in pair for c, pair in zip(child, zip(genes(space, first), genes(space, second))))


def test_key_ignores_slots_beyond_the_depth(mobile):
    arch = mobile.arch(mobile.sample(random.Random(0)))
    arch = arch._replace(d=(2, 2, 2, 2, 2, 1))
    unused = 3  # the third slot of the first stage
    changed = arch._replace(ks=arch.ks[:unused - 1] + (7 if arch.ks[unused - 1] != 7 else 3,) + arch.ks[unused:])
    assert mobile.encode(mobile.from_arch(arch)) != mobile.encode(mobile.from_arch(changed))
    assert mobile.key(mobile.from_arch(arch)) == mobile.key(mobile.from_arch(changed))
    used = arch._replace(e=(6 if arch.e[0] != 6 else 3,) + arch.e[1:])
    assert mobile.key(mobile.from_arch(used)) != mobile.key(mobile.from_arch(arch))


@pytest.mark.parametrize("bad", [
    "", "[]", "{}", '{"ks":[3],"e":[3],"d":[2]}',
    json.dumps({"ks": [3] * 21, "e": [3] * 21, "d": [2, 2, 2, 2, 2, 2]}),  # the last stage has one block
    json.dumps({"ks": [4] * 21, "e": [3] * 21, "d": [2, 2, 2, 2, 2, 1]}),
    json.dumps({"ks": [3] * 21, "e": [5] * 21, "d": [2, 2, 2, 2, 2, 1]}),
    json.dumps({"ks": [3] * 21, "e": [3] * 21, "d": [1, 2, 2, 2, 2, 1]}),
    json.dumps({"ks": [3.0] * 21, "e": [3] * 21, "d": [2, 2, 2, 2, 2, 1]}),
    json.dumps({"ks": [3] * 21, "e": [3] * 21, "d": [2, 2, 2, 2, 2, 1], "w": 1}),
])
def test_malformed_strings_are_refused(mobile, bad):
    with pytest.raises(InvalidGenotype):
        mobile.decode(bad)


def test_widths_are_ofas():
    # ProxylessNAS's widths, and OFA's released 1.3-wide space rounded to multiples of 8 by make_divisible
    base = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
    assert [make_divisible(w * 1.0) for w in base] == list(base)
    assert [make_divisible(w * 1.3) for w in base] == [40, 24, 32, 56, 104, 128, 248, 416, 1664]
    net = MobileSpace().layout(MobileSpace().decode(json.dumps({"ks": [7] * 21, "e": [6] * 21,
                                                                "d": [4, 4, 4, 4, 4, 1]})))
    assert [(b.in_channels, b.out_channels, b.stride, b.middle) for b in net.blocks[:2]] == [
        (24, 32, 2, 144), (32, 32, 1, 192)]


def counted(network, shape):
    """(parameters, FLOPs) counted on the built network: every parameter; forward hooks adding each convolution's
    k*k*Cin/groups*Cout*Hout*Wout and each linear layer's in*out + out."""
    flops = 0

    def conv(module, inputs, output):
        nonlocal flops
        flops += module.weight.numel() * output.shape[2] * output.shape[3]

    def linear(module, inputs, output):
        nonlocal flops
        flops += module.in_features * module.out_features + module.out_features

    hooks = [m.register_forward_hook(conv) for m in network.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear) for m in network.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        logits = network.eval()(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    return sum(p.numel() for p in network.parameters()), flops, logits


@pytest.mark.parametrize("space", [
    MobileSpace(dataset="cifar100"),
    MobileSpace(dataset="imagenet", width_mult=1.0),
    MobileSpace(width_mult=0.75).for_data(Task("pets", 37, (3, 64, 64))),
    MobileSpace(width_mult=0.5).for_data(Task("scans", 4, (1, 97, 45))),  # odd sides, one channel
], ids=["cifar100", "imagenet-w1.0", "pets-64", "scans-97x45"])
def test_cost_is_the_built_networks(space):
    rng = random.Random(4)
    for genotype in [space.sample(rng), space.sample(rng)]:
        params, flops, logits = counted(space.build(genotype), space.input_shape)
        cost = space.cost(genotype)
        assert round(cost.params_m * 1e6) == params
        assert round(cost.flops_m * 1e6) == flops
        assert logits.shape == (1, space.num_classes)
        assert sum(p.numel() for p in space.build_for_training(genotype).parameters()) == params


def test_own_data_builds_for_its_classes_and_resolution():
    space = MobileSpace().for_data(Task("pets", 37, (3, 64, 64)))
    assert (space.input_shape, space.num_classes, space.dataset) == ((3, 64, 64), 37, "pets")
    genotype = space.sample(random.Random(0))
    network = space.build(genotype)
    assert network.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 37)
    # more pixels, more FLOPs; the same parameters but the classifier's
    imagenet = MobileSpace()
    assert space.cost(genotype).flops_m < imagenet.cost(genotype).flops_m
    assert (imagenet.cost(genotype).params_m - space.cost(genotype).params_m) * 1e6 == pytest.approx(
        (1000 - 37) * (1664 + 1))
    with pytest.raises(NasxError, match="too small for space 'mobile'"):
        MobileSpace().for_data(Task("tiny", 10, (3, 16, 16)))


def test_dropout_is_in_the_trained_network_only(mobile):
    genotype = mobile.sample(random.Random(1))
    assert mobile.build(genotype).classifier[0].p == 0
    assert MobileSpace(dropout=0.2).build_for_training(genotype).classifier[0].p == 0.2


def test_residuals_are_the_skip_edges(mobile):
    genotype = mobile.decode(json.dumps({"ks": [3] * 21, "e": [4] * 21, "d": [2, 3, 4, 2, 3, 1]}))
    network = mobile.build(genotype)
    residual = [block.residual for block in network.cells]
    # every stage changes the width in its first block, so each of its other blocks adds its input
    assert sum(residual) == (2 - 1) + (3 - 1) + (4 - 1) + (2 - 1) + (3 - 1) + 0
    assert mobile.skip_edges(genotype) == [(3 * b + 3, 3 * b + 6) for b, r in enumerate(residual[1:]) if r]
    # a residual block's output is its convolutions' output plus its input
    block = next(block for block in network.cells if block.residual).eval()
    x = torch.randn(2, block.conv[0][0].in_channels, 8, 8)
    with torch.no_grad():
        assert torch.equal(block(x), x + block.conv(x))


def test_undefined_proxies_are_refused_with_a_reason(mobile):
    from nasx_proxies.epsilon import Epsilon
    from nasx_proxies.gradsign import GradSign

    assert "epsilon.weights" in mobile.proxy_problem(Epsilon())
    assert mobile.proxy_problem(Epsilon(weights="0.01,1")) is None
    assert "1x1 feature maps" in mobile.proxy_problem(GradSign())
    assert mobile.for_data(Task("pets", 37, (3, 64, 64))).proxy_problem(GradSign()) is None
