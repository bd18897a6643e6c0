"""Measured latency of a space's networks: a cost that is timed, not computed.

The network a practitioner deploys (``Space.build_for_training``, which is ``build`` for every space whose proxies
score the full network) is put in evaluation mode and run without gradients on a fixed input batch, by PyTorch
eager or by onnxruntime on the network exported to an in-memory ONNX model (``nasx[export]``): ``warmup`` untimed
runs, then ``repeats`` runs timed one by one with ``time.perf_counter`` (CUDA synchronised before each clock
reading on a GPU). The latency is the median of those runs; their minimum, maximum and quartiles are kept with it.

Measurements are made in the calling (driver) process, one at a time, with torch's thread count set to ``threads``
and restored afterwards (onnxruntime gets the same count for its session). They are stored in the score cache's
SQLite file, in a table of their own, keyed by everything that changes them: the space, its version and dataset,
the architecture, the input shape and batch, the device's name (the CPU model, or the GPU's name), the runtime,
the threads, the warm-up and timed runs, and the torch (and onnxruntime) versions, so a second identical search
measures nothing.

A machine's speed can change under the same CPU model (a shared or throttled machine ran the same cells nearly 2x
slower a few hours later), and a cached latency is only as good as the speed it was measured at. So each meter
first times a fixed reference network (the fastest of ``REFERENCE_RUNS`` runs, which is steadier than their median
on a busy machine) and compares it with the reference stored when the cached latencies of this device, threads and
torch were measured: outside ``REFERENCE_TOLERANCE`` x either way, those latencies are set aside (a new
*machine epoch*, part of every key) and measured again, with a warning. Importing this module does not import
torch.
"""

from __future__ import annotations

import json
import platform
import time
import warnings
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import networkx as nx

from nasx.errors import NasxError

if TYPE_CHECKING:  # pragma: no cover
    from nasx.evaluator import ScoreCache
    from nasx.interfaces import Space
    from nasx.settings import Latency

#: what to install for ``--latency-runtime onnxruntime``
EXPORT_EXTRA = "pip install 'nasx[export]' (onnx and onnxruntime)"

#: cached latencies are reused while the reference network runs within this factor of its speed when they were
#: measured: above the spread of a latency on an idle machine (about +-5 %, docs/results.md), below the drift seen
REFERENCE_TOLERANCE = 1.5
#: timed runs of the reference network (after 5 untimed ones); their minimum is the machine's speed
REFERENCE_RUNS = 30
#: changes when ``reference_network`` does (a stored reference time of another network means nothing)
REFERENCE_VERSION = 1


@dataclass(frozen=True)
class LatencyMeasurement:
    """One network's latency in milliseconds: the median of ``runs`` timed runs, and their spread."""

    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    runs: int

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "iqr_ms": self.iqr_ms}

    @classmethod
    def of(cls, seconds: list[float]) -> "LatencyMeasurement":
        import numpy as np

        ms = np.asarray(seconds, dtype=float) * 1e3
        q1, median, q3 = np.percentile(ms, [25, 50, 75])
        return cls(float(median), float(ms.min()), float(ms.max()), float(q1), float(q3), len(seconds))


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_name(device: str) -> str:
    """What the latency was measured on: the GPU's name for CUDA, else the CPU model."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return f"mps ({cpu_model()})"
    return cpu_model()


def onnxruntime_version() -> str:
    """onnxruntime's version; a one-line error naming the extra when onnx or onnxruntime is missing."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
    except ImportError as exc:
        raise NasxError(f"--latency-runtime onnxruntime needs onnx and onnxruntime ({exc.name} is missing): "
                        f"{EXPORT_EXTRA}") from None
    return onnxruntime.__version__


class LatencyMeter:
    """Latencies of one space's networks under one ``Latency`` setting, measured here and cached.

    ``measured`` counts the latencies this meter measured (not those it found in the cache)."""

    def __init__(self, space: "Space", settings: "Latency", cache: "ScoreCache", device: str) -> None:
        from nasx.scoring import resolve_device

        self.space = space
        self.settings = settings
        self.cache = cache
        self.device = resolve_device(settings.device or device)
        self.measured = 0
        #: what the reference check found (a cached set of latencies set aside), for the run's warnings
        self.warnings: list[str] = []
        self._memo: dict[str, LatencyMeasurement] = {}
        if settings.runtime == "onnxruntime":
            onnxruntime_version()  # refuse now, before any search, when the extra is missing
            if self.device.startswith("cuda"):
                import onnxruntime

                if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                    raise NasxError("--latency-runtime onnxruntime on cuda needs onnxruntime's CUDA provider "
                                    "(pip install onnxruntime-gpu)")
            elif self.device != "cpu":
                raise NasxError(f"--latency-runtime onnxruntime measures on cpu or cuda, not {self.device}")

    @cached_property
    def identity(self) -> dict[str, Any]:
        """Everything besides the architecture that changes a measurement (part of every cache key)."""
        import torch

        s = self.settings
        batch_shape = [s.batch, *self.space.input_shape]
        return {"space": self.space.name, "version": self.space.version, "dataset": self.space.dataset,
                "input": batch_shape, "device": self.device.partition(":")[0],
                "device_name": device_name(self.device), "runtime": s.runtime, "threads": s.threads,
                "warmup": s.warmup, "repeats": s.repeats, "torch": torch.__version__,
                "onnxruntime": onnxruntime_version() if s.runtime == "onnxruntime" else None}

    def describe(self) -> str:
        s = self.settings
        return (f"{s.runtime} on {self.device} ({self.identity['device_name']}), batch {s.batch}, "
                f"{s.threads} thread{'s' if s.threads > 1 else ''}")

    def key(self, arch: str) -> str:
        return json.dumps({"arch": arch, **self.identity, "machine_epoch": self.machine_epoch}, sort_keys=True,
                          separators=(",", ":"))

    @cached_property
    def reference_ms(self) -> float:
        """The reference network's time now (ms, the fastest of ``REFERENCE_RUNS`` runs)."""
        network, inputs = reference_network()
        return min(self._timed(network, inputs, "torch", warmup=5, repeats=REFERENCE_RUNS)) * 1e3

    @cached_property
    def machine_epoch(self) -> int:
        """Which of the cache's sets of latencies for this device, threads and torch was measured at the speed
        this machine runs at now: the stored set when the reference network runs within ``REFERENCE_TOLERANCE``
        of its stored time, else a new one (the reference's time now is stored with it)."""
        i = self.identity
        key = json.dumps({"reference": REFERENCE_VERSION, "device": i["device"], "device_name": i["device_name"],
                          "threads": i["threads"], "torch": i["torch"]}, sort_keys=True, separators=(",", ":"))
        now = self.reference_ms
        stored = self.cache.get_latency(key)
        if stored is not None:
            ratio = now / stored["reference_ms"]
            if 1 / REFERENCE_TOLERANCE <= ratio <= REFERENCE_TOLERANCE:
                return int(stored["epoch"])
            epoch = int(stored["epoch"]) + 1
            self.warnings.append(
                f"this machine runs the latency reference network {ratio:.2f}x as long as when the cached "
                f"latencies were measured ({now:.3g} ms against {stored['reference_ms']:.3g} ms): they are set "
                "aside and measured again")
        else:
            epoch = 0
        self.cache.put_latency(key, {"reference_ms": now, "epoch": epoch})
        return epoch

    def latency(self, genotype: nx.DiGraph) -> LatencyMeasurement:
        """The latency of a genotype's network: from this run's memo or the cache, else measured now."""
        arch = self.space.encode(genotype)
        if arch in self._memo:
            return self._memo[arch]
        key = self.key(arch)
        record = self.cache.get_latency(key)
        if record is None:
            measurement = self.measure(genotype)
            self.cache.put_latency(key, asdict(measurement))
            self.measured += 1
        else:
            measurement = LatencyMeasurement(**record)
        self._memo[arch] = measurement
        return measurement

    def measure(self, genotype: nx.DiGraph) -> LatencyMeasurement:
        """Time the genotype's network now (nothing cached)."""
        from nasx.data import synthetic_batch

        s = self.settings
        network = self.space.build_for_training(genotype).eval()
        own = self.space.input_batch(None, s.batch)  # a space whose networks read no images (token ids)
        inputs = (own if own is not None else synthetic_batch(self.space.input_shape, self.space.num_classes,
                                                               size=s.batch)).images
        return LatencyMeasurement.of(self._timed(network, inputs, s.runtime, s.warmup, s.repeats))

    def _timed(self, network, inputs, runtime: str, warmup: int, repeats: int) -> list[float]:
        """Seconds of each timed run, with torch's threads set to the setting's for the time of it."""
        import torch

        threads = self.settings.threads
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            if runtime == "onnxruntime":
                return _time_onnxruntime(network, inputs, threads, self.device, warmup, repeats)
            return _time_torch(network, inputs, self.device, warmup, repeats)
        finally:
            torch.set_num_threads(previous)


def reference_network():
    """A fixed small convolutional network and its input (one 32x32 RGB image): the yardstick of the machine's
    speed. Built under a forked RNG, so timing it draws nothing from the caller's random state."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                                nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
        inputs = torch.randn(1, 3, 32, 32)
    return network, inputs


def _synchronise(device: str):
    import torch

    if device.startswith("cuda"):
        return lambda: torch.cuda.synchronize(torch.device(device))
    if device == "mps":
        return torch.mps.synchronize
    return lambda: None


def _time_torch(network, inputs, device: str, warmup: int, repeats: int) -> list[float]:
    import torch

    network = network.to(device)
    inputs = inputs.to(device)
    synchronise = _synchronise(device)
    seconds = []
    with torch.inference_mode():
        for _ in range(warmup):
            network(inputs)
        synchronise()
        for _ in range(repeats):
            start = time.perf_counter()
            network(inputs)
            synchronise()
            seconds.append(time.perf_counter() - start)
    return seconds


def _time_onnxruntime(network, inputs, threads: int, device: str, warmup: int, repeats: int) -> list[float]:
    import io

    import onnxruntime
    import torch

    model = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript-based exporter: a few times faster per network than the torch.export one, and it needs
        # no onnxscript; it warns that it is deprecated
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (inputs,), model, input_names=["input"], dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    provider = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
    session = onnxruntime.InferenceSession(model.getvalue(), options, providers=[provider])
    feed = {session.get_inputs()[0].name: inputs.numpy()}
    for _ in range(warmup):
        session.run(None, feed)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)  # returns when the outputs are on the host: no separate synchronisation
        seconds.append(time.perf_counter() - start)
    return seconds
