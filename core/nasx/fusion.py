"""Horizontal fusion: K architectures of one space scored in one pass of one network.

A space that can (``Space.fusable``) builds a *fused network* of several genotypes (``Space.build_fused``): the K
networks side by side, as HFTA and Packed-Ensembles run several models as one: every activation holds the K models'
channels one block after another (dimension 1), every convolution is grouped (``groups = K``), BatchNorm runs over
the K blocks of channels (so each model keeps its own statistics), and where the models chose different operations
each operation runs on the channels of the models that chose it (gathered, not masked). A proxy that can
(``Proxy.fusable``) scores all K at once (``Proxy.score_fused``). Each model starts from the weights its own network
would get (``nasx.torch_utils.initialise_fused``). See docs/fusion.md.

What a fused network offers (the NATS-Bench networks are the reference, ``nasx_nats.network``):

- ``models``: K; its output: (N, K * classes), model k's logits in columns k * classes ... (k + 1) * classes - 1;
- ``layout(module) -> Layout | None``: how the output channels of a ReLU, convolution or linear layer (its
  activations' dimension 1, its weight's dimension 0) are split among the models;
- ``blocks(module)``: for each convolution and linear layer, each block's model and its weight's shape in the
  model's own network (what ``initialise_fused`` draws);
- ``networks``: the models' own networks, as ``build`` gives them (built when first asked for, on the CPU), and
  ``load_networks()``, which copies their weights in.

Nothing here imports torch at import time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Sequence

from nasx.errors import NasxError

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch
    from nasx.interfaces import Proxy, Space

#: ``batch_archs`` on the CPU when ``auto``: one architecture at a time (see README, Fused scoring)
CPU_AUTO = 1
#: the largest K ``auto`` picks on a GPU
MAX_AUTO = 512
#: share of the GPU's free memory ``auto`` plans to use
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class Layout:
    """The channels of a fused tensor: ``len(models)`` blocks of ``padded`` channels, block i holding model
    ``models[i]`` (its position among the K), whose own channels are the first ``widths[i]`` of the block (the rest
    are zero: padding, where the models' widths differ). ``source`` names the tensor a module reads, the same for
    every module that reads the same tensor in one pass (None when unknown), so that a proxy computes what depends
    only on the input once per tensor and model."""

    models: tuple[int, ...]
    padded: int
    widths: tuple[int, ...]
    source: Hashable | None = None

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.models) or any(not 0 < w <= self.padded for w in self.widths):
            raise ValueError(f"a layout needs one width in 1..{self.padded} per model, got {self.widths}")


def check_batch_archs(value: Any) -> int | str:
    """``auto`` or a positive integer (``--batch-archs``)."""
    if value == "auto":
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NasxError(f"--batch-archs must be a positive integer or 'auto', got {value!r}")
    return value


def fusion_applies(space: "Space", proxies: Sequence["Proxy"]) -> bool:
    """Whether scoring several architectures in one pass can help: the space builds fused networks and a proxy that
    needs a network scores them."""
    return bool(space.fusable) and any(p.fusable and p.needs_network for p in proxies)


def resolve_batch_archs(setting: int | str, space: "Space", proxies: Sequence["Proxy"], batch: "Batch | None",
                        device: str, sharing: int = 1) -> int:
    """Architectures per pass: the setting, or for ``auto`` 1 on a CPU (or where fusion does not apply) and on a
    GPU as many as half its free memory holds by ``model_bytes``' estimate, shared by ``sharing`` processes that
    score on it at once, at most ``MAX_AUTO``."""
    setting = check_batch_archs(setting)
    if setting != "auto":
        return setting
    if not fusion_applies(space, proxies) or not device.startswith("cuda"):
        return CPU_AUTO
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    estimate = model_bytes(space, proxies, batch)
    if not estimate:
        return 1
    return max(1, min(MAX_AUTO, int(MEMORY_SHARE * free / estimate / max(1, sharing))))


def model_bytes(space: "Space", proxies: Sequence["Proxy"], batch: "Batch | None", samples: int = 4) -> int:
    """A generous estimate of the device memory one architecture takes in a fused pass: the bytes of every module's
    output in a forward pass (as if none were freed) of the largest of ``samples`` seeded random architectures, for
    the most images a fusable proxy reads (float64 for a proxy that takes gradients, as synflow does), doubled for
    what fusion adds (gathered inputs, sums placed by model). Computed on torch's meta device: no memory, no
    arithmetic. 0 when the space's networks cannot run there."""
    import torch

    fused = [p for p in proxies if p.fusable and p.needs_network]
    if not fused:
        return 0
    rng = random.Random(0)
    per_image = 0
    try:
        for _ in range(samples):
            with torch.device("meta"):
                network = space.build(space.sample(rng))
                sizes: list[int] = []
                hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() if torch.is_tensor(o) else 0))
                         for m in network.modules()]
                network(torch.empty((1, *space.input_shape)))
            for hook in hooks:
                hook.remove()
            per_image = max(per_image, sum(sizes) * 4)
    except Exception:  # a network that cannot run on the meta device: no estimate
        return 0
    needed = 0
    for proxy in fused:
        images = (proxy.batch_size or len(batch)) if proxy.needs_data and batch is not None else 1
        needed = max(needed, images * per_image * (2 if proxy.needs_gradients else 1))
    return 2 * needed
