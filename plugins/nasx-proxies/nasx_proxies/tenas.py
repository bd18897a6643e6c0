"""TE-NAS's two indicators (Chen et al., 2021): the condition number of the neural tangent kernel, and the
number of linear regions the network cuts its input into."""

from __future__ import annotations

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive


class NTK(Proxy):
    name = "ntk"
    summary = "Condition number of the empirical NTK on one mini-batch (TE-NAS); lower is better"
    higher_is_better = False
    needs_data = True
    needs_gradients = True
    # One backward pass per image makes the NTK the costliest proxy; 32 images halve the cost of a 64-image batch.
    defaults = {"batch_size": 32, "repeats": 1}
    option_checks = {"batch_size": non_negative, "repeats": positive}  # batch_size 0: the whole input batch

    def score_network(self, network, batch, space) -> float:
        import torch

        network.train()
        # TE-NAS differentiates every weight tensor (conv, linear and BatchNorm scale), not the biases.
        weights = [p for name, p in network.named_parameters() if "weight" in name and p.requires_grad]
        summed = network(batch.images).sum(dim=1)  # each image's logits summed, as TE-NAS backpropagates ones
        rows = _per_image_gradients(summed, weights)
        # The small (images x images) kernel goes to the CPU: MPS has no float64, and one eigensolver on every
        # device leaves the kernel as the only place where devices differ.
        kernel = (rows @ rows.T).cpu().double()
        eigenvalues = torch.linalg.eigvalsh(kernel)
        smallest, largest = float(eigenvalues[0]), float(eigenvalues[-1])
        if smallest <= 0.0:
            return float("inf")  # a singular kernel: the worst possible conditioning
        return largest / smallest


def _per_image_gradients(summed, weights):
    """Row i = gradient of summed[i] with respect to all weights, flattened. BatchNorm couples the images, so
    each row is a full backward pass through the batch (batching them with ``is_grads_batched`` was slower)."""
    import torch

    rows = []
    for index in range(summed.shape[0]):
        gradients = torch.autograd.grad(summed[index], weights, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([w.new_zeros(w.numel()) if g is None else g.reshape(-1)
                               for w, g in zip(weights, gradients)]))
    return torch.stack(rows)


class LinearRegions(Proxy):
    name = "nregions"
    summary = "Number of distinct ReLU activation patterns over input patches (TE-NAS linear regions)"
    needs_data = True
    # patch 0: the space's default side, the smallest its networks accept (NAS-Bench-101 pools twice by 2x2; DARTS's
    # factorised reductions need an even side).
    defaults = {"samples": 1000, "patch": 0, "repeats": 1}
    option_checks = {"samples": positive, "patch": non_negative, "repeats": positive}
    default_patch = {"nb101": 4, "darts": 4}

    def score_network(self, network, batch, space) -> float:
        """Counts the distinct activation patterns of ``samples`` small patches cut from the batch's images.

        TE-NAS counts regions of a width-1 copy of the network on 3x3 inputs, where patterns can repeat; on
        full-size images every pattern is unique. nasx feeds ``patch`` x ``patch`` crops (the spatial size is
        the only change; networks with global pooling accept any size) at the network's own width.
        """
        import torch

        from nasx_proxies._common import rectifiers

        side = int(self.options["patch"]) or self.default_patch.get(space.name, 3)
        patches = _random_patches(batch.images, int(self.options["samples"]), side)
        codes = []
        hooks = [m.register_forward_hook(lambda module, inputs, output: codes.append((output > 0).flatten(1)))
                 for m in rectifiers(network)]
        try:
            network.train()
            with torch.no_grad():
                network(patches)
        finally:
            for hook in hooks:
                hook.remove()
        if not codes:
            return 1.0  # no ReLU: the network is one linear region
        pattern = torch.cat(codes, dim=1)
        if pattern.device.type == "mps":
            pattern = pattern.cpu()  # MPS's unique has no dim argument (or a recent, unproven one)
        return float(torch.unique(pattern, dim=0).shape[0])


def _random_patches(images, count: int, side: int):
    """``count`` crops of ``side`` x ``side`` pixels at positions drawn with a fixed seed (drawn on the CPU, so
    every device crops the same pixels)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    size, _, height, width = images.shape
    side = min(side, height, width)
    which = torch.randint(0, size, (count,), generator=generator)
    top = torch.randint(0, height - side + 1, (count,), generator=generator)
    left = torch.randint(0, width - side + 1, (count,), generator=generator)
    rows = (top[:, None] + torch.arange(side))[:, :, None]
    cols = (left[:, None] + torch.arange(side))[:, None, :]
    which, rows, cols = which.to(images.device), rows.to(images.device), cols.to(images.device)
    picked = images[which]  # (count, C, H, W)
    index = torch.arange(count, device=images.device)[:, None, None]
    return picked.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2).contiguous()
