"""NASWOT (Mellor et al., 2021): log|det K| of the Hamming kernel of ReLU activation codes over a mini-batch."""

from __future__ import annotations

import weakref

from nasx.hookspecs import hookimpl
from nasx.interfaces import Proxy
from nasx.options import non_negative, positive


class NASWOT(Proxy):
    name = "naswot"
    summary = "log|det| of the Hamming kernel of binary ReLU codes over a mini-batch"
    needs_data = True
    defaults = {"batch_size": 64, "repeats": 3}
    option_checks = {"batch_size": non_negative, "repeats": positive}  # batch_size 0: the whole input batch

    def score_network(self, network, batch, space) -> float:
        import torch
        from torch import nn

        # K_ij = N_A - Hamming(c_i, c_j) counts the units on which images i and j agree. With s = 2c - 1 in {-1, 1},
        # agreement = (n + s_i . s_j) / 2, so each ReLU adds (n + S S^T) / 2: one matmul per layer, no full code.
        size = len(batch)
        kernel = torch.zeros(size, size, dtype=torch.float64)
        # Several ReLUs often read the same tensor (every op leaving a cell node starts with its own ReLU); their
        # codes are identical, so the product is computed once per tensor and added once per ReLU.
        seen: dict[int, tuple[weakref.ref, torch.Tensor]] = {}

        def record(module, inputs, output):
            source = inputs[0]
            known = seen.get(id(source))
            if known is not None and known[0]() is source and not module.inplace:
                kernel.add_(known[1])
                return
            if output.dim() == 4 and output.is_contiguous(memory_format=torch.channels_last):
                output = output.permute(0, 2, 3, 1)  # a view, so the flattening below copies nothing
            signs = torch.where(output.reshape(size, -1) > 0, 1.0, -1.0)
            contribution = (signs @ signs.T).to(torch.float64) + signs.shape[1]
            kernel.add_(contribution)
            if not module.inplace:
                seen[id(source)] = (weakref.ref(source), contribution)

        handles = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, nn.ReLU)]
        try:
            network.train()  # batch statistics in BatchNorm, as in the reference implementation
            # channels-last only changes the memory layout; convolutions on the CPU run about twice as fast with it
            network.to(memory_format=torch.channels_last)
            with torch.no_grad():
                network(batch.images.contiguous(memory_format=torch.channels_last))
        finally:
            for handle in handles:
                handle.remove()
            # the evaluator shares one network between proxies; the next one must not inherit this layout
            network.to(memory_format=torch.contiguous_format)
        return float(torch.linalg.slogdet(kernel / 2).logabsdet)


@hookimpl
def nasx_register_proxies(register):
    register(NASWOT)
