"""AZ-NAS's four components and VKDNW: the contract, scores on every space with networks, each score against a
plainly written computation of its definition, and the degenerate cells."""

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from nasx.data import Batch, synthetic_batch
from nasx.errors import NasxError
from nasx.plugins import Plugins
from nasx.torch_utils import initialise
from nasx_proxies.aznas import AZComplexity, AZExpressivity, AZProgressivity, AZTrainability, fan_in_scaled
from nasx_proxies.cost import Flops
from nasx_proxies.vkdnw import VKDNW, VKDNWSingle

NO_PATH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
IDENTITY = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # every cell passes its input through
NETWORK_PROXIES = [AZExpressivity, AZProgressivity, AZTrainability, VKDNW, VKDNWSingle]


def test_directions_and_needs():
    for proxy_class in [*NETWORK_PROXIES, AZComplexity]:
        assert proxy_class.higher_is_better, proxy_class.name  # the official code ranks every one ascending
        assert not proxy_class.needs_labels, proxy_class.name
    assert not AZComplexity.needs_network
    assert [p.needs_gradients for p in NETWORK_PROXIES] == [False, False, True, True, True]
    assert all(p.needs_data for p in NETWORK_PROXIES)


@pytest.mark.parametrize("space_name, archs, batch_size", [
    ("nats-tss", ["|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
                  "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|"], 8),
    ("nats-sss", ["8:16:24:32:64", "64:8:32:16:48"], 8),
    ("nb101", ["input;conv3x3-bn-relu:0;maxpool3x3:0,1;output:1,2"], 2),
])
@pytest.mark.parametrize("proxy_class", NETWORK_PROXIES)
def test_scores_cells_of_every_space(space_name, archs, batch_size, proxy_class):
    space = Plugins().get("space", space_name)(dataset="cifar10")
    batch = synthetic_batch(space.input_shape, space.num_classes).take(batch_size)
    proxy = proxy_class(batch_size=batch_size)
    for arch in archs:
        network = space.build(space.decode(arch))
        initialise(network, "kaiming", seed=0)
        assert math.isfinite(proxy.score_network(network, batch, space)), (proxy.name, arch)


def test_nb101_blocks_are_its_cells_with_each_pooling_joined_to_the_next():
    from nasx_proxies.aznas import primary_blocks

    space = Plugins().get("space", "nb101")(dataset="cifar10")
    network = space.build(space.decode("input;conv3x3-bn-relu:0;maxpool3x3:0,1;output:1,2"))
    stem, blocks = primary_blocks(network, "az_expressivity")
    assert stem is network.layers[0] and len(blocks) == 9  # 3 stacks of 3 cells
    assert [len(block) for block in blocks] == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert isinstance(blocks[3][0], nn.MaxPool2d) and isinstance(blocks[6][0], nn.MaxPool2d)


def test_complexity_is_the_benchmark_flops(space):
    genotype = space.sample(random.Random(3))
    assert AZComplexity().score_genotype(space, genotype) == Flops().score_genotype(space, genotype)


def test_fan_in_scaling_gives_the_official_kaiming_fan_in_draw(space):
    """nasx draws Kaiming-normal fan-out weights module by module from one seeded generator; the same generator
    drawing Kaiming-normal fan-in weights (AZ-NAS's and VKDNW's init) gives the rescaled weights."""
    network = space.build(space.sample(random.Random(4)))
    initialise(network, "kaiming", seed=5)
    official = space.build(space.sample(random.Random(4)))
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in official.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu", generator=generator)
    scaled = dict(fan_in_scaled(network, True).named_parameters())
    for name, weight in official.named_parameters():
        if name.endswith("weight") and weight.dim() > 1:
            assert torch.allclose(scaled[name], weight, rtol=1e-6, atol=0), name
    assert fan_in_scaled(network, False) is network


# ---------------------------------------------------------------------------------------------------------------
# AZ-NAS against its definition


def _entropy_of_normalised_eigenvalues(feature: np.ndarray) -> float:
    """Straight from the paper: the channel covariance over every image and position, its eigenvalues as shares."""
    rows = feature.transpose(0, 2, 3, 1).reshape(-1, feature.shape[1])
    covariance = np.cov(rows, rowvar=False, bias=True)
    eigenvalues = np.linalg.eigvalsh(covariance)
    total = sum(eigenvalues)
    return sum(-(v / total) * math.log(v / total + 1e-8) for v in eigenvalues)


def test_expressivity_and_progressivity_from_the_feature_maps(space):
    """Feature maps caught by hooks on the stem and on every cell and reduction block of a plain forward pass."""
    network = space.build(space.decode(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")).double()
    initialise(network, "kaiming", seed=1)
    images = synthetic_batch(space.input_shape, space.num_classes).take(4).images.double()
    features = []
    hooks = [m.register_forward_hook(lambda m, i, o: features.append(o.detach().numpy()))
             for m in [network.stem, *network.cells]]
    with torch.no_grad():
        network.train()(images)
    for hook in hooks:
        hook.remove()
    assert len(features) == 1 + 17  # stem, 15 cells, 2 reduction blocks
    entropies = [_entropy_of_normalised_eigenvalues(f) for f in features]
    batch = Batch(images, torch.zeros(4, dtype=torch.long), "double")
    assert AZExpressivity(fan_in=False).score_network(network, batch, space) == pytest.approx(sum(entropies), rel=1e-9)
    progress = min(entropies[i + 1] - entropies[i] for i in range(len(entropies) - 1))
    assert AZProgressivity(fan_in=False).score_network(network, batch, space) == pytest.approx(progress, rel=1e-7,
                                                                                              abs=1e-9)


class Blocks(nn.Module):
    """A network of the stem + cells shape that AZ-NAS reads: a plain block, a stride-2 block, then a head."""

    def __init__(self, identity_last: bool = False):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
        blocks = [nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)),
                  nn.Sequential(nn.ReLU(), nn.Conv2d(4, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3))]
        self.cells = nn.Sequential(*blocks, *([nn.Identity()] if identity_last else []))
        self.classifier = nn.Linear(3, 5)

    def forward(self, x):
        return self.classifier(self.cells(self.stem(x)).mean(dim=(2, 3)))


def test_trainability_from_full_block_jacobians():
    """For each block (last first), the whole Jacobian J of its output with respect to its input (BatchNorm couples
    the images, so J is over the whole batch), g_in = Jᵀ g_out for seeded random signs g_out; with stride 2 each
    2x2 patch of g_in is folded into 4 channels; M[i, o] = mean over images and output positions of
    g_in[i] g_out[o]; score -s - 1/(s + 1e-6) + 2 with s the largest singular value of M, averaged."""
    torch.manual_seed(0)
    network = Blocks().double()
    images = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        inputs = [network.stem.train()(images)]
        for block in network.cells:
            inputs.append(block.train()(inputs[-1]))
    generator = torch.Generator().manual_seed(7)
    scores = []
    for index in reversed(range(len(network.cells))):
        block, block_in, block_out = network.cells[index], inputs[index], inputs[index + 1]
        g_out = (torch.randint(0, 2, tuple(block_out.shape), generator=generator) * 2 - 1).double()
        jacobian = torch.autograd.functional.jacobian(lambda x: block.train()(x), block_in)
        g_in = (jacobian.reshape(block_out.numel(), block_in.numel()).T @ g_out.reshape(-1)).reshape(block_in.shape)
        g_in, g_out = g_in.numpy(), g_out.numpy()
        n, c_out, h_out, w_out = g_out.shape
        stride = block_in.shape[2] // h_out
        c_in = block_in.shape[1] * stride * stride
        matrix = np.zeros((c_in, c_out))
        for b in range(n):
            for y in range(h_out):
                for x in range(w_out):
                    folded = [g_in[b, c, y * stride + dy, x * stride + dx]
                              for c in range(block_in.shape[1]) for dy in range(stride) for dx in range(stride)]
                    matrix += np.outer(folded, g_out[b, :, y, x])
        largest = np.linalg.svd(matrix / (n * h_out * w_out), compute_uv=False).max()
        scores.append(-largest - 1 / (largest + 1e-6) + 2)
    batch = Batch(images, torch.zeros(2, dtype=torch.long), "tiny")
    score = AZTrainability(fan_in=False, projection_seed=7).score_network(network, batch, None)
    assert score == pytest.approx(float(np.mean(scores)), rel=1e-9)


def test_an_identity_block_makes_trainability_minus_infinity():
    network = Blocks(identity_last=True)
    batch = Batch(torch.randn(2, 3, 6, 6), torch.zeros(2, dtype=torch.long), "tiny")
    assert AZTrainability().score_network(network, batch, None) == -math.inf


def test_a_network_without_blocks_is_a_one_line_error():
    network = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(32, 4))
    batch = Batch(torch.randn(2, 3, 6, 6), torch.zeros(2, dtype=torch.long), "tiny")
    with pytest.raises(NasxError, match="stem and a sequence of blocks") as raised:
        AZExpressivity().score_network(network, batch, None)
    assert "\n" not in str(raised.value)


def test_degenerate_cells_of_nats_tss(space, batch):
    """No path from input to output: the features after the first cell are zero, so their eigenvalue shares are
    0/0 (NaN, as the official code, which then ranks them last); trainability stays a number; the Fisher
    information of such a network has at most one non-zero eigenvalue (the classifier's bias), so every decile is
    0 and VKDNW is 0. Cells that pass their input through make every cell's Jacobian the identity: -inf."""
    small = batch.take(8)
    network = space.build(space.decode(NO_PATH))
    initialise(network, "kaiming", seed=0)
    assert math.isnan(AZExpressivity(batch_size=8).score_network(network, small, space))
    assert math.isnan(AZProgressivity(batch_size=8).score_network(network, small, space))
    trainability = AZTrainability(batch_size=8).score_network(network, small, space)
    assert isinstance(trainability, float) and not math.isnan(trainability), trainability
    assert VKDNW(batch_size=8).score_network(network, small, space) == 0.0
    tensors = len([p for p in network.parameters() if p.numel()])
    assert VKDNWSingle(batch_size=8).score_network(network, small, space) == float(tensors)
    identity = space.build(space.decode(IDENTITY))
    initialise(identity, "kaiming", seed=0)
    assert AZTrainability(batch_size=8).score_network(identity, small, space) == -math.inf


# ---------------------------------------------------------------------------------------------------------------
# VKDNW against its definition


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                                      nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.classifier = nn.Linear(4, 5)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def _vkdnw_by_hand(network, images, tensors):
    """Per image and class, one backward pass of that logit (evaluation mode) gives the derivative with respect to
    the first element of each sampled tensor; L is built entry by entry and checked against the covariance."""
    network.eval()
    weights = [p for p in network.parameters() if p.numel()][: tensors or None]
    alpha, classes = 0.04998779296875, 5  # 0.05 in float16, as the official code writes it
    fisher = np.zeros((len(weights), len(weights)))
    for image in images:
        logits = network(image[None])[0]
        jacobian = np.array([[float(g.reshape(-1)[0]) for g in torch.autograd.grad(logits[c], weights,
                                                                                     retain_graph=True)]
                             for c in range(classes)])
        p = (torch.softmax(logits.detach(), 0) * (1 - alpha) + alpha / classes).numpy()
        q = [1 - sum(p[: j + 1]) for j in range(classes)]
        q[-1] = 0.0
        d = [math.sqrt(p[j] * q[j] / (q[j - 1] if j else 1.0)) for j in range(classes)]
        lower = np.zeros((classes, classes))
        for i in range(classes):
            for j in range(i + 1):
                lower[i, j] = d[j] if i == j else (-p[i] * d[j] / q[j] if q[j] else 0.0)
        assert np.allclose(lower @ lower.T, np.diag(p) - np.outer(p, p), atol=1e-12)
        projected = lower @ jacobian  # L J, as the official code multiplies
        fisher += projected.T @ projected / len(images)
    eigenvalues = np.linalg.eigvalsh(fisher)
    deciles = np.quantile(eigenvalues, [k / 10 for k in range(1, 10)])
    shares = deciles / (np.abs(deciles).sum() + 1e-10)
    network.train()
    return -sum(t * math.log(t + 1e-10) for t in shares), len([p for p in network.parameters() if p.numel()])


@pytest.mark.parametrize("tensors", [0, 5])
def test_vkdnw_from_per_image_logit_gradients(tensors):
    torch.manual_seed(3)
    network = Small().double()
    with torch.no_grad():  # running statistics away from (0, 1), so that evaluation mode matters
        for module in network.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    images = torch.randn(6, 3, 6, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    batch = Batch(images, torch.zeros(6, dtype=torch.long), "small")
    expected, layers = _vkdnw_by_hand(network, images, tensors)
    assert VKDNW(fan_in=False, tensors=tensors).score_network(network, batch, None) == pytest.approx(expected, rel=1e-9)
    single = VKDNWSingle(fan_in=False, tensors=tensors).score_network(network, batch, None)
    assert single == pytest.approx(layers + expected, rel=1e-12)
    assert network.training  # its mode given back


def test_vkdnw_jacobian_per_image_equals_all_at_once():
    """Many classes: the per-image Jacobians are taken one image (or a few) at a time, for bounded memory, with the
    same result as all images at once."""
    from nasx_proxies import vkdnw

    space = Plugins().get("space", "nats-tss")(dataset="ImageNet16-120")
    network = space.build(space.decode("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|"
                                       "nor_conv_3x3~1|avg_pool_3x3~2|"))
    initialise(network, "kaiming", seed=0)
    network.eval()
    images = synthetic_batch(space.input_shape, space.num_classes).take(5).images
    whole = vkdnw.sampled_weight_jacobian(network, images, 16, {}, images_at_once=0)
    assert whole.shape == (5, 120, 16)
    for images_at_once in (1, 2):
        pieces = vkdnw.sampled_weight_jacobian(network, images, 16, {}, images_at_once=images_at_once)
        # float32 sums taken in another order: equal to about 1e-7 of the largest entry
        assert torch.allclose(pieces, whole, rtol=1e-5, atol=1e-6 * float(whole.abs().max())), images_at_once
    assert vkdnw.IMAGES_AT_ONCE == 1


def test_vkdnw_takes_one_image_at_a_time_when_all_at_once_runs_out_of_memory(monkeypatch):
    """A GPU shared by several worker processes can run out of memory for all images at once: the Jacobian is then
    taken one image at a time, with the same result, instead of the cell scoring NaN."""
    import torch.func
    from nasx_proxies import vkdnw

    space = Plugins().get("space", "nats-tss")(dataset="cifar10")
    network = space.build(space.decode("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|"
                                       "nor_conv_3x3~1|avg_pool_3x3~2|"))
    initialise(network, "kaiming", seed=0)
    network.eval()
    images = synthetic_batch(space.input_shape, space.num_classes).take(4).images
    expected = vkdnw.sampled_weight_jacobian(network, images, 8, {}, images_at_once=1)

    real_vmap, batch_sizes = torch.func.vmap, []

    def vmap_short_of_memory(function, *args, **kwargs):
        mapped = real_vmap(function, *args, **kwargs)

        def call(batch, *rest):
            batch_sizes.append(len(batch))
            if len(batch) > 1:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return mapped(batch, *rest)
        return call

    monkeypatch.setattr(torch.func, "vmap", vmap_short_of_memory)
    jacobian = vkdnw.sampled_weight_jacobian(network, images, 8, {}, images_at_once=0)
    assert batch_sizes == [4, 1, 1, 1, 1]  # all at once first, then image by image
    assert torch.equal(jacobian, expected)


def test_vkdnw_fan_in_option_scores_the_rescaled_network(space, batch):
    network = space.build(space.sample(random.Random(6)))
    initialise(network, "kaiming", seed=0)
    small = batch.take(4)
    rescaled = VKDNW(batch_size=4, fan_in=False).score_network(fan_in_scaled(network, True), small, space)
    assert VKDNW(batch_size=4).score_network(network, small, space) == pytest.approx(rescaled, rel=1e-5)
