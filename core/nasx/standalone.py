"""A network as one Python file that needs torch only (``nasx export --format python``).

The forward is traced with ``torch.fx`` into straight-line code: torch's own layers (``torch.nn`` modules:
convolutions, BatchNorm, activations, pooling, linear layers) stay modules, called by that code and built in the
file by their constructors, at the places of the network's own module tree, so the file's network has the same
state-dict keys and parameters. Python control flow of the network (a loop over its blocks, a test of a
channel count) is run once while tracing: the tracer carries the values of an example batch along, so a test on
a traced value takes the branch that the network takes (nothing in these networks branches on the batch itself,
and the written file is checked on another batch size). A network whose Python code behaves differently in
training and in evaluation (DARTS's drop path) cannot be written as one straight line and is refused, as is code
that calls functions outside torch and Python's standard library.
"""

from __future__ import annotations

import builtins
import inspect
import math
import operator
from typing import Any

from nasx.errors import NasxError

#: constructor arguments that say where a module lives, not what it is
_PLACEMENT_ARGUMENTS = {"device", "dtype"}


def _concrete_tracer(example):
    """An fx tracer that computes each traced value on the example batch as well, so that Python control flow on a
    traced value (``if channels < wanted:``) is decided instead of failing. (A function: torch.fx is imported on
    first use only.)"""
    import torch
    from torch import fx
    from torch.fx._symbolic_trace import _maybe_revert_all_patches

    class ConcreteTracer(fx.Tracer):
        def trace(self, root, concrete_args=None):
            self.concrete_root = root
            return super().trace(root, concrete_args)

        def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
            proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
            proxy.node.meta["concrete"] = self.concrete(kind, target, args, kwargs)
            return proxy

        def concrete(self, kind, target, args, kwargs):
            args = fx.node.map_aggregate(args, self.value_of)
            kwargs = fx.node.map_aggregate(kwargs, self.value_of)
            # the tracer's patches (module calls record nodes) are lifted while the example is computed
            with _maybe_revert_all_patches():
                return self.compute(kind, target, args, kwargs)

        def compute(self, kind, target, args, kwargs):
            if kind == "placeholder":
                return example
            if kind == "get_attr":
                return operator.attrgetter(target)(self.concrete_root)
            if kind == "call_module":
                return self.concrete_root.get_submodule(target)(*args, **kwargs)
            if kind == "call_method":
                return getattr(args[0], target)(*args[1:], **kwargs)
            if kind == "call_function":
                return target(*args, **kwargs)
            return None

        @staticmethod
        def value_of(item):
            return item.node.meta["concrete"] if isinstance(item, fx.Proxy) else item

        def to_bool(self, obj) -> bool:
            with torch.no_grad():
                return bool(obj.node.meta["concrete"])

    return ConcreteTracer()


def _trace(network, example, training: bool):
    """The fx graph of ``network``'s forward in training or evaluation mode, without the nodes that only served
    decisions of Python control flow."""
    import copy

    import torch

    traced = copy.deepcopy(network)  # tracing runs the network (BatchNorm statistics) and stores constants on it
    traced.train(training)
    tracer = _concrete_tracer(example)
    with torch.no_grad():
        graph = tracer.trace(traced)
    for node in reversed(list(graph.nodes)):  # dead code: what decided a branch; never an in-place operation
        if (not node.users and node.op in ("call_function", "call_method", "get_attr")
                and not str(getattr(node.target, "__name__", node.target)).endswith("_")):
            graph.erase_node(node)
    for node in graph.nodes:
        node.meta.pop("concrete", None)
    return graph, traced


def _layer_names(network) -> list[str]:
    """The torch layers of ``network`` that the traced forward calls as modules (fx's leaves, less containers),
    outermost only."""
    from torch import fx, nn

    leaf = fx.Tracer().is_leaf_module
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    names: list[str] = []
    for name, module in network.named_modules():
        if name and leaf(module, name) and not isinstance(module, containers) and not any(
                name.startswith(outer + ".") for outer in names):
            names.append(name)
    return names


def _literal(value: Any) -> str:
    """``value`` as Python source, for the constructor arguments of torch's modules."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, (tuple, list)):
        items = ", ".join(_literal(item) for item in value)
        return f"({items},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({items})" if isinstance(value, tuple) else f"[{items}]")
    raise TypeError(f"no literal for {type(value).__name__}")


def _same_module(rebuilt, original) -> bool:
    """``rebuilt`` is the layer ``original`` is: class, the settings its constructor made (attributes a space adds
    afterwards, as metadata, are not the layer's), parameter and buffer shapes."""
    import torch

    def settings(module):
        return {key: value for key, value in vars(module).items()
                if not key.startswith("_") and key != "training" and not isinstance(value, torch.Tensor)}

    def shapes(module):
        return {key: (tuple(value.shape), value.dtype) for key, value in module.state_dict().items()}

    made, found = settings(rebuilt), settings(original)
    return (type(rebuilt) is type(original) and repr(rebuilt) == repr(original)
            and all(key in found and found[key] == value for key, value in made.items())
            and shapes(rebuilt) == shapes(original))


def constructor(module, name: str) -> str:
    """The call that builds a torch layer like ``module``: its class with the arguments of its constructor read
    back from its attributes (``bias`` from whether it has one), checked by building it."""
    from torch import nn

    cls = type(module)
    arguments = {}
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or (
                parameter.name in _PLACEMENT_ARGUMENTS):
            continue
        if parameter.name == "bias" and isinstance(getattr(module, "bias", None), (nn.Parameter, type(None))):
            arguments["bias"] = module.bias is not None
        elif hasattr(module, parameter.name):
            arguments[parameter.name] = getattr(module, parameter.name)
        elif parameter.default is parameter.empty:
            arguments = None
            break
    prefix = "nn." if getattr(nn, cls.__name__, None) is cls else None
    if arguments is not None and prefix is not None:
        try:
            source = f"{prefix}{cls.__name__}({', '.join(f'{k}={_literal(v)}' for k, v in arguments.items())})"
            if _same_module(eval(source, {"nn": nn, "inf": math.inf}), module):
                return source
        except (TypeError, ValueError, SyntaxError):
            pass
    raise NasxError(f"cannot write the network as a Python file: its layer {name!r} ({cls.__name__}) cannot be "
                    "rebuilt from torch.nn's constructors")


def _import_lines(names: dict[str, Any], source: str) -> list[str]:
    """Imports of the names the traced forward (``source``) uses: modules and functions of torch and of Python's
    standard library only."""
    import re

    lines = []
    for name, value in sorted(names.items()):
        if name in ("torch", "nn") or not re.search(rf"\b{re.escape(name)}\b", source):
            continue
        if inspect.ismodule(value):
            root = value.__name__.split(".")[0]
            if root not in ("torch", "math", "operator", "builtins"):
                raise NasxError(f"cannot write the network as a Python file: its forward uses module "
                                f"{value.__name__!r}, which is not part of torch")
            lines.append(f"import {value.__name__} as {name}" if name != value.__name__ else f"import {name}")
            continue
        module = getattr(value, "__module__", None) or ""
        if isinstance(value, str) and value.split(".")[0] == "torch":  # a type annotation, e.g. torch.Tensor
            lines.append(f"{name} = {value}")
        elif value is type(None):
            lines.append(f"{name} = type(None)")
        elif isinstance(value, float) and name in ("inf", "nan"):
            lines.append(f"{name} = float({name!r})")
        elif module == "builtins" and getattr(builtins, name, None) is value:
            continue
        elif module.split(".")[0] in ("torch", "math", "operator", "_operator") and hasattr(value, "__name__"):
            lines.append(f"from {module.replace('_operator', 'operator')} import {value.__name__} as {name}")
        else:
            raise NasxError(f"cannot write the network as a Python file: its forward calls {name!r} of module "
                            f"{module or 'unknown'!r}, which is not part of torch")
    return lines


TEMPLATE = '''"""{title}

Written by nasx {version} (nasx export --format python). It needs torch only:

    from {module} import build
    network = build({build_call})

{weights_doc}The forward is straight-line code traced from the network's own, over torch's layers; the state dict has
the same keys as the network that nasx builds. Input: (N, {channels}, H, W) images{resolution}; output: (N,
{classes}) logits.
"""

import os

import torch
from torch import nn
{imports}
ARCH = {arch!r}
INPUT_SHAPE = {input_shape!r}
NUM_CLASSES = {classes!r}
WEIGHTS = {weights!r}


def _place(root: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at the dotted ``path`` of the module tree under ``root``, creating the containers on the way."""
    *parents, name = path.split(".")
    for part in parents:
        if part not in root._modules:
            root.add_module(part, nn.Module())
        root = root._modules[part]
    root.add_module(name, module)


class Network(nn.Module):
    def __init__(self) -> None:
        super().__init__()
{layers}
{forward}

def build(weights: bool = False) -> Network:
    """The network; with ``weights``, the initial weights nasx drew, from the file WEIGHTS beside this one."""
    network = Network()
    if weights:
        if WEIGHTS is None:
            raise ValueError("no weights were exported with this file (nasx export --weights)")
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS)
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network
'''


def python_source(network, example, *, title: str, module: str, arch: str, input_shape, num_classes: int,
                  weights_file: str | None, any_resolution: bool) -> str:
    """The source of a file defining ``Network`` (``network``'s layers and traced forward) and ``build``."""
    import torch
    from torch import fx

    try:
        graph, traced = _trace(network, example, training=False)
        training_graph, _ = _trace(network, example, training=True)
    except (fx.proxy.TraceError, TypeError, RuntimeError, NotImplementedError, AttributeError) as exc:
        reason = str(exc).splitlines()[0]
        if "interpreted as an integer" in reason:
            reason = ("it uses a size of its input as a Python number (a loop over a sequence, say), which "
                      "straight-line code would fix to one size")
        raise NasxError(f"cannot write the network as a Python file: its forward does not trace as straight-line "
                        f"code: {reason}") from None
    code = graph.python_code(root_module="self")
    if code.src != training_graph.python_code(root_module="self").src:
        raise NasxError("cannot write the network as a Python file: its Python code does something else in training "
                        "than in evaluation (e.g. drop path or an auxiliary head), which one straight line cannot "
                        "keep")
    leaf_names = _layer_names(network)
    layers = [f"        _place(self, {name!r}, {constructor(network.get_submodule(name), name)})" for name in leaf_names]
    for name, tensor in [*network.named_parameters(), *network.named_buffers()]:
        owner = name.rpartition(".")[0]
        if any(owner == leaf_name or owner.startswith(leaf_name + ".") for leaf_name in leaf_names):
            continue  # built by its layer's constructor
        path, _, attribute = name.rpartition(".")
        holder = f"self.get_submodule({path!r})" if path else "self"
        value = f"torch.zeros({tuple(tensor.shape)!r}, dtype={tensor.dtype})"
        if isinstance(tensor, torch.nn.Parameter):
            layers.append(f"        {holder}.register_parameter({attribute!r}, nn.Parameter({value}))")
        else:
            layers.append(f"        {holder}.register_buffer({attribute!r}, {value})")
    used_attributes = {node.target for node in graph.nodes if node.op == "get_attr"}
    state = dict(network.named_parameters()) | dict(network.named_buffers())
    constants = sorted(target for target in used_attributes if target not in state)
    if constants:
        raise NasxError(f"cannot write the network as a Python file: its forward uses tensors that are not its "
                        f"parameters or buffers ({', '.join(constants)})")
    forward = "\n".join("    " + line if line.strip() else "" for line in code.src.strip("\n").splitlines())
    weights_doc = (f"With ``weights=True`` it loads the initial weights nasx drew, saved beside it as {weights_file}\n"
                   "(a state dict); without, each layer draws its own PyTorch initialisation.\n\n"
                   if weights_file else "Each layer draws its own PyTorch initialisation.\n\n")
    from nasx import __version__

    return TEMPLATE.format(
        title=title, version=__version__, module=module, build_call="weights=True" if weights_file else "",
        weights_doc=weights_doc, channels=input_shape[0],
        resolution=" of any size" if any_resolution else f" of {input_shape[1]}x{input_shape[2]}",
        classes=num_classes, imports="".join(line + "\n" for line in _import_lines(code.globals, code.src)),
        arch=arch, input_shape=tuple(input_shape), weights=weights_file, layers="\n".join(layers) or "        pass",
        forward=forward)


def load_source(source: str, path) -> Any:
    """The module that ``source`` (the file at ``path``) defines, run in a namespace of its own."""
    namespace = {"__name__": "nasx_exported_network", "__file__": str(path)}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace
