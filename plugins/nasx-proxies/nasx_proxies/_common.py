"""Helpers shared by the proxies (imported only when a score is computed)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager


def weight_layers(network):
    """Convolution and linear layers: the layers whose weights gradient-based proxies score."""
    from torch import nn

    return [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def rectifiers(network) -> list:
    """The ReLU modules whose binary codes (output > 0) the activation-pattern proxies read: ``nn.ReLU`` and
    ``nn.ReLU6`` (MobileNet's; its code is the same, unit active or not)."""
    from torch import nn

    return [m for m in network.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]


def batch_loss(network, batch):
    """Cross-entropy of the network's outputs on the batch's labels, with BatchNorm using batch statistics."""
    from torch.nn import functional

    network.train()
    return functional.cross_entropy(network(batch.images), batch.labels)


def as_float64(tensor):
    """``tensor`` in float64, moved to the CPU first when its device has no float64 (Apple's MPS). float32 ->
    float64 is exact, so the values are the same wherever the conversion happens."""
    import torch

    if tensor.device.type == "mps":
        tensor = tensor.cpu()
    return tensor.to(torch.float64)


def remove_batchnorm(network) -> None:
    """Replace every BatchNorm module by the identity, in place."""
    from torch import nn

    for name, child in list(network.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(network, name, nn.Identity())
        else:
            remove_batchnorm(child)


def all_modules(network) -> list:
    """``list(network.modules())`` (the same modules in the same order), several times faster: ``modules()`` builds
    every submodule's qualified name, which costs about 3 % of a SynFlow score."""
    found, seen, stack = [], set(), [network]
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        found.append(module)
        stack.extend(reversed([child for child in module._modules.values() if child is not None]))
    return found


@contextmanager
def replaced_forwards(replacements):
    """For the duration, each module in ``replacements`` (module -> callable) computes its output with the callable
    instead of its own forward; hooks still run around it. The modules are restored however the block ends."""
    # The instance dict is written directly: nn.Module.__setattr__ would do the same after slow checks (a network
    # has hundreds of modules, and a proxy call lasts a few milliseconds).
    previous = {module: module.__dict__.get("forward") for module in replacements}
    try:
        for module, forward in replacements.items():
            module.__dict__["forward"] = forward
        yield
    finally:
        for module, forward in previous.items():
            module.__dict__.pop("forward", None)
            if forward is not None:
                module.__dict__["forward"] = forward


_FREED_MEMORY_KEPT = False


def keep_freed_memory() -> None:
    """Once per process, with glibc's allocator: keep freed blocks of up to 32 MiB for reuse instead of handing
    them back to the system.

    glibc's default maps every large block afresh and returns it on release (its own adaptive thresholds do not
    keep up with a forward pass's alternating tensor sizes), so each forward pass over a batch faulted in ~100 MB of
    new pages: on naswot about a fifth of the CPU time went to the kernel. Values are unaffected; the process keeps
    up to 256 MiB of free memory. Explicit MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ settings win.
    """
    global _FREED_MEMORY_KEPT
    if _FREED_MEMORY_KEPT:
        return
    _FREED_MEMORY_KEPT = True
    if not sys.platform.startswith("linux") or any(
        name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    mallopt(m_mmap_threshold, 32 * 2**20)  # the largest value glibc accepts on 64-bit systems
    mallopt(m_trim_threshold, 256 * 2**20)
