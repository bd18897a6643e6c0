"""Jacobian covariance (Mellor et al., 2020, the first NASWOT preprint): how decorrelated the input Jacobians of
the images of a mini-batch are."""

from __future__ import annotations

from nasx.interfaces import Proxy
from nasx.options import Check, positive


class JacobCov(Proxy):
    name = "jacob_cov"
    summary = "-sum(log(v + k) + 1/(v + k)) over eigenvalues v of the correlation matrix of input Jacobians"
    needs_data = True
    needs_gradients = True
    defaults = {"batch_size": 64, "repeats": 1}
    # a correlation matrix needs at least two images
    option_checks = {
        "batch_size": Check(lambda size: size == 0 or size >= 2, "0 (the whole input batch) or at least 2"),
        "repeats": positive,
    }
    #: keeps the score finite when an eigenvalue is zero, as in the reference definition
    REGULARISER = 1e-5

    def score_network(self, network, batch, space) -> float:
        import numpy as np
        import torch

        images = batch.images.clone().requires_grad_(True)
        network.train()
        output = network(images)
        # d(sum of outputs)/d(image): one backward pass gives every image's Jacobian row sum
        (jacobian,) = torch.autograd.grad(output.sum(), images, allow_unused=True)
        if jacobian is None:
            return float("nan")  # the output does not depend on the input (e.g. a cell of 'none' edges)
        rows = jacobian.reshape(len(images), -1).cpu().double().numpy()  # numpy needs it on the CPU
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.corrcoef(rows)
        if not np.all(np.isfinite(correlation)):
            return float("nan")  # a constant Jacobian row (e.g. a disconnected cell) has no correlation
        eigenvalues = np.linalg.eigvalsh(correlation)
        shifted = eigenvalues + self.REGULARISER
        return float(-np.sum(np.log(np.abs(shifted)) + 1.0 / shifted))
