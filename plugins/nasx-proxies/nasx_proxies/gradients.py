"""Loss-gradient proxies of the zero-cost literature (Abdelfattah et al., 2021): snip, grasp, fisher, grad_norm.

Each uses one mini-batch with its labels and the cross-entropy loss, BatchNorm in training mode, and sums a
per-weight (or per-activation) saliency over all convolution and linear layers. Gradients are taken with
``torch.autograd.grad``, so the network's ``.grad`` fields and weights are left untouched.
"""

from __future__ import annotations

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive
from nasx_proxies._common import batch_loss, weight_layers


class _LossProxy(Proxy):
    needs_data = True
    needs_labels = True
    needs_gradients = True
    defaults = {"batch_size": 64, "repeats": 1}
    option_checks = {"batch_size": non_negative, "repeats": positive}  # batch_size 0: the whole input batch


def _weight_gradients(network, batch):
    """Conv and linear weights, and the loss gradient of each (None for a weight the loss does not reach)."""
    import torch

    weights = [layer.weight for layer in weight_layers(network)]
    return weights, torch.autograd.grad(batch_loss(network, batch), weights, allow_unused=True)


class Snip(_LossProxy):
    name = "snip"
    summary = "SNIP: sum of |theta * dL/dtheta| over conv and linear weights (cross-entropy, one batch)"

    def score_network(self, network, batch, space) -> float:
        import torch

        weights, gradients = _weight_gradients(network, batch)
        with torch.no_grad():
            return float(sum((w * g).abs().sum() for w, g in zip(weights, gradients) if g is not None))


class GradNorm(_LossProxy):
    name = "grad_norm"
    summary = "Sum over conv and linear layers of the L2 norm of the loss gradient of the layer's weight"

    def score_network(self, network, batch, space) -> float:
        _, gradients = _weight_gradients(network, batch)
        return float(sum(g.norm() for g in gradients if g is not None))


class Grasp(_LossProxy):
    name = "grasp"
    summary = "GraSP: sum of -theta * (H g), H the loss Hessian and g the loss gradient (one batch)"

    def score_network(self, network, batch, space) -> float:
        import torch

        weights = [layer.weight for layer in weight_layers(network)]
        # One forward pass: g(theta) with its graph kept; H g is then the gradient of (g_fixed . g(theta)), so one
        # more backward pass gives it without forming H.
        live = torch.autograd.grad(batch_loss(network, batch), weights, create_graph=True, allow_unused=True)
        product = sum((f.detach() * f).sum() for f in live if f is not None)
        if not torch.is_tensor(product) or not product.requires_grad:
            return 0.0  # no weight reaches the loss
        hessian_gradient = torch.autograd.grad(product, weights, allow_unused=True)
        with torch.no_grad():
            return float(sum((-w * hg).sum() for w, hg in zip(weights, hessian_gradient) if hg is not None))


class Fisher(_LossProxy):
    name = "fisher"
    summary = "Fisher: per channel of each conv/linear output a, 0.5 * mean over images of (sum a * dL/da)^2, summed"

    def score_network(self, network, batch, space) -> float:
        import torch

        activations = []
        handles = [
            layer.register_forward_hook(lambda module, inputs, output: activations.append(output))
            for layer in weight_layers(network)
        ]
        try:
            loss = batch_loss(network, batch)
        finally:
            for handle in handles:
                handle.remove()
        gradients = torch.autograd.grad(loss, activations, allow_unused=True)
        total = 0.0
        with torch.no_grad():
            for activation, gradient in zip(activations, gradients):
                if gradient is None:
                    continue
                per_channel = activation * gradient
                if per_channel.dim() > 2:  # sum over the spatial positions of each channel
                    per_channel = per_channel.sum(dim=tuple(range(2, per_channel.dim())))
                total += float(per_channel.pow(2).mean(0).mul(0.5).sum())
        return total
