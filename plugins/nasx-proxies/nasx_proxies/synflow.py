"""SynFlow (Tanaka et al., 2020) and FreeREA's LogSynflow.

The network is copied in double precision with absolute-valued weights and BatchNorm removed; an all-ones input
gives R = sum of the outputs; the score sums theta * dR/dtheta (SynFlow) or theta * log(dR/dtheta + 1)
(LogSynflow) over conv and linear weights. The caller's network is never modified.
"""

from __future__ import annotations

import copy

from nasx.interfaces import Proxy
from nasx.options import positive
from nasx_proxies._common import ProxyPlugin, remove_batchnorm


def synflow_score(network, input_shape, use_log: bool) -> float:
    import torch
    from torch import nn

    linear = copy.deepcopy(network).double()
    remove_batchnorm(linear)
    with torch.no_grad():
        for parameter in linear.parameters():
            parameter.abs_()
    weights = [m.weight for m in linear.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    linear.train()
    output = linear(torch.ones((1, *input_shape), dtype=torch.float64))
    gradients = torch.autograd.grad(output.sum(), weights, allow_unused=True)
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for weight, gradient in zip(weights, gradients):
            if gradient is None:  # a layer that does not reach the output contributes nothing
                continue
            flow = torch.log1p(gradient) if use_log else gradient
            total += (weight * flow).abs().sum()
    return float(total)


def path_norm(network, input_shape) -> float:
    """sqrt of the sum over all input-output paths of the product of the squared weights along the path
    (Neyshabur et al., 2015): the summed output for an all-ones input of a copy with squared weights, no
    biases and no BatchNorm."""
    import torch

    squared = copy.deepcopy(network).double()
    remove_batchnorm(squared)
    with torch.no_grad():
        for name, parameter in squared.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.pow_(2)
        squared.train()
        total = squared(torch.ones((1, *input_shape), dtype=torch.float64)).sum()
    return float(total.sqrt())


class LogSynflow(Proxy):
    name = "logsynflow"
    summary = "FreeREA's LogSynflow: sum of theta * log(dR/dtheta + 1), BatchNorm bypassed, double precision"
    needs_gradients = True
    defaults = {"repeats": 3}
    option_checks = {"repeats": positive}

    def score_network(self, network, batch, space) -> float:
        return synflow_score(network, space.input_shape, use_log=True)


class Synflow(Proxy):
    name = "synflow"
    summary = "SynFlow: sum of theta * dR/dtheta with absolute weights and an all-ones input"
    needs_gradients = True
    defaults = {"repeats": 3}
    option_checks = {"repeats": positive}

    def score_network(self, network, batch, space) -> float:
        return synflow_score(network, space.input_shape, use_log=False)


class PathNorm(Proxy):
    name = "pathnorm"
    summary = "Path norm: sqrt of the sum over input-output paths of the product of squared weights"
    defaults = {"repeats": 3}
    option_checks = {"repeats": positive}

    def score_network(self, network, batch, space) -> float:
        return path_norm(network, space.input_shape)


logsynflow_plugin = ProxyPlugin(LogSynflow)
synflow_plugin = ProxyPlugin(Synflow)
pathnorm_plugin = ProxyPlugin(PathNorm)
