"""SynFlow (Tanaka et al., 2020) and FreeREA's LogSynflow.

The network is copied in double precision with absolute-valued weights and BatchNorm removed; an all-ones input
gives R = sum of the outputs; the score sums theta * dR/dtheta (SynFlow) or theta * log(dR/dtheta + 1)
(LogSynflow) over conv and linear weights. The caller's network is never modified.
"""

from __future__ import annotations

import copy

from nasx.hookspecs import hookimpl
from nasx.interfaces import Proxy


def synflow_score(network, input_shape, use_log: bool) -> float:
    import torch
    from torch import nn

    linear = copy.deepcopy(network).double()
    _remove_batchnorm(linear)
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


def _remove_batchnorm(network) -> None:
    from torch import nn

    for name, child in list(network.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(network, name, nn.Identity())
        else:
            _remove_batchnorm(child)


class LogSynflow(Proxy):
    name = "logsynflow"
    summary = "FreeREA's LogSynflow: sum of theta * log(dR/dtheta + 1), BatchNorm bypassed, double precision"
    needs_gradients = True
    defaults = {"repeats": 3}

    def score_network(self, network, batch, space) -> float:
        return synflow_score(network, space.input_shape, use_log=True)


class Synflow(Proxy):
    name = "synflow"
    summary = "SynFlow: sum of theta * dR/dtheta with absolute weights and an all-ones input"
    needs_gradients = True
    defaults = {"repeats": 3}

    def score_network(self, network, batch, space) -> float:
        return synflow_score(network, space.input_shape, use_log=False)


class _Register:
    def __init__(self, proxy):
        self.proxy = proxy

    @hookimpl
    def nasx_register_proxies(self, register):
        register(self.proxy)


logsynflow_plugin = _Register(LogSynflow)
synflow_plugin = _Register(Synflow)
