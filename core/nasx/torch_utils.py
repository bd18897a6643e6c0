"""Torch helpers shared by the evaluator and proxies (this module imports torch)."""

from __future__ import annotations

import copy
import itertools
from contextlib import contextmanager

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
                _kaiming_normal(weight, generator)
            else:  # drawn on the CPU in the same order (the same numbers as a CPU network gets), then copied
                weight.copy_(_kaiming_normal(torch.empty(weight.shape, dtype=weight.dtype), generator))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            _reset_batchnorm(module)


def _kaiming_normal(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """FreeREA's draw of a convolution's or linear layer's weight: Kaiming-normal, fan-out, ReLU gain."""
    return nn.init.kaiming_normal_(tensor, mode="fan_out", nonlinearity="relu", generator=generator)


def _reset_batchnorm(module: nn.Module) -> None:
    if module.affine:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    # As reset_parameters does: running statistics left by an earlier proxy's training-mode passes must not reach
    # the next one (the evaluator's device copy always gets the CPU network's, never updated).
    if module.track_running_stats:
        module.reset_running_stats()


@torch.no_grad()
def initialise_fused(network: nn.Module, scheme: str, seed: int) -> None:
    """Initialise a fused network (:mod:`nasx.fusion`) as each of its architectures would be alone: every model's
    weights are the numbers ``initialise`` draws for the model's own network.

    ``kaiming``, for a network that gives each layer's ``blocks``: each model has its own generator, seeded as
    ``initialise`` seeds one, and draws its blocks in module order, the order of its own network's layers (each
    block drawn in the shape it has there, so the fan-out and the numbers are the same); no model's network is
    built. Otherwise: each model's own network (``network.networks``) is initialised, then copied in.
    """
    layers = [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    blocks = getattr(network, "blocks", None)
    if scheme == "kaiming" and blocks is not None and all(blocks(layer) is not None for layer in layers):
        generators: dict[int, torch.Generator] = {}
        for module in network.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                drawn = []
                for model, shape in blocks(module):
                    if model not in generators:
                        generators[model] = torch.Generator().manual_seed(seed)
                    drawn.append(_kaiming_normal(torch.empty(shape, dtype=module.weight.dtype), generators[model]))
                module.weight.copy_(join_blocks(drawn, module.weight.shape))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                _reset_batchnorm(module)
        return
    for single in network.networks:
        initialise(single, scheme, seed)
    network.load_networks()


def join_blocks(tensors, shape) -> torch.Tensor:
    """One tensor of ``shape`` from the models' tensors, one block of its first dimension each, in order: each
    with trailing dimensions of 1 added (a linear layer's weight becomes a 1x1 convolution's) and zeros appended
    where the block is larger (padded widths)."""
    block = (shape[0] // len(tensors), *shape[1:])
    parts = []
    for tensor in tensors:
        tensor = tensor.detach().reshape(*tensor.shape, *(1,) * (len(block) - tensor.dim()))
        if tuple(tensor.shape) != block:
            padded = tensor.new_zeros(block)
            padded[tuple(slice(0, size) for size in tensor.shape)] = tensor
            tensor = padded
        parts.append(tensor)
    return torch.cat(parts) if len(parts) > 1 else parts[0]


#: The attribute by which a network's module says that it can skip its dead operations (a Space's networks may offer
#: it; nasx's NATS-Bench cells do): False normally, True while a proxy that needs only the output, its gradients and
#: the ReLUs' activations runs. An operation is dead when its result reaches neither the output nor any ReLU.
SKIPS_DEAD_OPERATIONS = "skip_dead_operations"


@contextmanager
def dead_operations_skipped(modules):
    """For the duration, the modules (a network's ``modules()``) that offer it (``SKIPS_DEAD_OPERATIONS``) skip
    their dead operations: the output, its gradients and every ReLU's activations are unchanged, and less is
    computed. Each is given back as it was, however the block ends."""
    offering = [m for m in modules if m.__dict__.get(SKIPS_DEAD_OPERATIONS) is False]
    try:
        for module in offering:
            setattr(module, SKIPS_DEAD_OPERATIONS, True)
        yield
    finally:
        for module in offering:
            setattr(module, SKIPS_DEAD_OPERATIONS, False)
