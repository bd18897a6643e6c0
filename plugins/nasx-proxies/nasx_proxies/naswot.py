"""NASWOT (Mellor et al., 2021): log|det K| of the Hamming kernel of ReLU activation codes over a mini-batch."""

from __future__ import annotations

from nasx.hookspecs import hookimpl
from nasx.interfaces import Proxy


class NASWOT(Proxy):
    name = "naswot"
    summary = "log|det| of the Hamming kernel of binary ReLU codes over a mini-batch"
    needs_data = True
    defaults = {"batch_size": 64, "repeats": 3}

    def score_network(self, network, batch, space) -> float:
        import torch
        from torch import nn

        # K_ij = N_A - Hamming(c_i, c_j) counts the units on which images i and j agree. With s = 2c - 1 in {-1, 1},
        # agreement = (n + s_i . s_j) / 2, so each ReLU adds (n + S S^T) / 2: one matmul per layer, no full code.
        size = len(batch)
        kernel = torch.zeros(size, size, dtype=torch.float64)

        def record(module, inputs, output):
            signs = (output.reshape(size, -1) > 0).to(torch.float32) * 2 - 1
            kernel.add_((signs @ signs.T).to(torch.float64) + signs.shape[1])

        handles = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, nn.ReLU)]
        try:
            network.train()  # batch statistics in BatchNorm, as in the reference implementation
            with torch.no_grad():
                network(batch.images)
        finally:
            for handle in handles:
                handle.remove()
        return float(torch.linalg.slogdet(kernel / 2).logabsdet)


@hookimpl
def nasx_register_proxies(register):
    register(NASWOT)
