"""SynFlow (Tanaka et al., 2020) and FreeREA's LogSynflow.

The network is evaluated in double precision with absolute-valued weights and BatchNorm bypassed; an all-ones
input gives R = sum of the outputs; the score sums theta * dR/dtheta (SynFlow) or theta * log(dR/dtheta + 1)
(LogSynflow) over conv and linear weights. The caller's network is never modified.
"""

from __future__ import annotations

import copy

from nasx.interfaces import Proxy
from nasx.options import positive
from nasx_proxies._common import all_modules, remove_batchnorm, replaced_forwards


def synflow_score(network, input_shape, use_log: bool) -> float:
    """The score, computed on the caller's network itself: for the duration, each convolution and linear layer
    computes with a double-precision |W| of its own (leaf tensors whose gradients are read), and BatchNorm and
    ReLU pass their input through. That is the copy-based definition (``synflow_score_on_copy``) without copying
    a network: with positive weights and biases, an all-ones input and no BatchNorm, the activations of networks
    made of convolutions, poolings, sums and concatenations are >= 0, so a ReLU is the identity on them (checked:
    a network whose activations go negative anyway is scored on a copy). The only difference is a ReLU's zero
    gradient at an activation that is exactly 0, which happens only on a tensor no weight contributes to (a cell
    node without inputs), whose weights' gradients are 0 either way. Operations whose result never reaches the
    output (dead convolutions) are skipped where the network offers it: they get no gradient in either case. On a
    CPU the computation runs in the channels-last layout (about 10 % faster in double precision there; values
    equal up to rounding). Networks with other parameterised modules, or with dropout, are scored on a copy."""
    import torch

    modules = all_modules(network)
    parameter = next(network.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    channels_last = device.type == "cpu"
    plan = positive_double_forwards(modules, channels_last)
    if plan is None:
        return synflow_score_on_copy(network, input_shape, use_log)
    forwards, weights, _, relu_inputs = plan
    output = _positive_forward(network, modules, forwards, input_shape, device, channels_last)
    if _any_negative(relu_inputs):  # the network's own computations made an activation negative: ReLUs matter
        return synflow_score_on_copy(network, input_shape, use_log)
    gradients = torch.autograd.grad(output.sum(), weights, allow_unused=True)
    return _sum_flows(weights, gradients, use_log)


def synflow_scores_fused(network, input_shape, use_log: bool) -> list[float | None]:
    """The score of each model of a fused network (:mod:`nasx.fusion`) in one pass: one double-precision backward
    of R = the sum of all the models' outputs, then each weight's flows summed per model (``network.layout``). The
    models share no weights, so the gradient of R with respect to a model's weights is that of its own output: the
    scores are those of ``synflow_score`` on each model's network. None for every model when the in-place
    computation does not apply (each is then scored on its own)."""
    import torch

    modules = all_modules(network)
    models = network.models
    device = next(network.parameters()).device
    channels_last = device.type == "cpu"
    plan = positive_double_forwards(modules, channels_last)
    if plan is None:
        return [None] * models
    forwards, weights, owners, relu_inputs = plan
    output = _positive_forward(network, modules, forwards, input_shape, device, channels_last)
    if _any_negative(relu_inputs):
        return [None] * models
    gradients = torch.autograd.grad(output.sum(), weights, allow_unused=True)
    totals = [0.0] * models  # per model, float additions in layer order, as _sum_flows adds them
    with torch.no_grad():
        for weight, gradient, owner in zip(weights, gradients, owners):
            if gradient is None:
                continue
            flow = gradient.log1p_() if use_log else gradient
            layout = network.layout(owner)
            sums = (weight * flow).abs_().reshape(len(layout.models), -1).sum(1).tolist()
            for model, value in zip(layout.models, sums):
                totals[model] += value
    return totals


def _positive_forward(network, modules, forwards, input_shape, device, channels_last: bool):
    """The output for an all-ones double-precision input with the replaced forwards, dead operations skipped."""
    import torch

    from nasx.torch_utils import dead_operations_skipped

    inputs = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    if channels_last and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with replaced_forwards(forwards), dead_operations_skipped(modules):
        return network(inputs)


def positive_double_forwards(modules, channels_last: bool = False):
    """(module -> replacement forward, the |W| tensors in module order, the module of each, the list that collects
    what the ReLUs receive) for a network's ``modules()``, or None when the network holds parameters in modules
    other than convolutions, linear layers and BatchNorm, or uses dropout. ``channels_last``: convolution weights
    in that layout."""
    import torch
    from torch import nn
    from torch.nn import functional

    def absolute(parameter, requires_grad=False):
        if parameter is None:
            return None
        layout = torch.channels_last if channels_last and parameter.dim() == 4 else torch.preserve_format
        # copy=True: a float64 parameter must not be returned as itself and made absolute in place
        copied = parameter.detach().to(torch.float64, memory_format=layout, copy=True).abs_()
        return copied.requires_grad_(requires_grad)

    def convolution(module, weight, bias):
        return lambda x: functional.conv2d(x, weight, bias, module.stride, module.padding, module.dilation,
                                           module.groups)

    def linear(weight, bias):
        return lambda x: functional.linear(x, weight, bias)

    relu_inputs = []

    def identity_on_positive(x):  # ReLU: x >= 0 here, which synflow_score checks afterwards
        relu_inputs.append(x)
        return x

    forwards, weights, owners = {}, [], []
    for module in modules:
        if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros":
            weight = absolute(module.weight, requires_grad=True)
            forwards[module] = convolution(module, weight, absolute(module.bias))
            weights.append(weight)
            owners.append(module)
        elif isinstance(module, nn.Linear):
            weight = absolute(module.weight, requires_grad=True)
            forwards[module] = linear(weight, absolute(module.bias))
            weights.append(weight)
            owners.append(module)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            forwards[module] = _identity
        elif isinstance(module, nn.ReLU):
            forwards[module] = identity_on_positive
        elif isinstance(module, nn.modules.dropout._DropoutNd):
            return None
        # _parameters: the module's own parameters, read directly (parameters(recurse=False) walks the tree again);
        # empty ones (device markers, as in NB101's cells) are harmless
        elif any(p is not None and p.numel() for p in module._parameters.values()):
            return None
    if not weights:
        return None
    return forwards, weights, owners, relu_inputs


def _identity(x):
    return x


def _any_negative(tensors) -> bool:
    import torch

    distinct = [t for t in {id(t): t for t in tensors}.values() if t.numel()]  # several ReLUs often read one node
    return bool(distinct) and bool(torch.stack([t.amin() for t in distinct]).lt(0).any())


def _sum_flows(weights, gradients, use_log: bool) -> float:
    import torch

    total = 0.0  # float additions, in layer order: the same sum as a float64 tensor's
    with torch.no_grad():
        for weight, gradient in zip(weights, gradients):
            if gradient is None:  # a layer that does not reach the output contributes nothing
                continue
            flow = gradient.log1p_() if use_log else gradient  # the gradients are this function's to overwrite
            total += float((weight * flow).abs_().sum())
    return total


def synflow_score_on_copy(network, input_shape, use_log: bool) -> float:
    """The definition, on a deep copy in double precision with |W| and BatchNorm removed."""
    import torch
    from torch import nn

    linear = copy.deepcopy(network).double()
    remove_batchnorm(linear)
    with torch.no_grad():
        for parameter in linear.parameters():
            parameter.abs_()
    weights = [m.weight for m in linear.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    linear.train()
    device = weights[0].device if weights else None
    output = linear(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    gradients = torch.autograd.grad(output.sum(), weights, allow_unused=True)
    return _sum_flows(weights, gradients, use_log)


def path_norm(network, input_shape) -> float:
    """sqrt of the sum over all input-output paths of the product of the squared weights along the path
    (Neyshabur et al., 2015): the summed output for an all-ones input of a copy with squared weights, no
    biases and no BatchNorm."""
    import torch

    squared = copy.deepcopy(network).double()
    remove_batchnorm(squared)
    with torch.no_grad():
        for name, parameter in squared.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.pow_(2)
        squared.train()
        device = next(squared.parameters()).device
        total = squared(torch.ones((1, *input_shape), dtype=torch.float64, device=device)).sum()
    return float(total.sqrt())


def refuse_mps(proxy: str, network) -> None:
    """These proxies are defined in double precision, which Apple's MPS backend lacks."""
    from nasx.errors import NasxError

    if any(p.device.type == "mps" for p in network.parameters()):
        raise NasxError(f"proxy {proxy} needs float64, which MPS lacks; use --device cpu or cuda")


class LogSynflow(Proxy):
    name = "logsynflow"
    summary = "FreeREA's LogSynflow: sum of theta * log(dR/dtheta + 1), BatchNorm bypassed, double precision"
    needs_gradients = True
    fusable = True
    defaults = {"repeats": 1}  # FreeREA: 3 (docs/results.md, Defaults)
    option_checks = {"repeats": positive}
    version = "2"  # 2: computed on the network itself, channels-last on a CPU (same values up to float64 rounding)

    def score_network(self, network, batch, space) -> float:
        refuse_mps(self.name, network)
        return synflow_score(network, space.input_shape, use_log=True)

    def score_fused(self, network, batch, space) -> list[float | None]:
        refuse_mps(self.name, network)
        return synflow_scores_fused(network, space.input_shape, use_log=True)


class Synflow(Proxy):
    name = "synflow"
    summary = "SynFlow: sum of theta * dR/dtheta with absolute weights and an all-ones input"
    needs_gradients = True
    fusable = True
    defaults = {"repeats": 1}  # FreeREA: 3 (docs/results.md, Defaults)
    option_checks = {"repeats": positive}
    version = "2"  # 2: computed on the network itself, channels-last on a CPU (same values up to float64 rounding)

    def score_network(self, network, batch, space) -> float:
        refuse_mps(self.name, network)
        return synflow_score(network, space.input_shape, use_log=False)

    def score_fused(self, network, batch, space) -> list[float | None]:
        refuse_mps(self.name, network)
        return synflow_scores_fused(network, space.input_shape, use_log=False)


class PathNorm(Proxy):
    name = "pathnorm"
    summary = "Path norm: sqrt of the sum over input-output paths of the product of squared weights"
    defaults = {"repeats": 1}  # FreeREA: 3 (docs/results.md, Defaults)
    option_checks = {"repeats": positive}

    def score_network(self, network, batch, space) -> float:
        refuse_mps(self.name, network)
        return path_norm(network, space.input_shape)
