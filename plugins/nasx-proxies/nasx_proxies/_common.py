"""Helpers shared by the proxies (imported only when a score is computed, except ``ProxyPlugin``)."""

from __future__ import annotations

from nasx.hookspecs import hookimpl


class ProxyPlugin:
    """The pluggy plugin object of one proxy class: each proxy has its own entry point."""

    def __init__(self, proxy) -> None:
        self.proxy = proxy

    @hookimpl
    def nasx_register_proxies(self, register) -> None:
        register(self.proxy)


def weight_layers(network):
    """Convolution and linear layers: the layers whose weights gradient-based proxies score."""
    from torch import nn

    return [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def batch_loss(network, batch):
    """Cross-entropy of the network's outputs on the batch's labels, with BatchNorm using batch statistics."""
    from torch.nn import functional

    network.train()
    return functional.cross_entropy(network(batch.images), batch.labels)


def remove_batchnorm(network) -> None:
    """Replace every BatchNorm module by the identity, in place."""
    from torch import nn

    for name, child in list(network.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(network, name, nn.Identity())
        else:
            remove_batchnorm(child)
