"""SWAP (Peng et al., ICLR 2024, "SWAP-NAS"): the number of distinct sample-wise activation patterns — for each
ReLU unit, the binary pattern of its activity across the images of a mini-batch — and its variant regularised by
the parameter count."""

from __future__ import annotations

import math

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive

#: Smallest and largest parameter count (thousands) of the networks of each space and dataset: nats-tss and nb101
#: from the benchmark tables, nats-sss from its exact cost model over all 32768 networks.
SIZE_RANGE = {
    ("nats-tss", "cifar10"): (73.306, 1531.546),
    ("nats-tss", "cifar100"): (79.156, 1537.396),
    ("nats-tss", "ImageNet16-120"): (80.456, 1538.696),
    ("nats-sss", "cifar10"): (11.714, 713.674),
    ("nats-sss", "cifar100"): (12.524, 719.524),
    ("nats-sss", "ImageNet16-120"): (12.704, 720.824),
    ("nb101", "cifar10"): (227.274, 49979.274),
}


def default_regularisation(space) -> tuple[float, float] | None:
    """(mu, sigma) for a space, or None for a space not in SIZE_RANGE. The official code fixes neither (its
    regularisation is off unless the caller passes both); nasx's choice is mu = the largest network and
    sigma = (largest - smallest)^2, so the factor exp(-((P - largest) / (largest - smallest))^2) falls from 1 on
    the largest network to 1/e on the smallest: a size prior spanning the whole space."""
    sizes = SIZE_RANGE.get((space.name, getattr(space, "dataset", "")))
    if sizes is None:
        return None
    smallest, largest = sizes
    return largest, (largest - smallest) ** 2


class SWAP(Proxy):
    name = "swap"
    summary = "Number of distinct sample-wise activation patterns of the ReLU units over a mini-batch"
    needs_data = True
    # 16 images and the mean over 32 initialisations, as the official correlation script (one initialisation
    # costs 1/32 of the time and ranks somewhat worse: see docs). mu and sigma 0: the space's values
    # (default_regularisation), used only with regularise=true.
    defaults = {"batch_size": 16, "repeats": 32, "regularise": False, "mu": 0.0, "sigma": 0.0}
    option_checks = {"batch_size": non_negative, "repeats": positive, "mu": non_negative, "sigma": non_negative}

    def score_network(self, network, batch, space) -> float:
        """The units are the outputs of every ReLU call on a feature map (ReLUs on (N, F) inputs are left out, as
        in the official hook); a unit's pattern is which images activate it (output > 0; a NaN counts as
        inactive). The score is the number of distinct patterns; with ``regularise``, times
        exp(-(P - mu)^2 / sigma), P the network's parameter count in thousands."""
        import torch

        from nasx_proxies._common import rectifiers

        active = []

        def record(module, inputs, output):
            if inputs[0].dim() == 4:
                active.append((output.detach() > 0).reshape(output.shape[0], -1))

        handles = [m.register_forward_hook(record) for m in rectifiers(network)]
        try:
            network.train()  # batch statistics in BatchNorm, as the official code
            with torch.no_grad():
                network(batch.images)
        finally:
            for handle in handles:
                handle.remove()
        count = distinct_patterns(torch.cat(active, dim=1)) if active else 0
        if not self.options["regularise"]:
            return float(count)
        mu, sigma = self.regularisation(space)
        thousands = sum(p.numel() for p in network.parameters()) / 1e3
        return count * math.exp(-((thousands - mu) ** 2) / sigma)

    def regularisation(self, space) -> tuple[float, float]:
        """(mu, sigma): the options where given (non-zero), else the space's values."""
        from nasx.errors import NasxError

        mu, sigma = float(self.options["mu"]), float(self.options["sigma"])
        if mu and sigma:
            return mu, sigma
        default = default_regularisation(space) if space is not None else None
        if default is None:
            name = getattr(space, "name", None)
            raise NasxError(f"swap.regularise on space '{name}' needs -o swap.mu=M -o swap.sigma=S "
                            "(thousands of parameters)")
        return (mu or default[0]), (sigma or default[1])


def distinct_patterns(active) -> int:
    """Number of distinct columns of a (samples, units) boolean matrix: each unit's column is packed into
    integers of 62 bits (one per 62 samples), then the distinct codes are counted."""
    import torch

    samples, units = active.shape
    words = []
    for start in range(0, samples, 62):
        word = torch.zeros(units, dtype=torch.int64, device=active.device)
        for bit, row in enumerate(active[start:start + 62]):
            word |= row.to(torch.int64) << bit
        words.append(word)
    if len(words) == 1:
        return int(torch.unique(words[0]).numel())
    codes = torch.stack(words, dim=1)
    if codes.device.type == "mps":
        codes = codes.cpu()  # MPS's unique has no dim argument
    return int(torch.unique(codes, dim=0).shape[0])
