"""Noise immunity (NI): how much Gaussian input noise changes the feature maps of the network's pooling layers.

X' = X + noise_std * z with z standard normal (X is the normalised batch, so noise_std is in units of the data's
standard deviation); eta = sum over every pooling module (average, max, adaptive or global) of
||f(X) - f(X')||^2 / N, N the batch size. Lower is better: an architecture whose pooled features move less is
more immune to noise. Pooling layers per space: nats-tss - the avg_pool_3x3 edges of the cells, the 2x2
average pool of each reduction block's shortcut, and the global average pool before the classifier.
"""

from __future__ import annotations

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive
from nasx_proxies._common import as_float64

POOLING = ("AvgPool1d", "AvgPool2d", "AvgPool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")


class NoiseImmunity(Proxy):
    name = "ni"
    summary = "Noise immunity: squared change of pooling-layer features under Gaussian input noise; lower is better"
    higher_is_better = False
    needs_data = True
    defaults = {"batch_size": 64, "noise_std": 1.0, "noise_seed": 0, "repeats": 1}
    # batch_size 0: the whole input batch; any int seeds the noise
    option_checks = {"batch_size": non_negative, "noise_std": non_negative, "repeats": positive}

    def score_network(self, network, batch, space) -> float:
        import torch

        pools = [m for m in network.modules() if type(m).__name__ in POOLING]
        if not pools:
            from nasx.errors import NasxError

            raise NasxError(f"proxy 'ni': the networks of space '{space.name}' have no pooling layer")
        # The noise is drawn on the CPU and then moved, so a seed gives the same noise on every device.
        generator = torch.Generator().manual_seed(int(self.options["noise_seed"]))
        noise = torch.randn(batch.images.shape, generator=generator, dtype=batch.images.dtype)
        noisy = batch.images + float(self.options["noise_std"]) * noise.to(batch.images.device)
        features: list = []  # the clean pass's pooled maps, then the noisy pass's
        hooks = [m.register_forward_hook(lambda module, inputs, output: features.append(as_float64(output)))
                 for m in pools]
        try:
            network.train()
            with torch.no_grad():
                network(batch.images)
                network(noisy)
        finally:
            for hook in hooks:
                hook.remove()
        half = len(features) // 2
        total = sum(float((a - b).pow(2).sum()) for a, b in zip(features[:half], features[half:]))
        return total / len(batch)
