"""Zen-score (Lin et al., ICCV 2021): how much the pre-pooling feature map moves under a tiny input perturbation,
corrected for the scale BatchNorm removes.

    Zen = log( mean over images of sum over (c, h, w) of |F(x) - F(x + gamma * e)| )
          + sum over BatchNorm2d layers of log sqrt( mean over channels of the running variance )

with x and e standard-normal images, F the feature map that enters the global average pooling, the network in
training mode (BatchNorm normalises with batch statistics), its running statistics fresh before the two passes, and
every conv and linear weight drawn from N(0, 1) (BatchNorm scale 1, shift 0): the official code
(idstcv/ZenNAS, ZeroShotProxy/compute_zen_score.py, with mixup_gamma = 1e-2 and batches of 64).
"""

from __future__ import annotations

from nasx.errors import NasxError
from nasx.interfaces import Proxy
from nasx.options import non_negative, one_of, positive
from nasx_proxies._common import as_float64


class Zen(Proxy):
    name = "zen"
    summary = "Zen-score: log mean |F(x) - F(x + 0.01 e)| of the pre-pooling features + sum log sqrt(BN variance)"
    # Gaussian input, no images; computed without gradients.
    # init "gaussian": Zen's own N(0, 1) weights, as the official code; "network": the evaluator's initialisation.
    defaults = {"batch_size": 64, "mixup_gamma": 0.01, "init": "gaussian", "seed": 0, "repeats": 1}
    option_checks = {"batch_size": positive, "mixup_gamma": positive, "init": one_of("gaussian", "network"),
                     "seed": non_negative, "repeats": positive}

    def score_network(self, network, batch, space) -> float:
        import copy

        import torch

        # A copy: its weights are redrawn and its running statistics change, the caller's network must not.
        work = copy.deepcopy(network)
        reference = next(work.parameters())
        generator = torch.Generator().manual_seed(self._draw_seed(network))

        def standard_normal(shape):
            # drawn on the CPU, so every device and precision sees the same numbers
            return torch.randn(shape, generator=generator).to(device=reference.device, dtype=reference.dtype)

        with torch.no_grad():
            if self.options["init"] == "gaussian":
                _gaussian_initialisation(work, standard_normal)
            batchnorms = _fresh_batchnorms(work)
            shape = (int(self.options["batch_size"]), *space.input_shape)
            images = standard_normal(shape)
            mixed = images + float(self.options["mixup_gamma"]) * standard_normal(shape)
            work.train()
            features = _pre_pooling_features(work, images)
            moved = _pre_pooling_features(work, mixed)
            expressivity = as_float64((features - moved).abs().sum(dim=(1, 2, 3)).mean())
            scale = sum(float(torch.log(torch.sqrt(as_float64(bn.running_var).mean()))) for bn in batchnorms)
        # log(0) = -inf, as the official code gives it, for a network whose features ignore the input
        return float(torch.log(expressivity)) + scale

    def _draw_seed(self, network) -> int:
        """The seed of Zen's weights and inputs: the ``seed`` option and the evaluator's initial weights (the first
        256 values of the first parameter tensor, as float32 bytes), so every initialisation the evaluator makes
        (``repeats``, ``--init-seed``) gets its own draw, the same on every device and in float64."""
        import hashlib

        first = next(network.parameters()).detach().reshape(-1)[:256].cpu().float().numpy().tobytes()
        digest = hashlib.sha256(str(int(self.options["seed"])).encode() + first).digest()
        return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _gaussian_initialisation(network, standard_normal) -> None:
    """Zen's initialisation: conv and linear weights N(0, 1) and biases 0; BatchNorm/GroupNorm scale 1, shift 0."""
    from torch import nn

    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.weight.copy_(standard_normal(module.weight.shape))
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
            module.weight.fill_(1.0)
            module.bias.zero_()


def _fresh_batchnorms(network) -> list:
    """The network's BatchNorm2d layers, with running statistics reset (mean 0, variance 1), as in the freshly
    built network the official code scores."""
    from torch import nn

    batchnorms = [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in batchnorms:
        if bn.running_var is None:
            raise NasxError("zen needs BatchNorm layers that track running statistics "
                            "(track_running_stats=True); this network has one that does not")
        bn.reset_running_stats()
    return batchnorms


def _pre_pooling_features(network, images):
    """The feature map the global average pooling reads, from one forward pass: the input of the network's last
    ``AdaptiveAvgPool2d`` to 1 x 1 (NATS-Bench: the output of the final BN + ReLU); without one, the last 4-D module
    output with more than one spatial position before the last linear layer is entered (NAS-Bench-101: the last
    cell's output, which it averages with ``torch.mean``)."""
    import torch
    from torch import nn

    found = [None]
    pools = [m for m in network.modules()
             if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))]
    if pools:
        def pooled(module, inputs):
            found[0] = inputs[0]

        handles = [pools[-1].register_forward_pre_hook(pooled)]
    else:
        linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise NasxError("zen needs a network that ends in global average pooling and a linear classifier")
        latest = [None]

        def remember(module, inputs, output):
            if torch.is_tensor(output) and output.dim() == 4 and output.shape[2] * output.shape[3] > 1:
                latest[0] = output

        def classifier_entered(module, inputs):
            if found[0] is None:
                found[0] = latest[0]

        handles = [m.register_forward_hook(remember) for m in network.modules() if m is not network]
        handles.append(linears[-1].register_forward_pre_hook(classifier_entered))
    try:
        network(images)
    finally:
        for handle in handles:
            handle.remove()
    if found[0] is None:
        raise NasxError("zen found no feature map before the global pooling of this network")
    return found[0]
