"""zico, gradsign, zen and layers against their definitions, written out here the plain way: per-weight loops on a
tiny network, the official codes' procedures (one .backward() per mini-batch or per image, .grad read into numpy)
on NATS-Bench cells, closed formulas where the network is simple enough to have one."""

import math
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional

from nasx.data import Batch, synthetic_batch
from nasx.errors import NasxError
from nasx.evaluator import Evaluator
from nasx.plugins import Plugins
from nasx.torch_utils import initialise
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.gradsign import GradSign
from nasx_proxies.layers import Layers
from nasx_proxies.zen import Zen, _pre_pooling_features
from nasx_proxies.zico import ZiCo

CELLS = {
    "convolutions everywhere":
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "mixed": "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|",
    # node 2's outgoing edge is none: the convolutions into it are dead (no gradient reaches them)
    "dead node behind convolutions":
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",
    # node 1 has no input (zeros) and feeds convolutions
    "node without inputs": "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
}
NO_PATH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def space():
    return NatsTopologySpace(dataset="ImageNet16-120")  # 16 x 16 images: the same networks, four times cheaper


@pytest.fixture(scope="module")
def small_batch(space):
    return synthetic_batch(space.input_shape, space.num_classes, size=8, seed=3)


def build(space, arch, seed=0):
    network = space.build(space.decode(arch))
    initialise(network, "kaiming", seed=seed)
    return network


def test_directions_and_needs():
    for proxy in (ZiCo, GradSign):
        assert proxy.higher_is_better and proxy.needs_data and proxy.needs_labels and proxy.needs_gradients
    assert Zen.higher_is_better and Zen.needs_network and not (Zen.needs_data or Zen.needs_gradients)
    assert Layers.higher_is_better and not Layers.needs_network


# ---------------------------------------------------------------------------------------------------------- zico


class Tiny(nn.Module):
    """conv -> BN -> ReLU -> global pool -> linear, a few dozen weights: small enough for loops over weights."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 4)
        with torch.no_grad():
            for p in (self.conv.weight, self.fc.weight, self.fc.bias):
                p.copy_(torch.randn(p.shape, generator=generator))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


@pytest.fixture
def tiny_batch():
    generator = torch.Generator().manual_seed(1)
    return Batch(torch.randn(9, 2, 5, 5, generator=generator), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0]), "tiny")


def test_zico_of_a_tiny_network_by_loops_over_weights(tiny_batch):
    """Three mini-batches of 3 images; for each weight, mean |g| / std(g) over the three, summed per layer, logged."""
    network = Tiny()
    gradients = []  # per mini-batch: (conv gradient, fc gradient), as float lists
    for start in (0, 3, 6):
        piece = slice(start, start + 3)
        loss = functional.cross_entropy(network.train()(tiny_batch.images[piece]), tiny_batch.labels[piece])
        conv, fc = torch.autograd.grad(loss, [network.conv.weight, network.fc.weight])
        gradients.append((conv.double().reshape(-1).tolist(), fc.double().reshape(-1).tolist()))
    expected = 0.0
    for layer in (0, 1):
        ratio_sum = 0.0
        for w in range(len(gradients[0][layer])):
            values = [per_batch[layer][w] for per_batch in gradients]
            mean = sum(values) / 3
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
            if std > 0:
                ratio_sum += sum(abs(v) for v in values) / 3 / std
        expected += math.log(ratio_sum)
    assert ZiCo(splits=3).score_network(network, tiny_batch, None) == pytest.approx(expected, rel=1e-9)


def official_zico(network, batch, splits=2) -> float:
    """SLDGroup/ZiCo's getzico / caculate_zico: .backward() per mini-batch (gradients zeroed in between), the .grad
    of every conv and linear layer that has one, numpy std and mean over the mini-batches."""
    layers = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    grads = {index: [] for index in range(len(layers))}
    part = len(batch) // splits
    network.train()
    for start in range(0, len(batch), part):
        network.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(network(batch.images[start:start + part]), batch.labels[start:start + part])
        loss.backward()
        for index, layer in enumerate(layers):
            if layer.weight.grad is not None:
                grads[index].append(layer.weight.grad.detach().reshape(-1).double().numpy().copy())
    network.zero_grad(set_to_none=True)
    total = 0.0
    for per_batch in grads.values():
        if not per_batch:
            continue
        stacked = np.array(per_batch)
        std = np.std(stacked, axis=0)
        varies = np.nonzero(std)[0]
        ratio_sum = np.sum(np.mean(np.abs(stacked), axis=0)[varies] / std[varies])
        if ratio_sum != 0:
            total += np.log(ratio_sum)
    return float(total)


@pytest.mark.parametrize("arch", CELLS.values(), ids=CELLS.keys())
def test_zico_follows_the_official_procedure_on_cells(space, small_batch, arch):
    expected = official_zico(build(space, arch), small_batch)
    assert ZiCo(batch_size=8).score_network(build(space, arch), small_batch, space) == pytest.approx(expected, rel=1e-9)


def test_zico_refuses_a_batch_that_does_not_split_evenly(space, small_batch):
    with pytest.raises(NasxError, match="multiple of 3"):
        ZiCo(splits=3).score_network(build(space, CELLS["mixed"]), small_batch, space)
    with pytest.raises(NasxError, match="zico.splits"):
        ZiCo(splits=1)


# ------------------------------------------------------------------------------------------------------ gradsign


def test_gradsign_of_a_linear_classifier_by_its_formula():
    """For logits W x and cross-entropy, image i's gradient is (p_i - onehot(y_i)) x_i^T, whose sign is
    s_ik * sign(x_ij) with s_ik = -1 for the true class k = y_i and +1 for the others (0 < p < 1)."""
    generator = torch.Generator().manual_seed(4)
    images = torch.randn(7, 1, 2, 3, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 0, 0, 2])
    network = nn.Sequential(nn.Flatten(), nn.Linear(6, 4, bias=False))
    x = images.reshape(7, 6)
    expected = 0
    for k in range(4):
        for j in range(6):
            expected += abs(sum((-1 if labels[i] == k else 1) * int(torch.sign(x[i, j])) for i in range(7)))
    assert GradSign().score_network(network, Batch(images, labels, "linear"), None) == float(expected)


def official_gradsign(network, batch) -> float:
    """cmu-catalyst/GradSign's get_grad_conflict: per image zero_grad, forward of that image, backward; the .grad of
    every conv and linear weight (zeros where there is none) flattened into numpy; |sum of signs|, nansum."""
    layers = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    network.train()
    rows = []
    for index in range(len(batch)):
        network.zero_grad(set_to_none=True)
        one = slice(index, index + 1)
        functional.cross_entropy(network(batch.images[one]), batch.labels[one]).backward()
        rows.append(np.concatenate([
            (layer.weight.grad if layer.weight.grad is not None else torch.zeros_like(layer.weight))
            .detach().numpy().reshape(-1) for layer in layers]))
    network.zero_grad(set_to_none=True)
    return float(np.nansum(np.abs(np.sign(np.stack(rows)).sum(axis=0))))


@pytest.mark.parametrize("arch", CELLS.values(), ids=CELLS.keys())
def test_gradsign_follows_the_official_procedure_on_cells(space, small_batch, arch):
    batch = small_batch.take(5)
    expected = official_gradsign(build(space, arch), batch)
    assert expected > 0
    assert GradSign(batch_size=5).score_network(build(space, arch), batch, space) == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------------------------------------- zen


class InputShape:
    input_shape = (2, 5, 5)


def test_zen_of_a_one_layer_network_by_its_formula():
    """Tiny: F = ReLU(BN(conv x)). Zen's draws, in its documented order (conv weight, fc weight, images, noise), from
    its seed; BatchNorm statistics written out: batch statistics (biased variance) normalise, and the running
    variance after two passes from 1 with momentum 0.1 is 0.81 + 0.09 v1 + 0.1 v2 (unbiased batch variances)."""
    network, proxy = Tiny(), Zen(batch_size=6)
    generator = torch.Generator().manual_seed(proxy._draw_seed(network))
    conv_weight = torch.randn(network.conv.weight.shape, generator=generator).double()
    torch.randn(network.fc.weight.shape, generator=generator)  # the classifier: drawn, but after the features
    images = torch.randn((6, 2, 5, 5), generator=generator).double()
    mixed = images + 0.01 * torch.randn((6, 2, 5, 5), generator=generator).double()

    def features(x):
        z = functional.conv2d(x, conv_weight, padding=1)
        normalised = (z - z.mean(dim=(0, 2, 3), keepdim=True)) / torch.sqrt(
            z.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + network.bn.eps)
        return torch.relu(normalised), z.var(dim=(0, 2, 3), unbiased=True)

    first, v1 = features(images)
    second, v2 = features(mixed)
    running_var = 0.81 + 0.09 * v1 + 0.1 * v2
    expected = math.log(float((first - second).abs().sum(dim=(1, 2, 3)).mean())) + math.log(
        math.sqrt(float(running_var.mean())))
    assert proxy.score_network(network, None, InputShape()) == pytest.approx(expected, rel=1e-5)


def test_zen_reads_the_input_of_the_global_pooling(space):
    network = build(space, CELLS["mixed"]).train()
    images = torch.randn((3, *space.input_shape), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = network.head(network.cells(network.stem(images)))  # what network.pool averages
        assert torch.equal(_pre_pooling_features(network, images), expected)


def test_zen_reads_the_last_nb101_cell_which_torch_mean_pools():
    space = Plugins().get("space", "nb101")(dataset="cifar10")
    network = space.build(space.decode("input;conv3x3-bn-relu:0;output:1")).train()
    images = torch.randn((2, *space.input_shape), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected = images
        for layer in network.layers:
            expected = layer(expected)
        assert torch.equal(_pre_pooling_features(network, images), expected)


def test_zen_leaves_weights_and_statistics_alone_and_depends_on_the_initialisation(space):
    network = build(space, CELLS["mixed"])
    before = {name: value.clone() for name, value in network.state_dict().items()}
    first = Zen(batch_size=4).score_network(network, None, space)
    assert all(torch.equal(before[name], value) for name, value in network.state_dict().items())
    assert Zen(batch_size=4).score_network(network, None, space) == first
    # another initialisation (another repeat or init seed) gives other draws; the seed option too
    assert Zen(batch_size=4).score_network(build(space, CELLS["mixed"], seed=1), None, space) != first
    assert Zen(batch_size=4, seed=1).score_network(network, None, space) != first
    # init=network keeps the evaluator's weights instead of Zen's N(0, 1)
    assert Zen(batch_size=4, init="network").score_network(network, None, space) != first


# -------------------------------------------------------------------------------------------------------- layers


@pytest.mark.parametrize("arch", [*CELLS.values(), NO_PATH])
def test_layers_on_nats_tss_is_21_plus_45_per_convolution(space, arch):
    """Stem conv + BN (3 tensors), two reduction blocks (2 x (conv + BN) + shortcut conv = 7 each), final BN (2),
    classifier (2); every convolution edge of the 15 cells is a conv + BN (3 tensors)."""
    convolutions = arch.count("conv")
    assert Layers().score_genotype(space, space.decode(arch)) == 21 + 15 * 3 * convolutions


@pytest.mark.parametrize("space_name, arch", [("nats-sss", "8:16:24:32:64"),
                                              ("nb101", "input;conv3x3-bn-relu:0;maxpool3x3:0,1;output:1,2")])
def test_layers_counts_weight_tensors_in_other_spaces(space_name, arch):
    space = Plugins().get("space", space_name)(dataset="cifar10")
    network = space.build(space.decode(arch))
    expected = 0
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            expected += 1 + (module.bias is not None)
        elif isinstance(module, nn.BatchNorm2d):
            expected += 2 * module.affine
    assert expected > 0 and Layers().score_genotype(space, space.decode(arch)) == expected


# ---------------------------------------------------------------------------------------------- spaces and edges


@pytest.mark.parametrize("space_name", ["nats-tss", "nats-sss", "nb101"])
def test_each_proxy_scores_cells_of_each_space(space_name):
    space = Plugins().get("space", space_name)(dataset="cifar10")
    batch = synthetic_batch(space.input_shape, space.num_classes, size=8)
    proxies = [ZiCo(batch_size=8), GradSign(batch_size=3), Zen(batch_size=4), Layers()]
    evaluator = Evaluator(space, proxies, batch)
    rng = random.Random(5)
    for _ in range(2):
        evaluation = evaluator.evaluate(space.sample(rng))
        assert not evaluation.errors
        assert all(isinstance(s, float) and math.isfinite(s) for s in evaluation.scores.values()), evaluation.scores


def test_a_cell_without_a_path_gives_the_documented_values(space, batch):
    """No path from input to output: no gradient varies or agrees (zico 0, gradsign 0: the lowest values), the
    features ignore the input (zen log 0 = -inf, as in the official code); layers counts the fixed parts."""
    proxies = [ZiCo(batch_size=8), GradSign(batch_size=4), Zen(batch_size=4), Layers()]
    scores = Evaluator(space, proxies, batch).evaluate(space.decode(NO_PATH)).scores
    assert scores == {"zico": 0.0, "gradsign": 0.0, "zen": -math.inf, "layers": 21.0}
