"""Torch helpers shared by the evaluator and proxies (this module imports torch)."""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn


@torch.no_grad()
def initialise(network: nn.Module, scheme: str, seed: int) -> None:
    """Re-initialise every weight reproducibly, without touching the global RNG of any device.

    ``kaiming``: FreeREA's scheme — Kaiming-normal (fan-out, ReLU) conv and linear weights, zero biases,
    BatchNorm weight 1 and bias 0 and fresh running statistics. ``pytorch``: each layer's own
    ``reset_parameters``. Weights are always drawn on the CPU, so a seed gives the same weights on every device.
    """
    on_cpu = all(tensor.device.type == "cpu" for tensor in itertools.chain(network.parameters(), network.buffers()))
    if scheme == "pytorch" and not on_cpu:
        # A CUDA or MPS generator draws other numbers for the same seed, and reset_parameters draws from the
        # tensor's own device: initialise a CPU copy and copy it back.
        cpu_copy = copy.deepcopy(network).cpu()
        _initialise(cpu_copy, scheme, seed)
        network.load_state_dict(cpu_copy.state_dict())
        return
    _initialise(network, scheme, seed)


def _initialise(network: nn.Module, scheme: str, seed: int) -> None:
    if scheme == "pytorch":
        # fork_rng restores only the CPU generator, so only the CPU generator is seeded (torch.manual_seed would
        # also reseed, and leave reseeded, every CUDA and MPS generator); reset_parameters draws from it.
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            for module in network.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        return
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weight = module.weight
            if weight.device.type == "cpu":
                nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu", generator=generator)
            else:  # drawn on the CPU in the same order (the same numbers as a CPU network gets), then copied
                drawn = torch.empty(weight.shape, dtype=weight.dtype)
                weight.copy_(nn.init.kaiming_normal_(drawn, mode="fan_out", nonlinearity="relu", generator=generator))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            if module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            # As reset_parameters does: running statistics left by an earlier proxy's training-mode passes must
            # not reach the next one (the evaluator's device copy always gets the CPU network's, never updated).
            if module.track_running_stats:
                module.reset_running_stats()


def initialise_fused(network: nn.Module, scheme: str, seed: int) -> None:
    """Initialise a fused network (:mod:`nasx.fusion`) as each of its architectures would be alone: each model's
    own network (``network.networks``) drawn exactly as ``initialise`` draws it, then copied into the fused one."""
    for single in network.networks:
        initialise(single, scheme, seed)
    network.load_networks()
