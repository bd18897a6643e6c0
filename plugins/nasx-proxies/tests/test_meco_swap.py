"""MeCo, MeCo_opt and SWAP against their definitions, computed plainly (numpy, Python loops and sets) on tiny
networks and on one NAS-Bench-201 network, and their scores on every space."""

import csv
import gzip
import math

import numpy as np
import pytest
import torch
from torch import nn

from nasx.data import Batch, synthetic_batch
from nasx.errors import NasxError
from nasx.testing.contracts import ProxyContract
from nasx.torch_utils import initialise
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.meco import MeCo, MeCoOpt
from nasx_proxies.swap import SIZE_RANGE, SWAP, default_regularisation

DISCONNECTED = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CELL = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|"


class TestRegularisedSwapContract(ProxyContract):
    """The contract for swap's size-regularised variant (tests/test_every_proxy.py runs every proxy's defaults)."""

    @pytest.fixture
    def proxy(self):
        return SWAP(repeats=1, regularise=True)


def test_directions_and_needs():
    for proxy in (MeCo(), MeCoOpt(), SWAP()):
        assert proxy.higher_is_better and proxy.needs_data and proxy.needs_network
        assert not proxy.needs_labels and not proxy.needs_gradients


# ---------------------------------------------------------------------------------------------------- MeCo
def module_outputs(network, images):
    """Every module's output (the network itself and its containers included), in the order they run."""
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o.detach().double().numpy()))
             for m in network.modules()]
    with torch.no_grad():
        network.train()(images)
    for hook in hooks:
        hook.remove()
    return outputs


def pearson_by_loops(rows):
    """Pearson correlation of every pair of rows, NaN where a row is constant, each entry by its formula."""
    count = len(rows)
    matrix = np.empty((count, count))
    for i in range(count):
        for j in range(count):
            a, b = rows[i] - rows[i].mean(), rows[j] - rows[j].mean()
            denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
            matrix[i, j] = float((a * b).sum()) / denominator if denominator > 0 else math.nan
    return matrix


def pearson_vectorised(rows):
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred * centred).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (centred @ centred.T) / np.outer(norms, norms)


def meco_by_definition(network, images, pearson=pearson_by_loops, draw=None):
    """The official definition: for each module output, the first image's (channels, positions) matrix; its
    correlation matrix with NaN set to 0; the least real part of its eigenvalues (general solver); summed.
    ``draw(channels)`` gives (rows, factor) for MeCo_opt."""
    total = 0.0
    for output in module_outputs(network, images):
        first = output[0]
        rows = first.reshape(first.shape[0], -1)
        factor = 1.0
        if draw is not None and rows.shape[1] > 1:
            picked, factor = draw(rows.shape[0])
            rows = rows if picked is None else rows[picked]
        correlation = np.nan_to_num(pearson(rows), nan=0.0)
        total += factor * min(np.linalg.eigvals(correlation).real)
    return total


class TinyConvNet(nn.Module):
    """Two conv layers (the first with one all-zero filter: a constant channel) and a classifier followed by a
    ReLU on (N, F) logits, which SWAP leaves out."""

    def __init__(self, widths=(4, 5)):
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.features = nn.Sequential(nn.Conv2d(3, widths[0], 3, padding=1), nn.BatchNorm2d(widths[0]), nn.ReLU(),
                                      nn.Conv2d(widths[0], widths[1], 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[1], 2)
        self.logits_relu = nn.ReLU()
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
            self.features[0].weight[0].zero_()
            self.features[0].bias[0] = 0.5

    def forward(self, x):
        return self.logits_relu(self.classifier(torch.flatten(self.pool(self.features(x)), 1)))


def tiny_batch(size, side=6, seed=5):
    images = torch.randn(size, 3, side, side, generator=torch.Generator().manual_seed(seed))
    return Batch(images, torch.zeros(size, dtype=torch.int64), f"tiny{size}")


def test_meco_equals_its_definition_on_a_tiny_network():
    network, batch = TinyConvNet(), tiny_batch(3)
    expected = meco_by_definition(network, batch.images[:1])
    assert MeCo().score_network(network, batch.take(1), None) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_meco_uses_the_first_image_with_batch_statistics_of_the_whole_batch():
    """batch_size 3: BatchNorm normalises over three images, the correlation is the first image's."""
    network, batch = TinyConvNet(), tiny_batch(3)
    expected = meco_by_definition(network, batch.images)
    assert MeCo(batch_size=3).score_network(network, batch, None) == pytest.approx(expected, rel=1e-9)
    alone = MeCo().score_network(network, batch.take(1), None)
    assert not math.isclose(alone, expected, rel_tol=1e-6)  # the BatchNorm statistics do matter


def test_meco_equals_its_definition_on_a_nas_bench_201_network():
    space = NatsTopologySpace(dataset="cifar10")
    network = space.build(space.decode(CELL))
    initialise(network, "kaiming", seed=0)
    batch = synthetic_batch(space.input_shape, space.num_classes, size=1)
    expected = meco_by_definition(network, batch.images, pearson=pearson_vectorised)
    assert MeCo().score_network(network, batch, space) == pytest.approx(expected, rel=1e-7)


def test_meco_opt_samples_channels_with_its_seed_and_scales_by_channels_over_8():
    """A network that is one 16-channel convolution: one term, from the 8 channels drawn by the documented
    generator (randperm of a CPU generator seeded with `seed`), times 16 / 8."""
    generator = torch.Generator().manual_seed(0)
    network = nn.Conv2d(3, 16, 3, padding=1)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    batch = tiny_batch(1, side=5)
    for seed in (0, 1):
        draws = torch.Generator().manual_seed(seed)

        def draw(channels):
            return torch.randperm(channels, generator=draws)[:8].numpy(), channels / 8

        expected = meco_by_definition(network, batch.images, draw=draw)
        assert MeCoOpt(seed=seed).score_network(network, batch, None) == pytest.approx(expected, rel=1e-9)
    assert MeCoOpt(seed=0).score_network(network, batch, None) != MeCoOpt(seed=1).score_network(network, batch, None)


def test_meco_opt_keeps_every_channel_of_small_layers():
    """Outputs of at most 8 channels are not sampled: on such a network MeCo_opt is MeCo."""
    network, batch = TinyConvNet(widths=(4, 8)), tiny_batch(2)
    assert MeCoOpt().score_network(network, batch.take(1), None) == MeCo().score_network(network, batch.take(1), None)


# ---------------------------------------------------------------------------------------------------- SWAP
def relu_activations(network, images):
    """Outputs of the ReLU modules whose input is a feature map, each (images, units)."""
    outputs = []
    hooks = [m.register_forward_hook(
        lambda m, i, o: outputs.append(o.detach().reshape(len(o), -1)) if i[0].dim() == 4 else None)
        for m in network.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        network.train()(images)
    for hook in hooks:
        hook.remove()
    return outputs


def swap_by_definition(network, images):
    """Number of distinct tuples (sign of unit u on image 1, ..., on image N) over all units, with a set."""
    patterns = set()
    for activations in relu_activations(network, images):
        signs = activations.sign().T.tolist()
        for unit in signs:
            patterns.add(tuple(unit))
    return len(patterns)


@pytest.mark.parametrize("size", [5, 70])  # 70 images: the codes take two integers per unit
def test_swap_equals_its_definition_on_a_tiny_network(size):
    network, batch = TinyConvNet(), tiny_batch(size)
    expected = swap_by_definition(network, batch.images)
    assert 1 < expected <= 4 * 36 + 5 * 36  # at most one pattern per unit
    assert SWAP(batch_size=size).score_network(network, batch, None) == expected


def test_swap_equals_the_official_formula_on_a_nas_bench_201_network():
    """Official: unique rows of sign(concatenated activations) transposed to (units, images)."""
    space = NatsTopologySpace(dataset="cifar10")
    network = space.build(space.decode(CELL))
    initialise(network, "kaiming", seed=0)
    batch = synthetic_batch(space.input_shape, space.num_classes, size=10)
    activations = torch.cat(relu_activations(network, batch.images), dim=1)
    expected = torch.unique(torch.sign(activations).T, dim=0).shape[0]
    assert 1 < expected <= 2**10
    assert SWAP(batch_size=10).score_network(network, batch, space) == expected


def test_regularised_swap_multiplies_by_the_size_factor():
    network, batch = TinyConvNet(), tiny_batch(5)
    thousands = sum(p.numel() for p in network.parameters()) / 1e3
    raw = SWAP(batch_size=5).score_network(network, batch, None)
    regularised = SWAP(batch_size=5, regularise=True, mu=0.05, sigma=0.01).score_network(network, batch, None)
    assert regularised == pytest.approx(raw * math.exp(-((thousands - 0.05) ** 2) / 0.01), rel=1e-12)


def test_regularised_swap_uses_the_spaces_size_range():
    space = NatsTopologySpace(dataset="cifar10")
    assert default_regularisation(space) == (1531.546, (1531.546 - 73.306) ** 2)
    network = space.build(space.decode(CELL))
    batch = synthetic_batch(space.input_shape, space.num_classes, size=16)
    thousands = space.cost(space.decode(CELL)).params_m * 1e3
    factor = math.exp(-(((thousands - 1531.546) / (1531.546 - 73.306)) ** 2))
    raw = SWAP().score_network(network, batch, space)
    assert SWAP(regularise=True).score_network(network, batch, space) == pytest.approx(raw * factor, rel=1e-9)


def test_regularised_swap_needs_mu_and_sigma_on_an_unknown_space():
    network, batch = TinyConvNet(), tiny_batch(5)
    with pytest.raises(NasxError, match="swap.mu"):
        SWAP(batch_size=5, regularise=True).score_network(network, batch, None)


def test_size_ranges_are_the_benchmark_tables(data_dir):
    with gzip.open(data_dir / "nats_tss.csv.gz", "rt") as handle:
        rows = list(csv.DictReader(handle))
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        sizes = [float(row[f"{dataset}_params_M"]) * 1e3 for row in rows]
        assert SIZE_RANGE["nats-tss", dataset] == pytest.approx((min(sizes), max(sizes)), abs=1e-9)


def test_swap_of_a_network_without_relu_on_feature_maps_is_zero():
    """No unit at all, hence no pattern: the only ReLU reads (N, F) values, which the official hook skips."""
    network = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten(), nn.ReLU())
    assert SWAP(batch_size=4).score_network(network, tiny_batch(4), None) == 0.0


# ---------------------------------------------------------------------------------------------------- spaces
def space_of(name):
    from nasx.plugins import Plugins

    return Plugins().get("space", name)(dataset="cifar10")


@pytest.mark.parametrize("space_name, arch", [
    ("nats-tss", CELL),
    ("nats-tss", "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|"),
    ("nats-sss", "8:16:24:32:64"),
    ("nb101", "input;conv3x3-bn-relu:0;maxpool3x3:0,1;output:1,2"),
])
def test_every_space_scores_finitely(space_name, arch):
    space = space_of(space_name)
    network = space.build(space.decode(arch))
    initialise(network, "kaiming", seed=0)
    batch = synthetic_batch(space.input_shape, space.num_classes, size=8)
    for proxy in (MeCo(), MeCoOpt(), SWAP(batch_size=8), SWAP(batch_size=8, regularise=True)):
        score = proxy.score_network(network, batch.take(proxy.batch_size), space)
        assert math.isfinite(score) and score > 0, (proxy.name, score)
    assert SWAP(batch_size=8).score_network(network, batch, space) <= 2**8


def test_a_cell_without_a_path_gets_the_documented_values():
    """Every cell outputs zeros: SWAP sees a single pattern (every unit inactive on every image), 1; MeCo keeps
    only the stem's and the reduction blocks' terms, a finite number."""
    space = NatsTopologySpace(dataset="cifar10")
    network = space.build(space.decode(DISCONNECTED))
    initialise(network, "kaiming", seed=0)
    batch = synthetic_batch(space.input_shape, space.num_classes, size=16)
    assert SWAP().score_network(network, batch, space) == 1.0
    for proxy in (MeCo(), MeCoOpt()):
        assert math.isfinite(proxy.score_network(network, batch.take(1), space))
