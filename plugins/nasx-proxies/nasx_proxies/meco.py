"""MeCo (Jiang et al., NeurIPS 2023): the minimum eigenvalue of the correlation matrix of each layer's channels,
for one image, summed over the layers. MeCo_opt, from the same paper, estimates each layer's term from 8 sampled
channels."""

from __future__ import annotations

from nasx.interfaces import Proxy
from nasx.options import Check, non_negative, positive
from nasx_proxies._common import as_float64


class MeCo(Proxy):
    name = "meco"
    summary = "Sum over every module's output of the least eigenvalue of its channel correlation matrix, one image"
    needs_data = True
    # One image, as in the official NAS-Bench-201 script (batch size 1). A larger batch changes only the BatchNorm
    # statistics: the correlation is always of the first image's feature map.
    defaults = {"batch_size": 1, "repeats": 1}
    option_checks = {"batch_size": non_negative, "repeats": positive}  # batch_size 0: the whole input batch

    def score_network(self, network, batch, space) -> float:
        """Every module of the network (the network itself, containers and layers, as the official code hooks
        ``named_modules()``) contributes, per call, the least eigenvalue of the channel correlation matrix of its
        output for the batch's first image: rows are channels, columns spatial positions. NaN and infinite
        correlations (a constant channel) count as 0. Outputs with one value per channel ((N, F), or (N, C, 1, 1)
        after global pooling) contribute 0, as in the official code, where all their correlations are NaN; so do
        outputs with no more positions than channels, whose correlation matrix is singular."""
        import torch

        draws = self._channel_draws()
        matrices, scales = [], []

        def record(module, inputs, output):
            if not isinstance(output, torch.Tensor) or output.dim() < 3 or output[0, 0].numel() < 2:
                return  # one value per channel: every correlation is NaN, counted 0, so the term is 0
            channels = output.detach()[0].reshape(output.shape[1], -1)
            rows, scale = draws(channels.shape[0])
            if rows is not None:
                channels = channels[rows.to(channels.device)]
            count, positions = channels.shape
            if positions <= count:
                # The centred rows span at most positions - 1 dimensions, so the correlation matrix is singular
                # and its least eigenvalue is exactly 0 (the official float32 solver returns rounding noise of
                # about 1e-7 there); e.g. every 8 x 8 map of 64 or more channels.
                return
            # float64: the least eigenvalue of a nearly singular matrix is mostly rounding in float32
            correlation = torch.corrcoef(as_float64(channels)).reshape(count, count)  # one channel: a 0-d result
            matrices.append(torch.nan_to_num(correlation, nan=0.0, posinf=0.0, neginf=0.0))
            scales.append(scale)

        handles = [module.register_forward_hook(record) for module in network.modules()]
        try:
            network.train()  # batch statistics in BatchNorm, as the official code (its networks stay in train mode)
            with torch.no_grad():
                network(batch.images)
        finally:
            for handle in handles:
                handle.remove()
        return least_eigenvalue_sum(matrices, scales)

    def _channel_draws(self):
        """A function of a channel count giving (rows to keep or None for all, factor of the eigenvalue)."""
        return lambda count: (None, 1.0)


class MeCoOpt(MeCo):
    name = "meco_opt"
    summary = "MeCo from a seeded sample of 8 channels per module output, scaled by channels / 8"
    defaults = {"batch_size": 1, "repeats": 1, "channels": 8, "seed": 0}
    option_checks = {
        "batch_size": non_negative,
        "repeats": positive,
        "channels": Check(lambda count: count >= 2, "at least 2 (a correlation needs two channels)"),
        "seed": non_negative,
    }

    def _channel_draws(self):
        """Each module output's channels are drawn uniformly without replacement, in the order the modules run,
        from one generator seeded with ``seed`` at every score (the official script draws with Python's unseeded
        ``random.sample``). An output with no more channels than ``channels`` keeps them all, unscaled (the
        official ``random.sample`` raises there)."""
        import torch

        generator = torch.Generator().manual_seed(int(self.options["seed"]))
        sampled = int(self.options["channels"])

        def draw(count: int):
            if count <= sampled:
                return None, 1.0
            return torch.randperm(count, generator=generator)[:sampled], count / sampled

        return draw


def least_eigenvalue_sum(matrices, scales) -> float:
    """Sum of scale * least eigenvalue over the symmetric matrices. Eigenvalues are computed on the CPU for every
    device (one solver everywhere), batched by matrix size."""
    import torch

    by_size: dict[int, list[int]] = {}
    for index, matrix in enumerate(matrices):
        by_size.setdefault(matrix.shape[0], []).append(index)
    total = torch.zeros((), dtype=torch.float64)
    for indices in by_size.values():
        stacked = torch.stack([matrices[i] for i in indices]).cpu()
        least = torch.linalg.eigvalsh(stacked)[:, 0]
        factors = torch.tensor([scales[i] for i in indices], dtype=torch.float64)
        terms = least * factors
        total += terms[torch.isfinite(terms)].sum()  # as the official code, non-finite terms are left out
    return float(total)
