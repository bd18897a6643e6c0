"""Torch networks of the ``mobile`` space, layer for layer OFA's ``ProxylessNASNets`` sub-networks (see
``nasx_mobile.space``). Written so that ``torch.jit.script`` compiles them."""

from __future__ import annotations

import torch
from torch import nn

from nasx_mobile.space import BN_EPS, BN_MOMENTUM, Layout


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Convolution (no bias, padding kernel // 2), BatchNorm and, with ``act``, ReLU6 (OFA's ``weight_bn_act``)."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expansion (omitted for expansion 1), depthwise k x k, 1x1 projection; the input is added when the shapes
    agree (OFA's ``MBConvLayer`` in a ``ResidualBlock``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, middle: int, expand: bool = True) -> None:
        super().__init__()
        layers = [conv_bn(c_in, middle, 1)] if expand else []
        layers += [conv_bn(middle, middle, kernel, stride, groups=middle), conv_bn(middle, c_out, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out and expand

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetwork(nn.Module):
    """Stem, the fixed first block, the searched blocks, 1x1 convolution, global average pooling, classifier."""

    def __init__(self, net: Layout, dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = conv_bn(net.in_channels, net.stem, 3, stride=2)
        blocks = [InvertedResidual(net.stem, net.first_block, 3, 1, net.stem, expand=False)]
        blocks += [InvertedResidual(b.in_channels, b.out_channels, b.kernel, b.stride, b.middle) for b in net.blocks]
        # `stem` and `cells` (a Sequential of the blocks): the layout AZ-NAS's proxies read block outputs from
        self.cells = nn.Sequential(*blocks)
        self.feature_mix = conv_bn(net.blocks[-1].out_channels, net.last, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)  # a pooling module, so that the proxies that read pooled features find it
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(net.last, net.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))
