"""Counts measured on a built network, to check a space's ``cost`` against (this module imports torch)."""

from __future__ import annotations

import torch


def count_flops(network: torch.nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Multiply-adds of the convolutions (k*k*Cin/groups*Cout*Hout*Wout) and linear layers (in*out + out) of one
    forward pass of a zero input of ``input_shape`` in evaluation mode: the FLOPs that NATS-Bench and DARTS count."""
    total = 0

    def conv(module, inputs, output):
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += kernel * module.in_channels // module.groups * module.out_channels * output.shape[2] * output.shape[3]

    def linear(module, inputs, output):
        nonlocal total
        total += module.in_features * module.out_features + module.out_features

    handles = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
               for m in network.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            network.eval()(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_params(network: torch.nn.Module) -> int:
    """Every parameter of the network."""
    return sum(p.numel() for p in network.parameters())


def check_adapted_cost(space, classes: int, shape: tuple[int, int, int], samples: int = 3) -> None:
    """For a space that adapts to data: its networks for ``classes`` and ``shape`` have the parameters and FLOPs
    its cost gives, and one logit per class."""
    import random

    from nasx.interfaces import Task

    adapted = space.for_data(Task("photos", classes, shape))
    rng = random.Random(classes)
    for genotype in [adapted.sample(rng) for _ in range(samples)]:
        network = adapted.build(genotype)
        cost = adapted.cost(genotype)
        assert round(cost.params_m * 1e6) == count_params(network), adapted.encode(genotype)
        assert round(cost.flops_m * 1e6) == count_flops(network, shape), adapted.encode(genotype)
        assert network.eval()(torch.zeros(2, *shape)).shape == (2, classes)
