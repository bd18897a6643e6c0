"""GradSign (Zhang & Jia, ICLR 2022): how often the per-sample loss gradients agree in sign.

    GradSign = sum over the weights w of all convolution and linear layers of | sum over images i of sign(g_i[w]) |

with g_i the gradient of image i's own loss, computed from a forward pass of that image alone (BatchNorm in
training mode, so it normalises with that image's statistics), as the official code does (cmu-catalyst/GradSign,
zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py and naswot-code/gradsign.py).
"""

from __future__ import annotations

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive
from nasx_proxies._common import as_float64, weight_layers


class GradSign(Proxy):
    name = "gradsign"
    summary = "GradSign: sum over conv/linear weights of |sum over images of sign(per-image loss gradient)|"
    needs_data = True
    needs_labels = True
    needs_gradients = True
    defaults = {"batch_size": 128, "repeats": 1}  # the official batch (one mini-batch of 128)
    option_checks = {"batch_size": non_negative, "repeats": positive}  # batch_size 0: the whole input batch

    def score_network(self, network, batch, space) -> float:
        import torch
        from torch.nn import functional

        from nasx.torch_utils import dead_operations_skipped

        weights = [layer.weight for layer in weight_layers(network)]
        # per weight tensor: the sum over images of the gradient signs (None until a gradient reaches it; a weight
        # no gradient reaches has sign 0 for every image, as the official code's zeros)
        agreement: list = [None] * len(weights)
        network.train()
        with dead_operations_skipped(network.modules()):  # dead operations get no gradient either way
            for index in range(len(batch)):
                one = slice(index, index + 1)  # one image per pass: BatchNorm couples the images of a batch
                loss = functional.cross_entropy(network(batch.images[one]), batch.labels[one])
                gradients = torch.autograd.grad(loss, weights, allow_unused=True)
                for position, gradient in enumerate(gradients):
                    if gradient is None:
                        continue
                    signs = torch.sign(gradient)
                    agreement[position] = signs if agreement[position] is None else agreement[position] + signs
        # float64: the total can exceed the integers float32 holds exactly. nansum leaves out a weight whose
        # gradient was NaN for some image, as the official np.nansum does.
        return float(sum(as_float64(total).abs().nansum() for total in agreement if total is not None))
