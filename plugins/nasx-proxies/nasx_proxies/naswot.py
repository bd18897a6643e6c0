"""NASWOT (Mellor et al., 2021): log|det K| of the Hamming kernel of ReLU activation codes over a mini-batch."""

from __future__ import annotations

import functools
import weakref

from nasx.interfaces import Proxy
from nasx.options import non_negative, positive

# float32 represents every integer up to 2**24 exactly: the agreement counts of up to that many units per product
EXACT_FLOAT32_COUNT = 2**24


def agreement_counts(activations, size: int, device=None, int8: bool | None = None):
    """(size, size) float64 matrix on ``device`` (default: the activations'): for each pair of images, the number
    of units of this ReLU output on which their binary codes (activation > 0) agree.

    With codes c in {0, 1}, agree = c_i c_j + (1 - c_i)(1 - c_j), so the counts are N - r_i - r_j + 2 (C C^T)_ij,
    where r_i = (C C^T)_ii is the number of active units of image i: one matrix product of exact integers. ``int8``
    multiplies int8 codes with int32 sums, else float32 (default: int8 on a CPU where it measures faster; the counts
    are the same either way).
    """
    import torch

    if activations.dim() == 4 and activations.is_contiguous(memory_format=torch.channels_last):
        activations = activations.permute(0, 2, 3, 1)  # a view, so the flattening below copies nothing
    flat = activations.reshape(size, -1)
    units = flat.shape[1]
    device = flat.device if device is None else device
    codes = torch.sign(flat).float()  # a ReLU's output is >= 0: its sign is the code, far cheaper than (x > 0)
    if torch.isnan(codes.sum(1)).any():  # NaN > 0 is false: inactive (sign(NaN) is 0 on the CPU, not everywhere)
        codes = torch.nan_to_num(codes, nan=0.0)
    if int8 is None:
        int8 = codes.device.type == "cpu" and int8_products_faster()
    if int8 and units < 2**31:
        small = codes.to(torch.int8)
        gram = torch._int_mm(small, small.T).to(device).double()
    else:
        gram = torch.zeros((size, size), dtype=torch.float64, device=device)
        for start in range(0, units, EXACT_FLOAT32_COUNT):
            chunk = codes[:, start:start + EXACT_FLOAT32_COUNT]
            gram += (chunk @ chunk.T).to(device).double()  # MPS has no float64: its counts go to the CPU first
    active = gram.diagonal().clone()
    return gram.mul_(2).sub_(active[:, None]).sub_(active[None, :]).add_(units)


@functools.lru_cache(maxsize=None)
def int8_products_faster() -> bool:
    """Whether this CPU multiplies int8 codes into int32 sums (``torch._int_mm``, torch >= 2.2) faster than float32
    codes, timed once per process on products of naswot's size (under 50 ms where int8 is slow). Where the CPU has int8
    dot-product instructions (AVX-512 VNNI, AMX) int8 is about twice as fast; on a CPU with AVX2 only (an AMD
    EPYC of 2021) it was about twenty times slower. Both give the same exact counts: only the speed depends on it."""
    import time

    import torch

    try:
        probe = torch.ones((2, 8), dtype=torch.int8)
        if not torch.equal(torch._int_mm(probe, probe.T), torch.full((2, 2), 8, dtype=torch.int32)):
            return False
    except (AttributeError, RuntimeError, NotImplementedError):
        return False

    def seconds(product) -> float:
        start = time.perf_counter()
        product()
        return time.perf_counter() - start

    codes = torch.ones((64, 2048))
    small = codes.to(torch.int8)
    products = (lambda: torch._int_mm(small, small.T), lambda: codes @ codes.T)
    for product in products:  # the first calls initialise the libraries
        product()
    # alternated, so that a busy machine slows both; the fastest of five each
    times = [[seconds(product) for product in products] for _ in range(5)]
    return min(t[0] for t in times) < min(t[1] for t in times)


class BoxAverage3x3:
    """``AvgPool2d(3, stride=1, padding=1, count_include_pad=False)`` as a depthwise convolution with ones divided
    by each window's size: the same values up to float32 rounding, about four times faster than ``avg_pool2d`` in
    the channels-last layout on a CPU."""

    def __init__(self) -> None:
        self.constants: dict = {}

    @staticmethod
    def replaces(module) -> bool:
        from torch import nn

        def pair(value):
            return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

        return (isinstance(module, nn.AvgPool2d) and pair(module.kernel_size) == (3, 3)
                and pair(module.stride) == (1, 1) and pair(module.padding) == (1, 1)
                and not module.count_include_pad and not module.ceil_mode and module.divisor_override is None)

    def __call__(self, x):
        from torch.nn import functional

        key = (tuple(x.shape[1:]), x.dtype, x.device)
        if key not in self.constants:
            ones = x.new_ones((x.shape[1], 1, 3, 3))
            window_sizes = functional.conv2d(x.new_ones((1, 1, *x.shape[2:])), ones[:1], padding=1)
            self.constants[key] = ones, window_sizes
        ones, window_sizes = self.constants[key]
        return functional.conv2d(x, ones, padding=1, groups=x.shape[1]).div_(window_sizes)


def observed_forward(network, images, record) -> None:
    """One forward pass of ``network`` on ``images`` in training mode (BatchNorm uses batch statistics, as in the
    reference implementation), without gradients, calling ``record(module, inputs, output)`` for every ReLU (and ReLU6). Dead
    operations are skipped (their ReLUs still run); on a CPU, poolings are computed as convolutions and the pass runs
    in the channels-last layout. The network is left as it was, but for BatchNorm's running statistics."""
    import torch

    from nasx.torch_utils import dead_operations_skipped
    from nasx_proxies._common import rectifiers, replaced_forwards

    on_cpu = images.device.type == "cpu"
    box_average = BoxAverage3x3()
    # CPU-specific: avg_pool2d is slow there in channels-last, a depthwise convolution is not
    poolings = {m: box_average for m in network.modules() if on_cpu and BoxAverage3x3.replaces(m)}
    handles = [m.register_forward_hook(record) for m in rectifiers(network)]
    try:
        network.train()
        if on_cpu:  # only the memory layout changes; CPU convolutions run about twice as fast with it
            network.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), replaced_forwards(poolings), dead_operations_skipped(network.modules()):
            network(images)
    finally:
        for handle in handles:
            handle.remove()
        if on_cpu:  # the evaluator shares one network between proxies; the next one must not inherit this layout
            network.to(memory_format=torch.contiguous_format)


def kernel_device(images):
    """Where the kernel is summed: MPS has no float64, and the kernel is tiny, so it is summed on the CPU there."""
    import torch

    return images.device if images.device.type != "mps" else torch.device("cpu")


def batched_agreement_counts(codes, device=None):
    """(M, N, N) float64 on ``device`` (default: the codes'): ``agreement_counts`` of M models at once, from their
    float32 codes (M, N, units) in {0, 1} (exact integers: products are summed in float32 over at most 2**24 units
    at a time)."""
    import torch

    models, size, units = codes.shape
    device = codes.device if device is None else device
    gram = torch.zeros((models, size, size), dtype=torch.float64, device=device)
    for start in range(0, units, EXACT_FLOAT32_COUNT):
        chunk = codes[:, :, start:start + EXACT_FLOAT32_COUNT]
        gram += torch.bmm(chunk, chunk.transpose(1, 2)).to(device).double()  # MPS has no float64: CPU first
    active = gram.diagonal(dim1=1, dim2=2).clone()
    return gram.mul_(2).sub_(active[:, :, None]).sub_(active[:, None, :]).add_(units)


class NASWOT(Proxy):
    name = "naswot"
    summary = "log|det| of the Hamming kernel of binary ReLU codes over a mini-batch"
    needs_data = True
    fusable = True
    # one initialisation: it finds the cells three find, at a third of the cost (docs/results.md, Defaults);
    # FreeREA averages three (-o repeats=3)
    defaults = {"batch_size": 64, "repeats": 1}
    option_checks = {"batch_size": non_negative, "repeats": positive}  # batch_size 0: the whole input batch
    # 2: poolings computed as convolutions on the CPU (a code can differ only where a float32 activation rounds
    # across zero) and dead convolutions skipped; the kernel is the same exact integer matrix
    version = "2"

    def score_network(self, network, batch, space) -> float:
        import torch

        from nasx_proxies._common import keep_freed_memory

        keep_freed_memory()
        # K_ij = N_A - Hamming(c_i, c_j): the units on which images i and j agree, summed over the ReLUs.
        size = len(batch)
        device = kernel_device(batch.images)
        kernel = torch.zeros(size, size, dtype=torch.float64, device=device)
        # Several ReLUs often read the same tensor (every op leaving a cell node starts with its own ReLU); their
        # codes are identical, so the counts are computed once per tensor and added once per ReLU.
        seen: dict[int, tuple[weakref.ref, torch.Tensor]] = {}

        def record(module, inputs, output):
            source = inputs[0]
            known = seen.get(id(source))
            if known is not None and known[0]() is source and not module.inplace:
                kernel.add_(known[1])
                return
            counts = agreement_counts(output, size, device)
            kernel.add_(counts)
            if not module.inplace:
                seen[id(source)] = (weakref.ref(source), counts)

        observed_forward(network, batch.images, record)
        return float(torch.linalg.slogdet(kernel).logabsdet)

    def score_fused(self, network, batch, space) -> list[float]:
        """Each model's kernel from its own channels of every ReLU output (``network.layout``), all in one pass:
        the same integer matrices as one network at a time, so the same scores wherever the activations are."""
        import torch

        from nasx_proxies._common import keep_freed_memory

        keep_freed_memory()
        # a CPU that multiplies int8 codes faster does so one model at a time; elsewhere all models' codes in one
        # float32 product
        on_cpu = batch.images.device.type == "cpu"
        kernels = fused_kernels(network, batch.images, batched=not (on_cpu and int8_products_faster()))
        return [float(value) for value in torch.linalg.slogdet(kernels).logabsdet]


def fused_kernels(network, images, batched: bool):
    """(models, N, N) float64: the kernel of each model of a fused network (:mod:`nasx.fusion`) from one forward
    pass on ``images``. Several ReLUs of a model often read the same tensor (every operation leaving a cell node
    starts with its own ReLU, and the models that chose each operation read their own channels of the node): the
    counts of each model's channels of a tensor are computed once and added once per ReLU."""
    import torch

    size, models = images.shape[0], network.models
    device = kernel_device(images)
    kernels = torch.zeros(models, size, size, dtype=torch.float64, device=device)
    # per tensor read (of the cell being run): every model's counts, and which models' are there
    known: dict = {}
    indices: dict[tuple[int, ...], torch.Tensor] = {}

    def index(chosen: tuple[int, ...]):
        if chosen not in indices:
            indices[chosen] = torch.tensor(chosen, device=device)
        return indices[chosen]

    def record(module, inputs, output):
        layout = network.layout(module)
        blocks = output.unflatten(1, (len(layout.models), layout.padded))
        shared = layout.source is not None and not module.inplace
        if shared:
            if known and next(iter(known))[0] != layout.source[0]:  # a new cell: the last one's tensors are gone
                known.clear()
            counts, filled = known.setdefault(layout.source, (kernels.new_zeros(kernels.shape), set()))
        missing: dict[int, list[int]] = {}  # width -> blocks whose counts are computed now
        for block, (model, width) in enumerate(zip(layout.models, layout.widths)):
            if not (shared and model in filled):
                missing.setdefault(width, []).append(block)
        for width, chosen in missing.items():
            computed = _counts(blocks, chosen, width, device, batched)
            owners = index(tuple(layout.models[block] for block in chosen))
            if shared:
                counts.index_copy_(0, owners, computed)
                filled.update(layout.models[block] for block in chosen)
            else:
                kernels.index_add_(0, owners, computed)
        if shared:
            everyone = index(layout.models)
            kernels.index_add_(0, everyone, counts.index_select(0, everyone))

    observed_forward(network, images, record)
    return kernels


def _counts(blocks, chosen: list[int], width: int, device, batched: bool):
    """(len(chosen), N, N) on ``device``: the agreement counts of the first ``width`` channels of each chosen block
    (blocks: (N, models, channels, ...)), in one batched product or one model at a time (``agreement_counts``)."""
    import torch

    size = blocks.shape[0]
    if not batched:
        return torch.stack([agreement_counts(blocks[:, block, :width], size, device) for block in chosen])
    if len(chosen) < blocks.shape[1] or width < blocks.shape[2]:
        blocks = blocks[:, chosen, :width]
    # NaN > 0 is false: inactive (sign(NaN) is NaN off the CPU); nan_to_num always, which needs no sync
    codes = torch.nan_to_num(torch.sign(blocks.movedim(1, 0).reshape(len(chosen), size, -1)).float(), nan=0.0)
    return batched_agreement_counts(codes, device)
