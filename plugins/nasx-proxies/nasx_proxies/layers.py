"""VKDNW's size term (Tybl & Neumann, CVPR 2025): the number of trainable parameter tensors of the network.

The VKDNW paper ranks networks first by this count, written aleph, and reports it alone as a baseline. Its code
(ondratybl/VKDNW, NB201/ZeroShotProxy/compute_vkdnw_score.py, ``info['vkdnw_dim']``) computes it as
``len(list(model.named_parameters()))``: every weight tensor counts once, so a convolution without bias counts 1,
a BatchNorm 2 (scale and shift), a linear layer 2 (weight and bias). Operations of the cell that do not reach the
output count too: their parameters exist. On NATS-Bench TSS this is 21 + 45 x (convolutions in the cell). Tensors
without elements are not weights and are left out (nasbench-pytorch's NAS-Bench-101 cells each hold an empty
``dev_param`` to track their device; the official code never met one).

It depends on the architecture only, so it is computed from the genotype: the network is built, never run.
"""

from __future__ import annotations

from nasx.interfaces import Proxy


class Layers(Proxy):
    name = "layers"
    summary = "VKDNW's aleph: number of trainable parameter tensors of the built network (conv, BN, linear)"
    needs_network = False

    def score_genotype(self, space, genotype) -> float:
        return float(sum(1 for _, weights in space.build(genotype).named_parameters() if weights.numel()))
