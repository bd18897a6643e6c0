"""The fast paths of naswot, logsynflow and synflow against the plain definitions, written out here.

naswot: hooks on every ReLU collect the binary codes (activation > 0) of a plain forward pass in the default
layout; K = N_A - Hamming distance of the concatenated codes; score = log|det K|. synflow / logsynflow: a deep
copy in double precision with |W|, BatchNorm removed, ReLUs kept, an all-ones input, R = sum of the outputs, score
= sum of |theta * dR/dtheta| (or |theta * log(dR/dtheta + 1)|) over conv and linear weights.
"""

import copy

import pytest
import torch
from torch import nn

from nasx.data import Batch, synthetic_batch
from nasx.torch_utils import initialise
from nasx_nats.network import Cell
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies._common import all_modules, replaced_forwards
from nasx_proxies.naswot import NASWOT, BoxAverage3x3, agreement_counts, int8_products_faster
from nasx_proxies.synflow import LogSynflow, Synflow, positive_double_forwards, synflow_score

CELLS = {
    "convolutions everywhere":
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "mixed": "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|",
    "none everywhere": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    # node 2's outgoing edge is none: 0->2 and 1->2 are dead, but their ReLUs read nodes 0 and 1
    "dead node behind convolutions":
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",
    # node 2 is dead and reached by poolings only, so node 1 is unobserved too: 0->1 keeps only its ReLU
    "dead nodes behind poolings":
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|none~2|",
    # node 1 has no input (zeros) and feeds a convolution; the output is reached only through a skip
    "node without inputs": "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
}


@pytest.fixture(scope="module")
def space():
    return NatsTopologySpace(dataset="ImageNet16-120")  # 16 x 16 images: the same networks, four times cheaper


@pytest.fixture(scope="module")
def small_batch(space):
    return synthetic_batch(space.input_shape, space.num_classes, size=12, seed=3)


def build(space, arch, seed=0):
    network = space.build(space.decode(arch))
    initialise(network, "kaiming", seed=seed)
    return network


def plain_naswot(network, batch) -> float:
    codes = []
    hooks = [m.register_forward_hook(lambda m, i, o: codes.append((o > 0).flatten(1).double()))
             for m in network.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            network.train()(batch.images)
    finally:
        for hook in hooks:
            hook.remove()
    code = torch.cat(codes, dim=1)
    kernel = code @ code.T + (1 - code) @ (1 - code).T  # units on which two images agree
    return torch.linalg.slogdet(kernel).logabsdet.item()


def plain_synflow(network, input_shape, use_log: bool) -> float:
    linear = copy.deepcopy(network).double()
    with torch.no_grad():
        for parameter in linear.parameters():
            parameter.abs_()
    # BatchNorm bypassed: a forward hook's return value replaces the module's output, here by its input
    for module in linear.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.register_forward_hook(lambda module, inputs, output: inputs[0])
    weights = [m.weight for m in linear.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    output = linear.train()(torch.ones((1, *input_shape), dtype=torch.float64))
    gradients = torch.autograd.grad(output.sum(), weights, allow_unused=True)
    total = 0.0
    for weight, gradient in zip(weights, gradients):
        if gradient is not None:
            flow = torch.log(gradient + 1) if use_log else gradient
            total += (weight * flow).abs().sum().item()
    return total


def state(network):
    return {name: tensor.clone() for name, tensor in network.state_dict().items()}


@pytest.mark.parametrize("arch", CELLS.values(), ids=CELLS.keys())
def test_naswot_equals_the_plain_definition(space, small_batch, arch):
    """In double precision, so that no activation rounds across zero differently in the two layouts and pooling
    formulas: the kernel is then the same integer matrix. (In float32 a code can flip where an activation is
    within rounding of 0; test_proxies checks that case to 1e-6.)"""
    network = build(space, arch).double()
    batch = Batch(small_batch.images.double(), small_batch.labels, small_batch.identity)
    expected = plain_naswot(network, batch)
    score = NASWOT(repeats=1).score_network(network, batch, space)
    assert score == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("arch", CELLS.values(), ids=CELLS.keys())
@pytest.mark.parametrize("proxy_class, use_log", [(LogSynflow, True), (Synflow, False)])
def test_synflow_equals_the_plain_definition(space, arch, proxy_class, use_log):
    network = build(space, arch)
    expected = plain_synflow(network, space.input_shape, use_log)
    score = proxy_class(repeats=1).score_network(network, None, space)
    assert score == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("proxy", [NASWOT(repeats=1), LogSynflow(repeats=1)], ids=["naswot", "logsynflow"])
def test_the_callers_network_is_left_as_it_was(space, small_batch, proxy):
    """Weights, buffers' layout, forwards and the cells' mode are all restored: the evaluator shares the network."""
    network = build(space, CELLS["dead node behind convolutions"])
    before = state(network)
    proxy.score_network(network, small_batch, space)
    after = network.state_dict()
    for name, tensor in before.items():
        if "running" in name or "num_batches" in name:  # naswot's forward in train mode updates BatchNorm statistics
            continue
        assert torch.equal(after[name], tensor), name
    assert all(p.is_contiguous() for p in network.parameters())
    assert not any("forward" in m.__dict__ for m in network.modules())
    assert not any(m.skip_dead_operations for m in network.modules() if isinstance(m, Cell))


def test_synflow_never_changes_a_double_precision_network(space):
    network = build(space, CELLS["mixed"]).double()
    before = state(network)
    synflow_score(network, space.input_shape, use_log=True)
    assert all(torch.equal(network.state_dict()[name], tensor) for name, tensor in before.items())


def test_synflow_of_a_network_it_cannot_run_in_place_uses_a_copy():
    """A module holding parameters of its own kind (here PReLU's slopes) sends the score to the copy-based path."""
    network = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.PReLU(4), nn.Flatten(),
                            nn.Linear(4 * 6 * 6, 2))
    assert positive_double_forwards(list(network.modules())) is None
    expected = plain_synflow(network, (3, 6, 6), use_log=True)
    assert synflow_score(network, (3, 6, 6), use_log=True) == pytest.approx(expected, rel=1e-12)


class Negation(nn.Module):
    def forward(self, x):
        return -x


def test_synflow_of_a_network_whose_activations_go_negative_keeps_its_relus():
    """ReLUs pass their input through only while every activation is >= 0; a parameter-free module that negates
    breaks that, and the score must still be the definition's (where those ReLUs zero everything)."""
    network = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Negation(), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.Flatten(),
                            nn.Linear(4 * 6 * 6, 2))
    expected = plain_synflow(network, (3, 6, 6), use_log=True)
    assert synflow_score(network, (3, 6, 6), use_log=True) == pytest.approx(expected, rel=1e-12)


def test_dead_convolutions_are_skipped_but_their_relus_still_run(space, small_batch):
    network = build(space, CELLS["dead nodes behind poolings"])
    cell = network.cells[0]
    assert cell.dead_operations() == ["0_1", "0_2", "1_2"]
    calls = {name: [] for name in cell.edges}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: calls[name].append(type(m).__name__))
             for name, op in cell.edges.items() for module in op.modules() if not isinstance(module, nn.Sequential)]
    NASWOT(repeats=1).score_network(network, small_batch, space)
    for hook in hooks:
        hook.remove()
    assert calls["0_1"] == ["ReLU"]  # its convolution and BatchNorm are skipped, its activations still counted
    assert calls["0_2"] == calls["1_2"] == []  # poolings into a dead node: nothing to observe
    assert calls["0_3"] == ["ReLU", "Conv2d", "BatchNorm2d"]


def test_dead_operations_skipped_change_no_output_and_no_relu_activation(space, small_batch):
    network = build(space, CELLS["dead node behind convolutions"])
    network.train()

    def run(skip):
        activations = []
        hooks = [m.register_forward_hook(lambda m, i, o: activations.append(o.clone()))
                 for m in network.modules() if isinstance(m, nn.ReLU)]
        for cell in network.cells:
            if isinstance(cell, Cell):
                cell.skip_dead_operations = skip
        with torch.no_grad():
            output = network(small_batch.images)
        for hook in hooks:
            hook.remove()
        return output, activations

    (plain, plain_activations), (skipped, skipped_activations) = run(False), run(True)
    assert torch.equal(plain, skipped)
    assert len(plain_activations) == len(skipped_activations)
    assert all(torch.equal(a, b) for a, b in zip(plain_activations, skipped_activations))


@pytest.mark.parametrize("int8", [True, False], ids=["int8", "float32"])
def test_agreement_counts_are_the_hamming_definition(int8):
    generator = torch.Generator().manual_seed(0)
    activations = torch.relu(torch.randn(7, 5, 3, 4, generator=generator))
    activations[2, 1, 0, 0] = float("nan")  # a NaN unit is inactive, as NaN > 0 is false
    code = (activations > 0).flatten(1).double()
    expected = code @ code.T + (1 - code) @ (1 - code).T
    assert torch.equal(agreement_counts(activations, 7, int8=int8), expected)
    channels_last = activations.contiguous(memory_format=torch.channels_last)
    assert torch.equal(agreement_counts(channels_last, 7, int8=int8), expected)


def test_int8_products_are_chosen_only_where_they_are_faster(monkeypatch):
    """On a CPU without int8 dot-product instructions torch's int8 product is many times slower than float32's;
    naswot must not take it there (the counts are the same either way)."""
    real = torch._int_mm

    def slow(a, b):
        for _ in range(20):  # far longer than the 64 x 2048 float32 product it is compared with
            torch.ones(256, 256) @ torch.ones(256, 256)
        return real(a, b)

    monkeypatch.setattr(torch, "_int_mm", slow)
    assert int8_products_faster.__wrapped__() is False

    def broken(a, b):
        raise RuntimeError("no int8 kernel")

    monkeypatch.setattr(torch, "_int_mm", broken)
    assert int8_products_faster.__wrapped__() is False


def test_box_average_is_the_pooling_it_replaces():
    pooling = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    assert BoxAverage3x3.replaces(pooling)
    assert not BoxAverage3x3.replaces(nn.AvgPool2d(3, stride=1, padding=1))  # counts the padding
    assert not BoxAverage3x3.replaces(nn.AvgPool2d(2, stride=2))
    images = torch.randn(2, 5, 7, 6).contiguous(memory_format=torch.channels_last)
    expected = pooling(images)
    with replaced_forwards({pooling: BoxAverage3x3()}):
        replaced = pooling(images)
    assert torch.allclose(replaced, expected, rtol=1e-6, atol=1e-6)
    assert "forward" not in pooling.__dict__


def test_replaced_forwards_are_restored_when_the_forward_fails():
    layer = nn.Linear(2, 2)

    def failing(x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError), replaced_forwards({layer: failing}):
        layer(torch.ones(1, 2))
    assert "forward" not in layer.__dict__
    assert layer(torch.ones(1, 2)).shape == (1, 2)


def test_all_modules_lists_what_modules_lists_in_the_same_order(space):
    shared = nn.Linear(2, 2)
    networks = [build(space, CELLS["mixed"]), nn.Sequential(shared, nn.Sequential(shared, nn.ReLU()), nn.ReLU())]
    for network in networks:
        listed = all_modules(network)
        assert len(listed) == len(list(network.modules()))
        assert all(a is b for a, b in zip(listed, network.modules()))
