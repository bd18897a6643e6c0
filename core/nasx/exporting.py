"""The network of an architecture, to train elsewhere: ``nasx.build``, ``nasx export`` and ``nasx.load_export``.

The file ``export`` writes is ``torch.save`` of a dict of plain data (it loads with ``torch.load(path,
weights_only=True)``): ``format`` ("nasx-export"), ``format_version``, ``nasx_version``, ``space``,
``space_version``, ``dataset``, ``arch`` (the canonical string), ``options`` (all of the space's), ``init``,
``input_shape``, ``num_classes``, ``params``, ``constructor`` (a Python call of ``nasx.build`` that rebuilds the
same network with the same initial weights) and ``state_dict``; for a network built for a user's own data also
``data`` (its path and resolution) and ``task`` (name, classes, input shape), from which ``load_export`` rebuilds
the network without the data.

The other formats need no nasx to load (``deployable``): ``onnx`` (the network in evaluation mode, a dynamic batch
dimension, written by torch's TorchScript-based exporter and checked with onnxruntime), ``python`` (one file that needs torch only, :mod:`nasx.standalone`) and
``torchscript`` (scripted, else traced in evaluation mode). Each written file is loaded back and its outputs
compared with the network's before ``export`` returns.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasx._build import Options, space_only
from nasx.errors import NasxError
from nasx.interfaces import Space, Task
from nasx.settings import ComponentSpec, Data, check_int

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from nasx.plugins import Plugins

#: the ``format`` field of the files ``nasx export`` writes, and the version of their layout
EXPORT_FORMAT = "nasx-export"
EXPORT_FORMAT_VERSION = 1
#: what ``--format`` takes; ``nasx`` (the file above) is the default
FORMATS = ("nasx", "onnx", "python", "torchscript")
#: the file names ``nasx run --export DIR`` writes in DIR
DEPLOYABLE_FILES = {"onnx": "network.onnx", "python": "network.py", "torchscript": "network.torchscript.pt"}
#: the largest difference allowed between a written network's outputs and the network's (relative to the
#: largest output when that is above 1)
TOLERANCE = 1e-4
ONNX_EXTRA = "pip install 'nasx[export]'"


@dataclass
class ExportResult:
    """What ``export`` wrote: the file, the architecture and space it holds, and the call that rebuilds it."""

    path: Path
    space: str
    dataset: str
    arch: str
    options: dict[str, Any]
    init: dict[str, Any]
    params: int
    constructor: str
    #: one of FORMATS
    format: str = "nasx"
    #: every file written (``python`` with weights: the .py file and the state dict beside it)
    files: list[Path] = field(default_factory=list)
    #: how the file holds the network, when that is not obvious (e.g. a TorchScript trace in evaluation mode)
    note: str = ""


def trainable_network(built_space: Space, genotype: nx.DiGraph, init: str | None, init_seed: int):
    """The space's network for training, with reproducible initial weights (none drawn when ``init`` is None)."""
    from nasx.evaluator import INIT_SCHEMES
    from nasx.torch_utils import initialise

    if init is not None and init not in INIT_SCHEMES:
        raise NasxError(f"unknown initialisation {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
    check_int("--init-seed", init_seed)
    try:
        network = built_space.build_for_training(genotype)
    except NotImplementedError as reason:
        raise NasxError(f"space '{built_space.name}' builds no networks: {reason}") from None
    if init is not None:
        initialise(network, init, init_seed)
    return network


def build_network(plugins: "Plugins", arch: str, space: ComponentSpec, dataset: str | None, options: Options,
                  init: str, init_seed: int, data: Data | None = None):
    built_space = space_only(plugins, space, dataset, options, data)
    return trainable_network(built_space, built_space.decode(arch), init, init_seed)


def write_export(plugins: "Plugins", arch: str, space: ComponentSpec, dataset: str | None,
                 out: str | os.PathLike, options: Options, init: str, init_seed: int,
                 data: Data | None = None, format: str = "nasx", weights: bool = False) -> ExportResult:
    if format not in FORMATS:
        raise NasxError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if weights and format != "python":
        raise NasxError("--weights is for --format python: the other formats always hold the weights")
    if format == "onnx":
        require_onnx()
    built_space = space_only(plugins, space, dataset, options, data)
    genotype = built_space.decode(arch)  # checked before anything is built
    network = trainable_network(built_space, genotype, init, init_seed)
    canonical = built_space.encode(genotype)
    space_options = dict(built_space.options)
    where = (f"dataset={built_space.dataset!r}" if data is None else
             f"data={os.path.abspath(data.path)!r}, resolution={data.resolution!r}")
    constructor = (f"nasx.build({canonical!r}, space={built_space.name!r}, {where}, "
                   f"options={space_options!r}, init={init!r}, init_seed={init_seed!r})")
    params = sum(p.numel() for p in network.parameters())
    result = ExportResult(Path(out), built_space.name, built_space.dataset, canonical, space_options,
                          {"scheme": init, "seed": init_seed}, params, constructor, format, [Path(out)])
    if format == "nasx":
        _write_nasx(result, built_space, network, data)
    else:
        DEPLOYABLE[format](result, built_space, network, weights)
    return result


def _write_nasx(result: ExportResult, built_space: Space, network, data: Data | None) -> None:
    import torch

    from nasx import __version__

    payload = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "nasx_version": __version__,
        "space": built_space.name,
        "space_version": built_space.version,
        "dataset": built_space.dataset,
        "arch": result.arch,
        "options": result.options,
        "init": result.init,
        "input_shape": list(built_space.input_shape),
        "num_classes": built_space.num_classes,
        "params": result.params,
        "constructor": result.constructor,
        "state_dict": network.state_dict(),
    }
    if built_space.task is not None:
        task = built_space.task
        payload["task"] = {"name": task.name, "num_classes": task.num_classes, "input_shape": list(task.input_shape)}
        payload["data"] = {"path": os.path.abspath(data.path), "resolution": data.resolution}
    _save(result.path, lambda: torch.save(payload, result.path))


# deployable formats ------------------------------------------------------------------------------------------
def require_onnx() -> None:
    """Raises the one-line error that says what to install unless the ONNX exporter and runtime are installed."""
    import importlib.util

    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise NasxError(f"--format onnx needs {', '.join(missing)}: {ONNX_EXTRA}")


def onnx_available() -> bool:
    try:
        require_onnx()
    except NasxError:
        return False
    return True


def example_inputs(built_space: Space, size: int, seed: int = 0):
    """A batch of ``size`` inputs of the space's networks: its own (token ids, say) or seeded normal images."""
    import torch

    batch = built_space.input_batch(None, size)
    if batch is not None:
        return batch.images
    return torch.randn(size, *built_space.input_shape, generator=torch.Generator().manual_seed(seed))


def _check_outputs(written, expected, what: str) -> None:
    """Raises NasxError when ``written`` (a tensor or array) differs from ``expected`` by more than TOLERANCE."""
    import torch

    written = torch.as_tensor(written, dtype=expected.dtype)
    if written.shape != expected.shape:
        raise NasxError(f"{what} gives outputs of shape {tuple(written.shape)}, not {tuple(expected.shape)}")
    difference = float((written - expected).abs().max())
    scale = max(1.0, float(expected.abs().max()))
    if not difference <= TOLERANCE * scale:
        raise NasxError(f"{what} gives outputs that differ from the network's by {difference:.3g}")


def _outputs(network, inputs):
    import torch

    with torch.no_grad():
        return network.eval()(inputs)


def _write_onnx(result: ExportResult, built_space: Space, network, weights: bool) -> None:
    import numpy as np
    import onnxruntime
    import torch

    network.eval()
    example = example_inputs(built_space, 2)
    model = io.BytesIO()
    try:
        with _quiet():
            # torch's TorchScript-based exporter (as nasx.latency uses): it needs no onnxscript, and it records
            # the Python branches of NAS-Bench-101's cells that torch.export refuses
            torch.onnx.export(network, (example,), model, dynamo=False, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    except Exception as exc:  # the exporter's own failures (an operator without an ONNX form, say)
        raise NasxError(f"cannot export space '{built_space.name}''s network to ONNX: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0]}") from None
    path = result.path
    _save(path, lambda: path.write_bytes(model.getvalue()))
    inputs = example_inputs(built_space, 3, seed=1)  # another batch size: the batch dimension is dynamic
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": inputs.numpy()})
    _check_outputs(np.asarray(logits), _outputs(network, inputs), f"the ONNX file {str(path)!r} (onnxruntime)")
    result.note = "the network in evaluation mode (BatchNorm's running statistics, no dropout); dynamic batch"


@contextlib.contextmanager
def _quiet():
    """Silences what the ONNX exporter prints and warns (its deprecation, values fixed in its trace)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _python_file(result: ExportResult, built_space: Space, network, weights_file: str | None) -> str:
    """The source of the Python export of ``network``, checked: the same parameter count and outputs."""
    from nasx.standalone import load_source, python_source

    path = result.path
    source = python_source(
        network, example_inputs(built_space, 2),
        title=f"{built_space.name} network for {built_space.dataset}: {result.arch}", module=path.stem,
        arch=result.arch, input_shape=built_space.input_shape, num_classes=built_space.num_classes,
        weights_file=weights_file, any_resolution=built_space.adapts_to_data)
    written = load_source(source, path)["build"]()
    count = sum(p.numel() for p in written.parameters())
    if count != result.params:
        raise NasxError(f"the Python file's network has {count} parameters, not {result.params}")
    written.load_state_dict(network.state_dict())
    inputs = example_inputs(built_space, 3, seed=1)
    _check_outputs(_outputs(written, inputs), _outputs(network, inputs), "the Python file's network")
    return source


def _write_python(result: ExportResult, built_space: Space, network, weights: bool) -> None:
    import torch

    path = result.path
    weights_file = f"{path.stem}_weights.pt" if weights else None
    source = _python_file(result, built_space, network, weights_file)
    _save(path, lambda: path.write_text(source))
    if weights_file:
        weights_path = path.with_name(weights_file)
        _save(weights_path, lambda: torch.save(network.state_dict(), weights_path))
        result.files.append(weights_path)
    result.note = "trains and evaluates as the network does; " + (
        f"build(weights=True) loads the initial weights from {weights_file}" if weights_file
        else "build() draws each layer's own initialisation")


def _write_torchscript(result: ExportResult, built_space: Space, network, weights: bool) -> None:
    import torch

    from nasx.standalone import load_source

    network.eval()
    path = result.path
    try:
        compiled, result.note = _compiled(network, example_inputs(built_space, 2))
    except Exception as exc:  # e.g. an attribute TorchScript cannot read: the straight-line network has none
        try:
            straight = load_source(_python_file(result, built_space, network, None), path)["build"]()
            straight.load_state_dict(network.state_dict())
            compiled, result.note = _compiled(straight.eval(), example_inputs(built_space, 2))
        except Exception:
            raise NasxError(f"cannot export space '{built_space.name}''s network to TorchScript: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    inputs = example_inputs(built_space, 3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in favour of torch.export
        _save(path, lambda: torch.jit.save(compiled, str(path)))
        loaded = torch.jit.load(str(path))
    _check_outputs(_outputs(loaded, inputs), _outputs(network, inputs), f"the TorchScript file {str(path)!r}")


def _compiled(network, example):
    """(TorchScript module, how it was made): scripted where TorchScript compiles the network, else traced."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation, and tracer warnings about Python values fixed in the trace
        try:
            return torch.jit.script(network), "scripted: trains and evaluates as the network does"
        except Exception:  # TorchScript compiles a subset of Python; networks outside it are traced instead
            return (torch.jit.trace(network, example, check_trace=False),
                    "traced in evaluation mode: BatchNorm and dropout act as in evaluation, so it evaluates but "
                    "cannot be trained")


DEPLOYABLE = {"onnx": _write_onnx, "python": _write_python, "torchscript": _write_torchscript}


def export_deployable(plugins: "Plugins", arch: str, space: Space, folder: str | os.PathLike) -> tuple[
        list[ExportResult], list[str]]:
    """``nasx run --export DIR``: the architecture in every deployable format (ONNX when its extra is installed),
    with the initial weights of ``nasx export``'s defaults; (what was written, a warning for each format that was
    not)."""
    written, problems = [], []
    for format, name in DEPLOYABLE_FILES.items():
        if format == "onnx" and not onnx_available():
            problems.append(f"no ONNX file written: {ONNX_EXTRA}")
            continue
        try:
            written.append(write_export(plugins, arch, space, None, Path(folder) / name, None, "pytorch", 0,
                                        format=format, weights=format == "python"))
        except NasxError as exc:
            problems.append(f"no {format} file written: {exc}")
    return written, problems


def _save(path: Path, write) -> None:
    """Run ``write()`` (which writes ``path``), turning every failure to write into one line naming the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write()
    except OSError as exc:
        raise NasxError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # torch.save reports a failed write (a folder, a full disk) as a RuntimeError
        reason = "it is a folder" if path.is_dir() else _torch_write_failure(str(exc))
        raise NasxError(f"cannot write {str(path)!r}: {reason}") from None


def _torch_write_failure(message: str) -> str:
    """The reason in torch's message about a failed write, without its source location: "[enforce fail at
    inline_container.cc:747] . open file failed with strerror: No such file or directory" gives the last part."""
    line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if "strerror:" in line:
        return line.rsplit("strerror:", 1)[1].strip() or line
    return re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", line) or line


def _load(path: str | os.PathLike) -> Any:
    """What ``torch.save`` wrote at ``path`` (tensors and plain values only), or None for a file it did not write;
    a file that cannot be read is a one-line error."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise NasxError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError):
        return None


def read_export(plugins: "Plugins", path: str | os.PathLike):
    payload = _load(path)
    if not isinstance(payload, dict) or payload.get("format") != EXPORT_FORMAT:
        raise NasxError(f"{os.fspath(path)!r} is not a file written by nasx export")
    if payload.get("format_version") != EXPORT_FORMAT_VERSION:
        raise NasxError(f"{os.fspath(path)!r} has export format {payload.get('format_version')}; this nasx reads "
                        f"format {EXPORT_FORMAT_VERSION}")
    task = payload.get("task")
    built_space = space_only(plugins, payload["space"], None if task else payload["dataset"], payload["options"])
    if task:  # built for a user's own data: rebuilt from its classes and input shape, without the data
        built_space = built_space.for_data(Task(task["name"], task["num_classes"], tuple(task["input_shape"])))
    network = trainable_network(built_space, built_space.decode(payload["arch"]), None, 0)
    try:
        network.load_state_dict(payload["state_dict"])
    except RuntimeError:
        raise NasxError(f"the weights in {os.fspath(path)!r} do not fit the network that space '{built_space.name}' "
                        f"builds now (space version {payload.get('space_version')} in the file, "
                        f"{built_space.version} now)") from None
    return network
