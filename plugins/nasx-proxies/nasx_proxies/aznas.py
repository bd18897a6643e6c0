"""AZ-NAS (Lee & Ham, CVPR 2024, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search"): four
components, each its own proxy, computed from the feature maps at the boundaries of a network's primary blocks.

- expressivity: sum over block outputs (the stem's included) of the entropy of the normalised eigenvalues of the
  channel covariance of the feature map — how isotropic the features are;
- progressivity: the smallest increase of that entropy from one block output to the next;
- trainability: mean over blocks of -s - 1/(s + 1e-6) + 2, s the spectral norm of the block's Jacobian, estimated
  with one random sign vector;
- complexity: FLOPs.

AZ-NAS itself ranks each component over the candidates and sums the log-ranks: that is the ``logrank`` combiner
over these four proxies (see docs/proxies.md), not a per-network score.
"""

from __future__ import annotations

import math

from nasx.errors import NasxError
from nasx.interfaces import Proxy
from nasx.options import non_negative, positive
from nasx_proxies._common import as_float64
from nasx_proxies.cost import Flops

#: keeps log finite for an eigenvalue share of zero, as in the official code
LOG_EPSILON = 1e-8
#: keeps 1/s finite for a block whose Jacobian is zero, as in the official code
SPECTRAL_EPSILON = 1e-6


def primary_blocks(network, proxy_name: str):
    """(stem, blocks): the network's first layer and the sequence after it whose outputs AZ-NAS measures, each
    block a list of modules applied in turn.

    NATS-Bench networks (``stem`` + ``cells``): every cell and every residual reduction block, as AZ-NAS's
    ``extract_cell_features`` on NAS-Bench-201. NAS-Bench-101 networks (nasbench-pytorch's ``layers``): every
    cell; a parameter-free pooling layer between stacks is not a block of its own but the start of the next one.
    """
    from torch import nn

    if hasattr(network, "stem") and isinstance(getattr(network, "cells", None), nn.Sequential):
        return network.stem, [[block] for block in network.cells]
    layers = getattr(network, "layers", None)
    if isinstance(layers, nn.ModuleList) and len(layers) > 1:
        blocks, pending = [], []
        for layer in list(layers)[1:]:
            pending.append(layer)
            if not isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
                blocks.append(pending)
                pending = []
        if pending:
            blocks.append(pending)
        return layers[0], blocks
    raise NasxError(f"proxy '{proxy_name}' needs a network made of a stem and a sequence of blocks "
                    f"(nats-tss, nats-sss or nb101), not {type(network).__name__}")


def fan_in_scaled(network, enabled: bool):
    """The network itself, or (``enabled``) a copy whose conv and linear weights are multiplied by
    sqrt(fan_out / fan_in): that turns nasx's Kaiming-normal fan-out draw (``--init kaiming``) into exactly the
    Kaiming-normal fan-in draw of the official code (std sqrt(2 / fan_in)), with the same random numbers."""
    import copy

    import torch
    from torch import nn

    layers = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    factors = []
    for layer in layers:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        factors.append(math.sqrt(fan_out / fan_in))
    if not enabled or all(factor == 1.0 for factor in factors):
        return network
    scaled = copy.deepcopy(network)
    with torch.no_grad():
        for layer, factor in zip([m for m in scaled.modules() if isinstance(m, (nn.Conv2d, nn.Linear))], factors):
            layer.weight.mul_(factor)
    return scaled


def block_features(network, images, proxy_name: str, keep_graph: bool):
    """[(block input, block output)] for every block, and the stem's output first as (None, stem output).

    Each block runs on a detached copy of its input that requires gradients, so a block's Jacobian is one
    ``autograd.grad`` away and no block's gradient passes through another's; the values are those of the plain
    forward pass (BatchNorm with batch statistics, as AZ-NAS scores in training mode)."""
    import torch

    stem, blocks = primary_blocks(network, proxy_name)
    network.train()
    with torch.set_grad_enabled(keep_graph):
        pairs = [(None, stem(images))]
        for block in blocks:
            block_input = pairs[-1][1].detach().requires_grad_(keep_graph)
            output = block_input
            for module in block:
                output = module(output)
            pairs.append((block_input, output))
    return pairs


def feature_isotropy(feature) -> float:
    """-sum p log(p + 1e-8), p the eigenvalues of the (biased) channel covariance over images and positions,
    normalised to sum 1. NaN for a constant feature map (0 / 0).

    The covariance is computed in float64 (the official code: float32). A covariance of rank below its size (a
    stem of more than 27 channels computes them from 27 numbers per pixel) has zero eigenvalues that float32
    rounding makes slightly negative, and the log of a share below -1e-8 is NaN."""
    import torch

    channels = feature.shape[1]
    rows = as_float64(feature.detach()).permute(0, 2, 3, 1).reshape(-1, channels)
    rows = rows - rows.mean(dim=0, keepdim=True)
    covariance = rows.T @ rows / rows.shape[0]
    eigenvalues = torch.linalg.eigvalsh(covariance)
    shares = eigenvalues / eigenvalues.sum()
    return float((-shares * torch.log(shares + LOG_EPSILON)).sum())


def rademacher_like(tensor, generator):
    """Independent random signs (+1 or -1) of the tensor's shape, drawn on the CPU so every device draws the same."""
    import torch

    signs = torch.randint(0, 2, tuple(tensor.shape), generator=generator).mul_(2).sub_(1)
    return signs.to(device=tensor.device, dtype=tensor.dtype)


def block_trainability(block_input, block_output, generator) -> float:
    """-s - 1/(s + 1e-6) + 2 for one block, s the largest singular value of the (input channels x output channels)
    matrix mean over images and output positions of g_in g_outᵀ, with g_out random signs and g_in = Jᵀ g_out.
    When the input is larger than the output (a stride), g_in is folded into channels by pixel unshuffle first.
    -inf when the block passes the signs through unchanged (an identity block), as in the official code."""
    import torch
    from torch.nn import functional

    g_out = rademacher_like(block_output, generator)
    g_in = None
    if block_output.requires_grad:
        (g_in,) = torch.autograd.grad(block_output, block_input, grad_outputs=g_out, allow_unused=True)
    if g_in is None:  # the output ignores the input (a cell of 'none' edges): its Jacobian is zero
        g_in = torch.zeros_like(block_input)
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    if g_in.shape[2:] != g_out.shape[2:]:
        g_in = functional.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
    images, out_channels, height, width = g_out.shape
    g_out_rows = g_out.permute(0, 2, 3, 1).reshape(-1, out_channels)
    g_in_rows = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1])
    matrix = g_in_rows.T @ g_out_rows / (images * height * width)
    if not bool(torch.isfinite(matrix).all()):
        return math.nan  # overflowed activations: no spectral norm to take
    largest = float(torch.linalg.svdvals(matrix).max())
    return -largest - 1.0 / (largest + SPECTRAL_EPSILON) + 2.0


class _AZNASComponent(Proxy):
    needs_data = True
    # AZ-NAS scores 64 random-normal images (nasx's default synthetic batch is the same kind of input) once per
    # network. fan_in: rescale nasx's Kaiming fan-out weights to the official fan-in scale (assumes --init kaiming).
    defaults = {"batch_size": 64, "repeats": 1, "fan_in": True}
    option_checks = {"batch_size": non_negative, "repeats": positive}  # batch_size 0: the whole input batch

    def features(self, network, batch, keep_graph: bool):
        network = fan_in_scaled(network, bool(self.options["fan_in"]))
        return block_features(network, batch.images, self.name, keep_graph)


class AZExpressivity(_AZNASComponent):
    name = "az_expressivity"
    summary = "AZ-NAS expressivity: summed eigenvalue entropy of the feature maps after the stem and every block"

    def score_network(self, network, batch, space) -> float:
        return float(sum(feature_isotropy(output) for _, output in self.features(network, batch, keep_graph=False)))


class AZProgressivity(_AZNASComponent):
    name = "az_progressivity"
    summary = "AZ-NAS progressivity: smallest increase of feature eigenvalue entropy from one block to the next"

    def score_network(self, network, batch, space) -> float:
        entropies = [feature_isotropy(output) for _, output in self.features(network, batch, keep_graph=False)]
        if any(math.isnan(value) for value in entropies):
            return math.nan
        return float(min(after - before for before, after in zip(entropies, entropies[1:])))


class AZTrainability(_AZNASComponent):
    name = "az_trainability"
    summary = "AZ-NAS trainability: mean over blocks of -s - 1/s + 2, s the spectral norm of the block's Jacobian"
    needs_gradients = True
    defaults = {**_AZNASComponent.defaults, "projection_seed": 0}
    option_checks = {**_AZNASComponent.option_checks, "projection_seed": non_negative}

    def score_network(self, network, batch, space) -> float:
        import torch

        pairs = self.features(network, batch, keep_graph=True)[1:]
        # One seeded CPU generator, drawn from the last block to the first as the official loop does.
        generator = torch.Generator().manual_seed(int(self.options["projection_seed"]))
        scores = [block_trainability(block_input, output, generator) for block_input, output in reversed(pairs)]
        return float(sum(scores) / len(scores))


class AZComplexity(Flops):
    name = "az_complexity"
    summary = "AZ-NAS complexity: FLOPs (millions, the benchmark's definition), as the official code takes them"
