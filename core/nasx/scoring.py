"""Computing proxy scores of one architecture: the work an executor's workers do.

Everything a worker needs is one picklable ``ScoringSetup`` (space, proxies, input batch, initialisation, device,
threads), sent once per worker; each task is then only an architecture string and the proxies it lacks. The same
function computes scores in the driver (serial executor) and in worker processes, so every executor gives the same
scores. Nothing here imports torch at import time.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from nasx.errors import NasxError

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch
    from nasx.interfaces import Proxy, Space


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the duration, then as it was. For the import of torch: it makes
    about 200,000 objects that live as long as the process, and collecting while they are being made walks them
    again and again (three full collections during the import) and frees nothing."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def import_torch():
    """torch, imported with the collector paused (:func:`collector_paused`) where this is its first import."""
    import sys

    if "torch" not in sys.modules:
        with collector_paused():
            import torch  # noqa: F401
    import torch

    return torch


DEVICES = ("cpu", "cuda", "mps", "auto")
#: networks a ScoringSetup keeps for later tasks of their architecture (a worker gets a few of the last tasks of a
#: call, split by proxy; 2 workers: up to 3 architectures)
NETWORKS_KEPT = 4


def resolve_device(device: str | None) -> str:
    """'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (else ``$NASX_DEVICE``, else 'cpu') as a device torch accepts;
    a device that is not present is a NasxError."""
    device = (device or os.environ.get("NASX_DEVICE") or "cpu").strip()
    kind, _, number = device.partition(":")
    if kind not in DEVICES or (number and (kind != "cuda" or not number.isdigit())):
        raise NasxError(f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto")
    if kind == "cpu":
        return "cpu"
    import torch

    if kind == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise NasxError(f"device {device!r}: CUDA is not available (torch {torch.__version__} "
                            f"{'with' if torch.version.cuda else 'without'} CUDA support)")
        if number and int(number) >= torch.cuda.device_count():
            raise NasxError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return device
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        raise NasxError("device 'mps': Apple's Metal backend is not available")
    return "mps"


def device_type(device: str) -> str:
    """'cuda:1' -> 'cuda': scores differ between device types in the last digits, not between devices of a type."""
    return device.partition(":")[0]


@dataclass
class ScoringSetup:
    """What every worker needs to score architectures of one space with fixed proxies."""

    space: "Space"
    proxies: list["Proxy"]
    batch: "Batch | None"
    init: str = "kaiming"
    init_seed: int = 0
    device: str = "cpu"
    #: torch threads in each worker (0: torch's default)
    threads: int = 0
    _ready: bool = field(default=False, repr=False, compare=False)
    #: arch -> the network built for the proxies of a task that left others of the architecture to another task
    _kept: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: the threads of one Dask worker share its setup
    _kept_lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ready"] = False  # a worker prepares its own copy (threads, the batch on its device)
        state["_kept"] = {}
        del state["_kept_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _kept_lock=threading.Lock())

    def keep_network(self, arch: str, network: Any) -> None:
        """Keep the network of ``arch`` for a later task that scores its other proxies (the evaluator sends the
        last architectures of a call one task per proxy, and this worker may get several of one architecture):
        building it again would take a tenth of such a task's time, or half. Only the last few are kept."""
        with self._kept_lock:
            self._kept.pop(arch, None)
            self._kept[arch] = network
            while len(self._kept) > NETWORKS_KEPT:
                del self._kept[next(iter(self._kept))]

    def kept_network(self, arch: str) -> Any:
        """The network kept for ``arch`` (given up: a task takes it for its proxies), or None."""
        with self._kept_lock:
            return self._kept.pop(arch, None)

    def prepare(self) -> "ScoringSetup":
        """Set this process's torch threads and move the batch to the device, once."""
        if not self._ready:
            import torch

            if self.threads:
                torch.set_num_threads(self.threads)
            if self.batch is not None and self.device != "cpu":
                self.batch = self.batch.to(self.device)
            self._ready = True
        return self

    def proxy(self, name: str) -> "Proxy":
        for proxy in self.proxies:
            if proxy.name == name:
                return proxy
        raise KeyError(name)


@dataclass(frozen=True)
class ScoreTask:
    """Score ``arch`` (a canonical string) with the named proxies of the setup ``setup_id``; ``more``: further
    architectures, each with its own number and proxies, scored in the same task (in one fused pass where the
    space and the proxies allow: :mod:`nasx.fusion`)."""

    number: int
    arch: str
    proxies: tuple[str, ...]
    setup_id: str = ""
    attempt: int = 1
    more: tuple["ScoreTask", ...] = ()

    def all(self) -> tuple["ScoreTask", ...]:
        """This architecture's task and those of the others scored with it."""
        return (self, *self.more)


@dataclass
class TaskResult:
    """Per proxy: score, seconds, and the error that made the score NaN (None when it was computed); ``more``: the
    results of the task's further architectures."""

    number: int
    arch: str
    scores: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: a user error (NasxError) that must stop the command, not become a NaN
    fatal: str | None = None
    more: list["TaskResult"] = field(default_factory=list)

    def all(self) -> list["TaskResult"]:
        return [self, *self.more]

    @classmethod
    def failed(cls, task: "ScoreTask", message: str) -> "TaskResult":
        """Every score of the task NaN with ``message``: a task that could not be run at all."""
        results = [cls(t.number, t.arch, scores={p: math.nan for p in t.proxies},
                       seconds={p: 0.0 for p in t.proxies}, errors={p: message for p in t.proxies})
                   for t in task.all()]
        results[0].more = results[1:]
        return results[0]


def setup_id(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:16]


def run_task(setup: ScoringSetup, task: ScoreTask) -> TaskResult:
    """Scores of one task (of one architecture or several). A proxy that raises gets a NaN score and its error; a
    NasxError (a user error, e.g. a proxy not defined for the space) is returned as ``fatal``."""
    tasks = task.all()
    results = [TaskResult(t.number, t.arch) for t in tasks]
    try:
        genotypes = [setup.space.decode(t.arch) for t in tasks]
        proxies = [[setup.proxy(name) for name in t.proxies] for t in tasks]
        if len(tasks) == 1:
            compute(setup, genotypes[0], proxies[0], results[0])
        else:
            compute_many(setup, genotypes, proxies, results)
    except NasxError as exc:
        results[0].fatal = str(exc)
    results[0].more = results[1:]
    return results[0]


def compute_many(setup: ScoringSetup, genotypes: Sequence, proxies: Sequence[Sequence["Proxy"]],
                 results: Sequence[TaskResult]) -> None:
    """``compute`` for several genotypes, each with its own proxies: the fusable proxies (``Proxy.fusable``) of a
    space that builds fused networks score them all in one pass (:mod:`nasx.fusion`); every other score, and any
    the fused pass could not give, is computed one architecture at a time."""
    setup.prepare()
    remaining = [list(wanted) for wanted in proxies]
    fusable = [p for p in setup.proxies if p.fusable and p.needs_network and any(p in wanted for wanted in proxies)]
    if setup.space.fusable and fusable and len(genotypes) > 1:
        with float32_exact(setup.device):
            _compute_fused(setup, genotypes, fusable, proxies, results)
        remaining = [[p for p in wanted if p.name not in result.scores] for wanted, result in zip(proxies, results)]
    for genotype, wanted, result in zip(genotypes, remaining, results):
        if wanted:
            compute(setup, genotype, wanted, result)


def _compute_fused(setup: ScoringSetup, genotypes: Sequence, fusable: Sequence["Proxy"],
                   proxies: Sequence[Sequence["Proxy"]], results: Sequence[TaskResult]) -> None:
    """Fill ``results`` with the fusable proxies' scores of one fused network of the genotypes, each averaged over
    its repeats; the pass's seconds (building, initialising and scoring) are split evenly among the genotypes.
    Each repeat initialises every model as ``_score_network`` would initialise its own network, once, and each
    proxy starts from those weights. A score the pass cannot give (the fused network cannot be built, a proxy
    raises or returns None for a model) is left out, for the caller to compute alone."""
    import torch

    from nasx.torch_utils import initialise_fused

    start = time.perf_counter()
    try:
        network = setup.space.build_fused(genotypes)
        if setup.device != "cpu":
            network = network.to(setup.device)
    except NasxError:
        raise
    except Exception as exc:  # e.g. out of memory: one at a time still works
        _fusion_failed("building a fused network", exc)
        return
    seconds = {p.name: (time.perf_counter() - start) / len(fusable) for p in fusable}
    values: dict[str, list[list]] = {p.name: [] for p in fusable}
    for repeat in range(max(p.repeats for p in fusable)):
        active = [p for p in fusable if p.repeats > repeat and p.name in values]
        if not active:
            break
        start = time.perf_counter()
        initialise_fused(network, setup.init, seed=setup.init_seed * 1000 + repeat)
        initial = [tensor.clone() for tensor in network.state_dict().values()] if len(active) > 1 else []
        shared = (time.perf_counter() - start) / len(active)
        for number, proxy in enumerate(active):
            start = time.perf_counter()
            if number:  # every proxy starts from the repeat's initial weights, as when it runs alone
                with torch.no_grad():
                    for tensor, saved in zip(network.state_dict().values(), initial):
                        tensor.copy_(saved)
            batch = setup.batch.take(proxy.batch_size) if proxy.needs_data and setup.batch is not None else None
            try:
                scores = list(proxy.score_fused(network, batch, setup.space))
                if len(scores) != len(genotypes):
                    raise ValueError(f"{len(scores)} scores for {len(genotypes)} architectures")
            except NasxError:
                raise
            except Exception as exc:
                _fusion_failed(f"{proxy.name} on a fused network", exc)
                del values[proxy.name]
                continue
            values[proxy.name].append(scores)
            seconds[proxy.name] += time.perf_counter() - start + shared
    for name, repeats in values.items():
        for index, (wanted, result) in enumerate(zip(proxies, results)):
            scores = [scores[index] for scores in repeats]
            if any(score is None for score in scores) or name not in {p.name for p in wanted}:
                continue
            result.scores[name] = _mean([float(score) for score in scores])
            result.seconds[name] = seconds[name] / len(genotypes)


_REPORTED_FAILURES: set[str] = set()


def _fusion_failed(what: str, exc: BaseException) -> None:
    """One warning per kind of failure and process: the scores are then computed one architecture at a time."""
    import logging

    key = f"{what}: {type(exc).__name__}"
    if key not in _REPORTED_FAILURES:
        _REPORTED_FAILURES.add(key)
        logging.getLogger("nasx").warning("%s failed (%s); scoring one architecture at a time instead", what,
                                          _error(exc))


def compute(setup: ScoringSetup, genotype, proxies: Sequence["Proxy"], result: TaskResult) -> None:
    """Fill ``result`` with each proxy's score (averaged over its ``repeats`` seeded initialisations) and compute
    seconds; the network is built once and its build time shared among the proxies that use it."""
    setup.prepare()
    with float32_exact(setup.device):
        _compute(setup, genotype, proxies, result)


@contextmanager
def float32_exact(device: str):
    """For the duration, float32 matrix products and convolutions on CUDA in full float32, not TF32: TF32 changes
    grasp, epsilon and ntk by several percent, and the proxies are defined in float32. The caller's settings are
    given back afterwards."""
    if not device.startswith("cuda"):
        yield
        return
    import torch

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _compute(setup: ScoringSetup, genotype, proxies: Sequence["Proxy"], result: TaskResult) -> None:
    network, build_seconds = None, 0.0
    network_proxies = [p for p in proxies if p.needs_network]
    if network_proxies:
        start = time.perf_counter()
        network = setup.kept_network(result.arch)
        try:
            if network is None:
                network = setup.space.build(genotype)
                if setup.device != "cpu":
                    network = network.to(setup.device)
        except NasxError:
            raise
        except Exception as exc:
            message = _error(exc)
            for proxy in network_proxies:
                result.scores[proxy.name], result.seconds[proxy.name] = math.nan, 0.0
                result.errors[proxy.name] = f"building the network: {message}"
            proxies = [p for p in proxies if not p.needs_network]
        build_seconds = (time.perf_counter() - start) / len(network_proxies)
    for proxy in proxies:
        start = time.perf_counter()
        try:
            if proxy.needs_network:
                score = _score_network(setup, proxy, network)
            else:
                score = float(proxy.score_genotype(setup.space, genotype))
        except NasxError:
            raise
        except Exception as exc:  # a failed score must not stop a search: it is NaN, with its error
            score = math.nan
            result.errors[proxy.name] = _error(exc)
        seconds = time.perf_counter() - start + (build_seconds if proxy.needs_network else 0.0)
        result.scores[proxy.name], result.seconds[proxy.name] = score, seconds
    # Every proxy initialises the network afresh, so a later task's proxies score it as they would a new one;
    # a network a proxy raised on may be left in any state, and is not kept.
    if network is not None and not result.errors and len(proxies) < len(setup.proxies):
        setup.keep_network(result.arch, network)


def _score_network(setup: ScoringSetup, proxy: "Proxy", network) -> float:
    from nasx.torch_utils import initialise

    batch = setup.batch.take(proxy.batch_size) if proxy.needs_data and setup.batch is not None else None
    values = []
    for repeat in range(max(1, proxy.repeats)):
        # Every proxy re-initialises the network with the same seeds, so its score does not depend on which other
        # proxies ran before it (that is what makes per-proxy caching sound). The weights are drawn on the CPU
        # whatever the device, so a seed gives the same weights everywhere.
        initialise(network, setup.init, seed=setup.init_seed * 1000 + repeat)
        values.append(float(proxy.score_network(network, batch, setup.space)))
    return _mean(values)


def _mean(values: list[float]) -> float:
    """Mean that stays NaN when any value is NaN, instead of raising."""
    if any(math.isnan(v) for v in values):
        return math.nan
    return sum(values) / len(values)


def _error(exc: BaseException) -> str:
    """One line: the exception and where it was raised."""
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({os.path.basename(frame[0].filename)}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{where}"


def pack(setup: ScoringSetup) -> bytes:
    """The setup as bytes for workers in other processes. Component classes that a fresh interpreter could not
    import (defined in a script's ``__main__``, a notebook or a test file) travel by value."""
    import importlib.util
    import sys

    import cloudpickle

    for component in (setup.space, *setup.proxies):
        module = sys.modules.get(type(component).__module__)
        if module is None or module.__name__ == "__main__":
            continue
        try:
            importable = importlib.util.find_spec(module.__name__) is not None
        except (ImportError, ValueError):
            importable = False
        if not importable:
            cloudpickle.register_pickle_by_value(module)
    return cloudpickle.dumps(setup)


def unpack(payload: bytes) -> ScoringSetup:
    import pickle

    return pickle.loads(payload)
