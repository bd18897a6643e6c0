"""VKDNW (Týbl & Neumann, CVPR 2025, "Training-free Neural Architecture Search through Variance of Knowledge of
Deep Network Weights"): how evenly the empirical Fisher information of a network's weights is spread.

One weight is sampled from each of the first ``tensors`` parameter tensors (its first element); F is the mean over
images of AᵀA, A = L·J with J the Jacobian of the image's logits with respect to the sampled weights and L the
exact Cholesky factor of the covariance diag(p) - p pᵀ of the (smoothed) softmax p. VKDNW is the entropy of the
nine deciles of F's eigenvalues, normalised to sum 1; ``vkdnw_single`` adds the number of parameter tensors, which
orders networks by their number of trainable layers first, as the paper's VKDNW_single.
"""

from __future__ import annotations

import math

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive
from nasx_proxies._common import as_float64

#: The softmax is mixed with the uniform distribution by this weight. The official code writes 0.05 as a float16
#: tensor, so the value it uses is 0.05 rounded to float16.
SMOOTHING = 0.04998779296875
#: keeps the normalisation and the logarithm finite, as in the official code
ENTROPY_EPSILON = 1e-10
#: the deciles 0.1, ..., 0.9 of the eigenvalues
QUANTILE_STEP = 0.1
#: Images whose Jacobians are taken together on a CPU. vmap over all 64 images runs 64 x classes backward passes side
#: by side: 13 GB per process on ImageNet16-120 (120 classes), 2.4 GB on cifar10. One image at a time keeps it under
#: 1 GB and, on one CPU thread, was also faster: 3.0x on ImageNet16-120, 1.3x on cifar10
#: (benchmarks/vkdnw_memory.py). On an accelerator all images go at once (0), as in the official code.
IMAGES_AT_ONCE = 1


def smoothed_softmax_cholesky(logits):
    """(images, classes, classes) lower-triangular L with L Lᵀ = diag(p) - p pᵀ, p the softmax mixed with the
    uniform distribution (Tanabe & Sagae 1992, the exact Cholesky factor of a multinomial covariance):
    q_j = 1 - (p_0 + ... + p_j), d_j = sqrt(p_j q_j / q_{j-1}) (q_{-1} = 1), L_jj = d_j, L_ij = -p_i d_j / q_j
    below the diagonal. The last column is zero (q of the last class is 0): the covariance has rank classes - 1."""
    import torch

    classes = logits.shape[1]
    probabilities = torch.softmax(logits, dim=1) * (1 - SMOOTHING) + SMOOTHING / classes
    remaining = 1 - torch.cumsum(probabilities, dim=1)
    remaining[:, -1] = 0
    previous = torch.cat([torch.ones_like(remaining[:, :1]), remaining[:, :-1]], dim=1)
    diagonal = torch.sqrt(probabilities * remaining / previous)
    below = -probabilities[:, :, None] * (1 / remaining[:, None, :])  # -p_i / q_j; -inf in the last column
    below = torch.nan_to_num(below, neginf=0.0)
    lower = torch.tril(below, diagonal=-1) + torch.eye(classes, dtype=logits.dtype, device=logits.device)
    return lower * diagonal[:, None, :]  # columns times d_j


def sampled_weight_jacobian(network, images, tensors: int, scale: dict, images_at_once: int | None = None):
    """(images, classes, sampled weights): d logits / d the first element of each of the first ``tensors``
    parameter tensors (0: all), per image, with BatchNorm using its running statistics (evaluation mode, so every
    image's logits depend on that image alone). ``scale`` multiplies the named weights first (fan-in scaling);
    ``images_at_once`` images are differentiated together (0: all; None: ``IMAGES_AT_ONCE`` on a CPU, else all)."""
    import torch
    from torch.func import functional_call, jacrev, vmap

    parameters = {name: p.detach() * scale.get(name, 1.0) for name, p in network.named_parameters()}
    buffers = {name: b.detach() for name, b in network.named_buffers()}
    layers = weight_tensor_names(network)
    sampled = {name: parameters[name].reshape(-1)[:1] for name in (layers[:tensors] if tensors else layers)}

    def logits_of_one_image(image, sampled_values):
        replaced = dict(parameters)
        for name, value in sampled_values.items():
            rest = parameters[name].reshape(-1)[1:]
            replaced[name] = torch.cat([value, rest]).reshape(parameters[name].shape)
        return functional_call(network, (replaced, buffers), (image.unsqueeze(0),)).squeeze(0)

    jacobian_of_images = vmap(jacrev(logits_of_one_image, argnums=1), in_dims=(0, None))

    def in_steps(step: int):
        pieces = []
        for start in range(0, len(images), step):  # a plain loop: vmap's own chunk_size kept every chunk's memory
            per_name = jacobian_of_images(images[start:start + step], sampled)
            pieces.append(torch.cat([per_name[name] for name in sampled], dim=2))
        return torch.cat(pieces)

    if images_at_once is None:
        images_at_once = IMAGES_AT_ONCE if images.device.type == "cpu" else 0
    step = images_at_once or len(images)
    if step == 1:
        return in_steps(1)
    try:
        return in_steps(step)
    except torch.OutOfMemoryError:
        # Several processes sharing one GPU can leave too little for all images at once (ImageNet16-120: 16-22 GB a
        # process); one image at a time gives the same Jacobian in under 1 GB.
        if images.device.type == "cuda":
            torch.cuda.empty_cache()
        return in_steps(1)


def weight_tensor_names(network) -> list[str]:
    """Names of the parameter tensors, in the network's order, leaving out empty ones (nasbench-pytorch's cells
    hold a zero-element ``dev_param`` that is no layer)."""
    return [name for name, p in network.named_parameters() if p.numel() > 0]


def fisher_decile_entropy(network, images, tensors: int, fan_in: bool) -> float:
    """VKDNW: -sum t log(t + 1e-10) over the nine deciles of the eigenvalues of F, t = deciles / (sum + 1e-10)."""
    import torch
    from torch.func import functional_call

    scale = _fan_in_factors(network) if fan_in else {}
    training = network.training
    network.eval()
    try:
        jacobian = sampled_weight_jacobian(network, images, tensors, scale)
        with torch.no_grad():
            weights = {name: p * scale.get(name, 1.0) for name, p in network.named_parameters()}
            logits = functional_call(network, (weights, dict(network.named_buffers())), (images,))
    finally:
        network.train(training)
    # F and its spectrum in float64 (the official code: float32, whose rounding puts a floor near 1e-7 λmax under
    # eigenvalues that are far smaller, and moves VKDNW by up to 4 % on NB201 cells). The official code multiplies
    # J by L (not Lᵀ), so F = mean Jᵀ Lᵀ L J; kept as it is.
    projected = smoothed_softmax_cholesky(as_float64(logits)) @ as_float64(jacobian)
    fisher = (projected.transpose(1, 2) @ projected).mean(dim=0)
    if not bool(torch.isfinite(fisher).all()):
        return math.nan  # overflowed logits or Jacobians: no spectrum to take
    eigenvalues = torch.linalg.svdvals(fisher)  # F is symmetric positive semi-definite: singular = eigen values
    levels = torch.arange(QUANTILE_STEP, 1.0, QUANTILE_STEP, dtype=eigenvalues.dtype, device=eigenvalues.device)
    deciles = torch.quantile(eigenvalues, levels)
    shares = deciles / (deciles.abs().sum() + ENTROPY_EPSILON)
    return float(-(shares * torch.log(shares + ENTROPY_EPSILON)).sum()) + 0.0  # + 0.0: no -0.0 for all-zero


def _fan_in_factors(network) -> dict:
    """name of a conv or linear weight -> sqrt(fan_out / fan_in), for the weights where it is not 1 (see
    ``aznas.fan_in_scaled``)."""
    from torch import nn

    factors = {}
    for module_name, module in network.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(module.weight)
            if fan_in != fan_out:
                factors[f"{module_name}.weight" if module_name else "weight"] = math.sqrt(fan_out / fan_in)
    return factors


class VKDNW(Proxy):
    name = "vkdnw"
    version = "2"  # Jacobians per image on a CPU (float32 sums in another order: scores moved by about 1e-6)
    summary = "Entropy of the deciles of the empirical Fisher information eigenvalues of sampled weights (VKDNW)"
    needs_data = True
    needs_gradients = True
    # The official NAS-Bench-201 runs: 64 random-normal images, one weight from each of the first 128 parameter
    # tensors, one initialisation. fan_in: the official Kaiming fan-in scale (assumes --init kaiming).
    defaults = {"batch_size": 64, "tensors": 128, "repeats": 1, "fan_in": True}
    option_checks = {"batch_size": non_negative, "tensors": non_negative, "repeats": positive}

    def score_network(self, network, batch, space) -> float:
        return fisher_decile_entropy(network, batch.images, int(self.options["tensors"]),
                                     bool(self.options["fan_in"]))


class VKDNWSingle(VKDNW):
    name = "vkdnw_single"
    summary = "VKDNW_single: number of parameter tensors + VKDNW (orders by trainable layers, then by VKDNW)"

    def score_network(self, network, batch, space) -> float:
        return float(len(weight_tensor_names(network))) + super().score_network(network, batch, space)
