"""The network of an architecture, to train elsewhere: ``nasx.build``, ``nasx export`` and ``nasx.load_export``.

The file ``export`` writes is ``torch.save`` of a dict of plain data (it loads with ``torch.load(path,
weights_only=True)``): ``format`` ("nasx-export"), ``format_version``, ``nasx_version``, ``space``,
``space_version``, ``dataset``, ``arch`` (the canonical string), ``options`` (all of the space's), ``init``,
``input_shape``, ``num_classes``, ``params``, ``constructor`` (a Python call of ``nasx.build`` that rebuilds the
same network with the same initial weights) and ``state_dict``; for a network built for a user's own data also
``data`` (its path and resolution) and ``task`` (name, classes, input shape), from which ``load_export`` rebuilds
the network without the data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from nasx._build import Options, space_only
from nasx.errors import NasxError
from nasx.interfaces import Space, Task
from nasx.settings import ComponentSpec, Data, check_int

if TYPE_CHECKING:  # pragma: no cover
    from nasx.plugins import Plugins

#: the ``format`` field of the files ``nasx export`` writes, and the version of their layout
EXPORT_FORMAT = "nasx-export"
EXPORT_FORMAT_VERSION = 1


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
                 data: Data | None = None) -> ExportResult:
    import torch

    from nasx import __version__

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
    payload = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "nasx_version": __version__,
        "space": built_space.name,
        "space_version": built_space.version,
        "dataset": built_space.dataset,
        "arch": canonical,
        "options": space_options,
        "init": {"scheme": init, "seed": init_seed},
        "input_shape": list(built_space.input_shape),
        "num_classes": built_space.num_classes,
        "params": params,
        "constructor": constructor,
        "state_dict": network.state_dict(),
    }
    if built_space.task is not None:
        task = built_space.task
        payload["task"] = {"name": task.name, "num_classes": task.num_classes, "input_shape": list(task.input_shape)}
        payload["data"] = {"path": os.path.abspath(data.path), "resolution": data.resolution}
    path = Path(out)
    _save(path, lambda: torch.save(payload, path))
    return ExportResult(path, built_space.name, built_space.dataset, canonical, space_options,
                        payload["init"], params, constructor)


def _save(path: Path, write) -> None:
    """Run ``write()`` (which writes ``path``), turning every failure to write into one line naming the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write()
    except OSError as exc:
        raise NasxError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # torch.save reports a failed write (a folder, a full disk) as a RuntimeError
        reason = "it is a folder" if path.is_dir() else str(exc).splitlines()[0]
        raise NasxError(f"cannot write {str(path)!r}: {reason}") from None


def read_export(plugins: "Plugins", path: str | os.PathLike):
    import pickle

    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise NasxError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError):
        payload = None
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
