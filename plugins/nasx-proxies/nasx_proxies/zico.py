"""ZiCo (Li et al., ICLR 2023): the inverse coefficient of variation of the loss gradients across mini-batches.

For every convolution and linear layer l, with g_b the gradient of mini-batch b's loss with respect to the layer's
weights:

    ZiCo = sum over layers l of log( sum over weights w of l, with std_b(g_b[w]) > 0, of
                                     mean_b |g_b[w]| / std_b(g_b[w]) )

as the official code computes it (SLDGroup/ZiCo, ZeroShotProxy/compute_zico.py): two mini-batches, the standard
deviation without Bessel's correction (numpy's default), weights whose gradient does not vary left out, and a
layer left out when none of its weights varies or the loss does not reach it (as AZ-NAS's NAS-Bench-201 copy of
that code, kept in ondratybl/VKDNW NB201/ZeroShotProxy/compute_zico_score.py). Each mini-batch's gradient is its
own: that copy zeroes the gradients between mini-batches; the official commit bbabe28 does not, so there the second
"gradient" is g1 + g2.
"""

from __future__ import annotations

from nasx.errors import NasxError
from nasx.interfaces import Proxy
from nasx.options import Check, non_negative, positive
from nasx_proxies._common import as_float64, weight_layers


class ZiCo(Proxy):
    name = "zico"
    summary = "ZiCo: sum over conv/linear layers of log sum(mean|g| / std(g)), g the gradients of 2 mini-batches"
    needs_data = True
    needs_labels = True
    needs_gradients = True
    # 128 images split into the official two mini-batches of 64 (AZ-NAS's NB201 setting for ZiCo)
    defaults = {"batch_size": 128, "splits": 2, "repeats": 1}
    option_checks = {
        "batch_size": non_negative,  # 0: the whole input batch
        "splits": Check(lambda count: count >= 2, "at least 2 (a standard deviation needs two mini-batches)"),
        "repeats": positive,
    }

    def score_network(self, network, batch, space) -> float:
        import math

        import torch
        from torch.nn import functional

        from nasx.torch_utils import dead_operations_skipped

        splits = int(self.options["splits"])
        size = len(batch)
        if size % splits:
            raise NasxError(f"zico splits its batch into {splits} equal mini-batches, but {size} images do not "
                            f"divide by {splits}: set zico.batch_size to a multiple of {splits}")
        part = size // splits
        weights = [layer.weight for layer in weight_layers(network)]
        network.train()  # BatchNorm uses each mini-batch's statistics, as in the official code
        # per mini-batch: the loss gradient of every weight tensor (None where the loss does not reach it)
        gradients = []
        with dead_operations_skipped(network.modules()):  # dead operations get no gradient either way
            for start in range(0, size, part):
                images, labels = batch.images[start:start + part], batch.labels[start:start + part]
                loss = functional.cross_entropy(network(images), labels)
                gradients.append(torch.autograd.grad(loss, weights, allow_unused=True))
        total = 0.0
        for per_batch in zip(*gradients):
            if any(gradient is None for gradient in per_batch):
                continue  # the loss does not reach this layer: skipped, as AZ-NAS skips layers without .grad
            ratio_sum = _inverse_variation_sum(per_batch)
            if ratio_sum != 0.0:  # no weight whose gradient varies: the layer is left out
                total += math.log(ratio_sum)
        return total


def _inverse_variation_sum(per_batch) -> float:
    """sum over weights with a non-zero standard deviation across mini-batches of mean|g| / std(g)."""
    import torch

    stacked = torch.stack([as_float64(gradient).reshape(-1) for gradient in per_batch])
    deviation = stacked.std(dim=0, unbiased=False)
    varies = deviation != 0  # NaN counts as varying, as np.nonzero counts it: a NaN gradient gives a NaN score
    return float((stacked.abs().mean(dim=0)[varies] / deviation[varies]).sum())
