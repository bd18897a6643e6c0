"""The proxies of the zero-cost literature against their definitions, on networks small enough to compute
the definition directly."""

import copy
import math
import random

import pytest
import torch
from torch import nn

from nasx.data import Batch, synthetic_batch
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.cost import Flops, Params
from nasx_proxies.epsilon import Epsilon
from nasx_proxies.gradients import Fisher, Grasp, GradNorm, Snip
from nasx_proxies.jacobian import JacobCov
from nasx_proxies.noise import NoiseImmunity
from nasx_proxies.synflow import PathNorm
from nasx_proxies.tenas import NTK, LinearRegions

NETWORK_PROXIES = [Snip, Grasp, Fisher, GradNorm, JacobCov, NTK, LinearRegions, NoiseImmunity, PathNorm]


class Tiny(nn.Module):
    """conv -> ReLU -> global pool -> linear: small enough for explicit Hessians and Jacobians."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 4)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


@pytest.fixture
def tiny_batch():
    generator = torch.Generator().manual_seed(1)
    return Batch(torch.randn(6, 2, 5, 5, generator=generator), torch.tensor([0, 1, 2, 3, 0, 1]), "tiny")


def loss_of(network, batch):
    return nn.functional.cross_entropy(network(batch.images), batch.labels)


def weight_gradients(network, batch, **kwargs):
    weights = [network.conv.weight, network.fc.weight]
    return weights, torch.autograd.grad(loss_of(network, batch), weights, **kwargs)


def test_snip_and_grad_norm(tiny_batch):
    network = Tiny()
    weights, gradients = weight_gradients(network, tiny_batch)
    snip = sum((w * g).abs().sum() for w, g in zip(weights, gradients)).detach()
    norm = sum(g.norm() for g in gradients)
    assert Snip().score_network(network, tiny_batch, None) == pytest.approx(float(snip), rel=1e-5)
    assert GradNorm().score_network(network, tiny_batch, None) == pytest.approx(float(norm), rel=1e-5)


def test_grasp_is_minus_theta_times_hessian_gradient(tiny_batch):
    network = Tiny()
    weights = [network.conv.weight, network.fc.weight]
    shapes = [w.shape for w in weights]
    sizes = [w.numel() for w in weights]
    flat = torch.cat([w.detach().reshape(-1) for w in weights])

    def loss_at(vector):
        parts = torch.split(vector, sizes)
        conv_w, fc_w = (p.reshape(s) for p, s in zip(parts, shapes))
        hidden = torch.relu(nn.functional.conv2d(tiny_batch.images, conv_w, padding=1)).mean(dim=(2, 3))
        return nn.functional.cross_entropy(nn.functional.linear(hidden, fc_w, network.fc.bias), tiny_batch.labels)

    gradient = torch.autograd.functional.jacobian(loss_at, flat)
    hessian = torch.autograd.functional.hessian(loss_at, flat)
    expected = float(-(flat * (hessian @ gradient)).sum())
    assert Grasp().score_network(network, tiny_batch, None) == pytest.approx(expected, rel=1e-4)


def test_fisher_sums_squared_channel_saliencies(tiny_batch):
    network = Tiny()
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in (network.conv, network.fc)]
    loss = loss_of(network, tiny_batch)
    for hook in hooks:
        hook.remove()
    grads = torch.autograd.grad(loss, outputs)
    conv_term = (outputs[0] * grads[0]).sum(dim=(2, 3)).pow(2).mean(0).sum() / 2
    fc_term = (outputs[1] * grads[1]).pow(2).mean(0).sum() / 2
    assert Fisher().score_network(network, tiny_batch, None) == pytest.approx(float((conv_term + fc_term).detach()), rel=1e-5)


def test_jacob_cov_from_per_image_jacobians(tiny_batch):
    import numpy as np

    network = Tiny()
    rows = []
    for image in tiny_batch.images:  # no BatchNorm here, so each image's Jacobian is its own
        x = image[None].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(network(x).sum(), x)
        rows.append(grad.reshape(-1).double().numpy())
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(np.stack(rows)))
    expected = -np.sum(np.log(eigenvalues + 1e-5) + 1 / (eigenvalues + 1e-5))
    assert JacobCov().score_network(network, tiny_batch, None) == pytest.approx(expected, rel=1e-6)


def test_ntk_of_a_linear_model_is_the_gram_condition_number():
    """f(x) = sum over outputs of W x: the gradient of image i's summed output is (1, ..., 1) x_i^T, so the
    NTK is (number of outputs) * X X^T."""
    network = nn.Sequential(nn.Flatten(), nn.Linear(6, 3, bias=False))
    images = torch.randn(4, 1, 2, 3, generator=torch.Generator().manual_seed(2))
    gram = images.reshape(4, -1).double() @ images.reshape(4, -1).double().T
    eigenvalues = torch.linalg.eigvalsh(gram)
    expected = float(eigenvalues[-1] / eigenvalues[0])
    batch = Batch(images, torch.zeros(4, dtype=torch.long), "linear")
    assert NTK().score_network(network, batch, None) == pytest.approx(expected, rel=1e-5)
    assert NTK.higher_is_better is False


def test_linear_regions_of_a_one_unit_relu_network():
    """One ReLU unit on a 1-pixel input: inputs above and below the kink fall in two regions."""

    class OneUnit(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(x.mean(dim=(1, 2, 3), keepdim=True) - 0.1)

    images = torch.linspace(-1, 1, 50).reshape(50, 1, 1, 1)
    batch = Batch(images, torch.zeros(50, dtype=torch.long), "line")
    assert LinearRegions(samples=200, patch=1).score_network(OneUnit(), batch, None) == 2.0
    positive = Batch(images.abs() + 0.5, batch.labels, "positive")
    assert LinearRegions(samples=200, patch=1).score_network(OneUnit(), positive, None) == 1.0


def test_noise_immunity_is_zero_without_noise_and_grows_with_it(space, batch):
    network = space.build(space.sample(random.Random(4)))
    small = batch.take(16)
    assert NoiseImmunity(noise_std=0.0).score_network(network, small, space) == 0.0
    weak = NoiseImmunity(noise_std=0.1).score_network(network, small, space)
    strong = NoiseImmunity(noise_std=1.0).score_network(network, small, space)
    assert 0 < weak < strong


def test_epsilon_definition_on_a_network_without_batchnorm():
    """Constant weight w, zero biases: y = w * w * 3 * (sum of the 2 inputs, ReLU'd); min-max normalised
    outputs are the same for both constants, so the dispersion is zero."""
    network = nn.Sequential(nn.Flatten(), nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    images = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 1.0]]], [[[0.5, 0.5]]]])
    batch = Batch(images, torch.zeros(3, dtype=torch.long), "three")
    assert Epsilon(weights="0.5,2").score_network(network, batch, None) == pytest.approx(0.0, abs=1e-12)


def test_epsilon_of_a_collapsed_network_is_nan_and_weights_are_restored(space, batch):
    network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10), nn.ReLU(), nn.Linear(10, 10))
    before = [p.clone() for p in network.parameters()]
    dead = Batch(torch.zeros(8, 3, 32, 32), torch.zeros(8, dtype=torch.long), "zeros")
    assert math.isnan(Epsilon().score_network(network, dead, space))
    assert all(torch.equal(a, b) for a, b in zip(before, network.parameters()))


def test_epsilon_does_not_depend_on_the_memory_layout(space, batch):
    """epsilon runs in channels-last layout for speed; the score must equal the plain-layout computation."""
    from nasx.torch_utils import initialise

    network = space.build(space.decode("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|"
                                       "nor_conv_3x3~1|nor_conv_1x1~2|"))
    initialise(network, "kaiming", seed=0)
    small = batch.take(16)
    weights = Epsilon().weights_for(space)
    outputs = []
    for value in weights:  # the definition, written out in the default layout
        constant = copy.deepcopy(network)
        with torch.no_grad():
            for name, parameter in constant.named_parameters():
                parameter.fill_(0.0 if name.endswith("bias") else value)
            flat = constant.train()(small.images)[:, 0].double()  # one output per image, as the paper
        outputs.append((flat - flat.min()) / (flat.max() - flat.min()))
    stacked = torch.stack(outputs)
    stacked[stacked == 0] = float("nan")
    expected = float((stacked[0] - stacked[1]).abs().nanmean() / stacked.nanmean())
    assert not math.isnan(expected)
    assert Epsilon().score_network(network, small, space) == pytest.approx(expected, rel=1e-4)


def test_epsilon_weights_option(space):
    assert Epsilon().weights_for(space) == (1e-7, 1.0)
    assert Epsilon(weights="1e-4, 10").weights_for(space) == (1e-4, 10.0)
    from nasx.errors import NasxError

    with pytest.raises(NasxError, match="two numbers"):
        Epsilon(weights="1").weights_for(space)


def test_params_and_flops_are_the_space_costs(space):
    genotype = space.sample(random.Random(9))
    cost = space.cost(genotype)
    assert Params().score_genotype(space, genotype) == cost.params_m
    assert Flops().score_genotype(space, genotype) == cost.flops_m


def test_path_norm_of_a_two_layer_linear_network():
    """Paths from 2 inputs through 2 hidden units to 1 output: sum of (w1_ji * w2_j)^2 over i, j."""
    network = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=True), nn.ReLU(), nn.Linear(2, 1, bias=True))
    first, second = network[1].weight.detach(), network[3].weight.detach()
    expected = math.sqrt(float(((first ** 2).sum(dim=1) * (second[0] ** 2)).sum()))
    space = type("S", (), {"input_shape": (1, 1, 2)})()
    assert PathNorm().score_network(network, None, space) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("proxy_class", [*NETWORK_PROXIES, Epsilon])
@pytest.mark.parametrize("arch", [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # the output ignores the input
    "|none~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",  # node 2 is zero: pooling a constant
    "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|",  # no weight inside the cells
])
def test_degenerate_cells_give_a_number_or_nan_never_an_error(space, batch, proxy_class, arch):
    from nasx.evaluator import Evaluator

    small = {"batch_size": 8} if "batch_size" in proxy_class.defaults else {}
    proxy = proxy_class(**small)
    # the evaluator turns an exception into a NaN score with its error: no error means the proxy returned it
    evaluation = Evaluator(space, [proxy], batch).evaluate(space.decode(arch))
    assert not evaluation.errors, evaluation.errors
    assert isinstance(evaluation.scores[proxy.name], float)
