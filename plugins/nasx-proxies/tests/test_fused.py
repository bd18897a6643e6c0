"""Fused scoring (nasx.fusion): several NATS-Bench architectures in one network get the scores each gets alone.

naswot: the same binary code of every unit of every ReLU, per model (so the same integer kernel), and the score to
1e-5 relative; logsynflow and synflow: 1e-9 relative (float64). The sample holds a cell whose edges are all 'none',
pure skip paths, a cell whose output ignores the input (naswot -inf), cells with dead nodes and a node without
inputs, and random cells; K = 1, 2, 5 and 16 architectures per network over 18 cells (5 and 16 do not divide 18).
"""

import math
import random

import pytest
import torch
from torch import nn

from nasx.data import synthetic_batch
from nasx.torch_utils import initialise, initialise_fused
from nasx_nats.network import Cell
from nasx_nats.sss import NatsSizeSpace
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.naswot import (NASWOT, _counts, agreement_counts, batched_agreement_counts, fused_kernels,
                                 observed_forward)
from nasx_proxies.synflow import LogSynflow, Synflow

SPECIAL = [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # zero-only edges: naswot -inf
    "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",  # a pure skip path
    "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",  # input to output by one skip
    # the output reads only node 1, which has no input: every activation after the stem is zero (naswot -inf)
    "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|none~2|",  # dead nodes behind poolings
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",  # dead node behind convs
]
SEED = 4  # of the initialisation
PROXIES = {"naswot": NASWOT(repeats=1), "logsynflow": LogSynflow(repeats=1), "synflow": Synflow(repeats=1)}
RELATIVE = {"naswot": 1e-5, "logsynflow": 1e-9, "synflow": 1e-9}


@pytest.fixture(scope="module")
def tss():
    return NatsTopologySpace(dataset="ImageNet16-120")  # 16 x 16 images: the same networks, four times cheaper


@pytest.fixture(scope="module")
def sss():
    return NatsSizeSpace(dataset="ImageNet16-120")


@pytest.fixture(scope="module")
def sample(tss):
    rng = random.Random(0)
    return [tss.decode(arch) for arch in SPECIAL] + [tss.sample(rng) for _ in range(12)]


@pytest.fixture(scope="module")
def batch(tss):
    return synthetic_batch(tss.input_shape, tss.num_classes, size=8, seed=3)


def relu_codes(network, batch) -> dict[str, torch.Tensor]:
    """Per ReLU (by name): the binary codes of its output in naswot's own forward pass."""
    names = {module: name for name, module in network.named_modules()}
    codes = {}
    observed_forward(network, batch.images, lambda m, i, o: codes.__setitem__(names[m], o > 0))
    return codes


def alone(space, genotypes, batch) -> list[dict]:
    """Each genotype's scores and codes on its own network."""
    found = []
    for genotype in genotypes:
        network = space.build(genotype)
        initialise(network, "kaiming", SEED)
        entry = {"codes": relu_codes(network, batch)}
        for name, proxy in PROXIES.items():
            initialise(network, "kaiming", SEED)
            entry[name] = proxy.score_network(network, batch, space)
        found.append(entry)
    return found


@pytest.fixture(scope="module")
def expected(tss, sample, batch):
    return alone(tss, sample, batch)


def fused_results(network, space, batch) -> tuple[dict, dict]:
    """Scores of a fused network, and its ReLUs' codes."""
    scores = {}
    for name, proxy in PROXIES.items():
        initialise_fused(network, "kaiming", SEED)
        scores[name] = proxy.score_fused(network, batch, space)
    initialise_fused(network, "kaiming", SEED)
    return scores, relu_codes(network, batch)


def in_fused(network, model: int, name: str) -> tuple[str, int]:
    """Where a module of model ``model``'s own network is in the fused one: its name there, and the model's block."""
    parts = name.split(".")
    if parts[0] == "cells" and parts[2] == "edges":
        cell = network.cells[int(parts[1])]
        edge = tuple(int(node) for node in parts[3].split("_"))
        group = next(g for g in cell.groups if (g.u, g.v) == edge and model in g.models)
        return ".".join([*parts[:3], group.key, *parts[4:]]), group.models.index(model)
    return name, model


def same(found: float, wanted: float, relative: float) -> bool:
    if not math.isfinite(wanted):
        return found == wanted or (math.isnan(found) and math.isnan(wanted))
    return abs(found - wanted) <= relative * abs(wanted)


def check(space, genotypes, expected, batch, codes_equal: bool = True) -> int:
    """Compare, and return how many units' codes differ."""
    network = space.build_fused(genotypes)
    scores, codes = fused_results(network, space, batch)
    differing = 0
    for model, wanted in enumerate(expected):
        for name in PROXIES:
            assert same(scores[name][model], wanted[name], RELATIVE[name]), \
                (name, space.encode(genotypes[model]), scores[name][model], wanted[name])
        for relu, code in wanted["codes"].items():
            fused_name, block = in_fused(network, model, relu)
            blocks = codes[fused_name].unflatten(1, (-1, codes[fused_name].shape[1] // len(network.get_submodule(
                fused_name).layout.models)))
            own = blocks[:, block, : code.shape[1]]
            assert not blocks[:, block, code.shape[1]:].any(), "padding must stay inactive"
            differing += int((own != code).sum())
    if codes_equal:
        assert differing == 0
    return differing


@pytest.mark.parametrize("models", [1, 2, 5, 16])
def test_fused_scores_and_codes_equal_those_of_each_network_alone(tss, sample, expected, batch, models):
    for first in range(0, len(sample), models):
        check(tss, sample[first:first + models], expected[first:first + models], batch)


def test_the_special_cells_give_the_non_finite_naswot_scores(expected):
    """The sample does hold the degenerate cases it is meant to hold."""
    assert expected[0]["naswot"] == -math.inf and expected[3]["naswot"] == -math.inf
    assert all(math.isfinite(entry["logsynflow"]) for entry in expected)


def test_one_model_is_the_network_build_gives(tss, sample):
    genotype = sample[7]
    single, fused = tss.build(genotype), tss.build_fused([genotype])
    assert list(single.state_dict()) == list(fused.state_dict())
    assert [type(m) for m in single.modules()] == [type(m) for m in fused.modules()]
    initialise(single, "kaiming", SEED)
    initialise_fused(fused, "kaiming", SEED)
    assert all(torch.equal(a, b) for a, b in zip(single.state_dict().values(), fused.state_dict().values()))


def test_each_model_gets_the_weights_its_own_network_gets(tss, sample):
    """Every weight and statistic of the fused network is a model's own, in the model's block, for both schemes."""
    network = tss.build_fused(sample[:5])
    for scheme in ("kaiming", "pytorch"):
        initialise_fused(network, scheme, SEED)
        own = network.state_dict()
        for model, genotype in enumerate(sample[:5]):
            single = tss.build(genotype)
            initialise(single, scheme, SEED)
            for name, tensor in single.state_dict().items():
                if tensor.dim() == 0:
                    continue
                fused_name, block = in_fused(network, model, name.rpartition(".")[0])
                fused = own[f"{fused_name}.{name.rpartition('.')[2]}"]
                blocks = fused.reshape(-1, tensor.shape[0], *fused.shape[1:])
                assert torch.equal(blocks[block].reshape(tensor.shape), tensor), name


def test_models_that_chose_different_operations_run_each_on_their_own_channels(tss):
    """Gathered, not masked: an edge on which the models differ has one operation per choice, holding only the
    weights of the models that made it."""
    first = tss.decode("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|")
    second = tss.decode("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|")
    cell = next(m for m in tss.build_fused([first, second, first]).modules() if isinstance(m, Cell))
    chosen = {(g.u, g.v, g.op): g.models for g in cell.groups}
    assert chosen[(0, 2, "avg_pool_3x3")] == (0, 2) and chosen[(0, 2, "nor_conv_3x3")] == (1,)
    assert cell.edges["0_1"][1].weight.shape[0] == 3 * 16  # one operation for all three: no gather
    assert cell.edges["0_3_nor_conv_1x1"][1].weight.shape[0] == 2 * 16
    assert cell.edges["0_3_skip_connect"].__class__ is nn.Identity


def test_batched_agreement_counts_are_those_of_one_model_at_a_time():
    """The product of all models' codes at once (used off the CPU) gives each model's integer counts."""
    generator = torch.Generator().manual_seed(0)
    blocks = torch.relu(torch.randn(6, 3, 5, 2, 2, generator=generator))  # (images, models, channels, h, w)
    blocks[1, 2, 0, 0, 0] = float("nan")  # inactive, as in agreement_counts
    for width in (5, 3):
        batched = _counts(blocks, [0, 2], width, torch.device("cpu"), batched=True)
        assert torch.equal(batched, _counts(blocks, [0, 2], width, torch.device("cpu"), batched=False))
        assert torch.equal(batched[1], agreement_counts(blocks[:, 2, :width], 6))
    assert batched_agreement_counts(torch.ones(2, 3, 4)).eq(4).all()


@pytest.mark.parametrize("space_name", ["tss", "sss"])
def test_batched_kernels_are_the_kernels_of_one_model_at_a_time(tss, sss, sample, batch, space_name):
    """The kernels as a GPU computes them (all models' codes in one product per ReLU), here on the CPU."""
    space = tss if space_name == "tss" else sss
    genotypes = sample[:5] if space_name == "tss" else [sss.sample(random.Random(seed)) for seed in range(4)]
    network = space.build_fused(genotypes)
    kernels = {}
    for batched in (True, False):
        initialise_fused(network, "kaiming", SEED)
        kernels[batched] = fused_kernels(network, batch.images, batched)
    assert torch.equal(kernels[True], kernels[False])


def test_size_space_models_are_padded_to_the_widest_and_score_as_alone(sss, batch):
    """Padding changes the length of float32 sums, so codes could differ where an activation rounds across zero;
    on this sample none does, and the scores agree within the tolerances."""
    rng = random.Random(1)
    genotypes = [sss.decode(a) for a in ("8:8:8:8:8", "64:64:64:64:64", "8:64:8:64:8", "64:8:64:8:64")]
    genotypes += [sss.sample(rng) for _ in range(3)]
    expected = alone(sss, genotypes, batch)
    assert check(sss, genotypes, expected, batch, codes_equal=False) <= 1e-6 * sum(
        code.numel() for entry in expected for code in entry["codes"].values())
    network = sss.build_fused(genotypes[:2])
    assert network.stem[0].weight.shape[0] == 2 * 64
