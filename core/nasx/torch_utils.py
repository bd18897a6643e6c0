"""Torch helpers shared by the evaluator and proxies (this module imports torch)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def initialise(network: nn.Module, scheme: str, seed: int) -> None:
    """Re-initialise every weight reproducibly, without touching the global RNG.

    ``kaiming``: FreeREA's scheme — Kaiming-normal (fan-out, ReLU) conv and linear weights, zero biases,
    BatchNorm weight 1 and bias 0. ``pytorch``: each layer's own ``reset_parameters``.
    """
    if scheme == "pytorch":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in network.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        return
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
