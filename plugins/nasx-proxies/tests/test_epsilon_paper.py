"""epsilon against the official computation of the paper (egracheva/epsinas, NAS-Bench-201/epsinas_utils.py,
``compute_epsinas``), written out here the way that code does it: the paper's network has one output
(nasspace.py sets ``num_classes = 1``) and BatchNorm layers that never track running statistics; every module with
a weight gets the constant (BatchNorm only when affine), every bias 0; float32 forward; min-max normalisation in
float32 numpy; exact zeros become NaN; ε = nanmean|V1 − V2| / nanmean(V1, V2)."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from nasx_nats.network import TopologyNetwork
from nasx_nats.tss import CELLS_PER_STAGE, STAGE_CHANNELS
from nasx_proxies.epsilon import Epsilon

# Each has an input -> output path of skip / pooling edges only: the w1 = 1e-7 output stays within float32's range.
WITH_A_CONV_FREE_PATH = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_3x3~1|avg_pool_3x3~2|",
]
# Every input -> output path goes through a convolution.
CONVOLUTIONS_ONLY = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def papers_network(space, arch: str) -> nn.Module:
    """The space's network for ``arch`` with the paper's changes: one output, BatchNorm without running
    statistics (so it always normalises with the batch's own)."""
    network = TopologyNetwork(space.genes(space.decode(arch)), STAGE_CHANNELS, CELLS_PER_STAGE, num_classes=1)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.track_running_stats = False
            module.running_mean = module.running_var = module.num_batches_tracked = None
    return network


def constant_outputs(network: nn.Module, images: torch.Tensor, weight: float) -> np.ndarray:
    """The network's flattened outputs after the paper's initialisation with one constant."""

    def set_constant(module):
        if getattr(module, "bias", None) is not None:
            nn.init.constant_(module.bias, 0)
        if hasattr(module, "weight") and getattr(module, "affine", True):
            nn.init.constant_(module.weight, weight)

    network.apply(set_constant)
    with torch.no_grad():
        return network(images).numpy().flatten()


def papers_epsilon(network: nn.Module, images: torch.Tensor, weights) -> float:
    normalised = []
    for weight in weights:
        outputs = constant_outputs(network, images, weight)  # float32, as on the paper's GPU
        with np.errstate(invalid="ignore"):  # 0/0 when the output collapsed: NaN, as in the paper
            normalised.append((outputs - np.nanmin(outputs)) / (np.nanmax(outputs) - np.nanmin(outputs)))
    stacked = np.array(normalised)
    stacked[stacked == 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's 'mean of empty slice' when all are NaN
        return float(np.nanmean(np.abs(stacked[0] - stacked[1])) / np.nanmean(stacked))


@pytest.mark.parametrize("arch", WITH_A_CONV_FREE_PATH)
def test_epsilon_equals_the_papers_computation(space, batch, arch):
    images = batch.take(16)
    expected = papers_epsilon(papers_network(space, arch), images.images, Epsilon().weights_for(space))
    assert math.isfinite(expected) and expected > 0
    # nasx's network has 10 outputs, but with constant classifier weights they are 10 copies of the paper's one
    assert Epsilon().score_network(space.build(space.decode(arch)), images, space) == pytest.approx(expected, rel=1e-4)


def test_cells_whose_paths_all_hold_a_convolution_underflow_to_nan_in_float32(space, batch):
    """Each conv + BatchNorm layer with w1 = 1e-7 shrinks the signal about 1e-9-fold (BatchNorm divides by
    sqrt(var + 1e-5) with var far below 1e-5, then multiplies by 1e-7), so with a convolution in every cell's
    every path the w1 output lies far below float32's smallest subnormal: it is exactly zero, the min-max
    normalisation is 0/0, and both the paper's code and nasx give NaN."""
    images = batch.take(8)
    w1, _ = Epsilon().weights_for(space)
    assert math.isnan(papers_epsilon(papers_network(space, CONVOLUTIONS_ONLY), images.images, (w1, 1.0)))
    assert math.isnan(Epsilon().score_network(space.build(space.decode(CONVOLUTIONS_ONLY)), images, space))
    in_float64 = constant_outputs(papers_network(space, CONVOLUTIONS_ONLY).double(), images.images.double(), w1)
    smallest_float32 = float(np.nextafter(np.float32(0), np.float32(1)))  # 1.4e-45
    assert 0 < np.abs(in_float64).max() < smallest_float32 * 1e-20
