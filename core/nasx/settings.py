"""The validated groups the API hands its flat keywords on as: each group is checked once, where it is made.

- ``Limits``: feasibility limits of the architectures (FLOPs, parameters, measured latency);
- ``Latency``: how latency is measured (runtime, device, batch, threads, warm-up and timed runs);
- ``Execution``: where and how scores are computed (device, executor, workers, threads, scheduler, architectures
  per fused pass);
- ``Inputs``: what the proxies see and what is known of the truth (data directory, images, initialisation,
  score cache, and the user's own ``Data``);
- ``Data``: a user's own images (``--data``, ``--resolution``, ``--data-seed``), opened once.

The search budget is :class:`nasx.search.Budget`. Nothing here imports torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Union

from nasx.errors import NasxError
from nasx.interfaces import Component

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch
    from nasx.datasets import ImageData
    from nasx.interfaces import Space
    from nasx.plugins import Plugins

#: a component given by name (an installed plugin), as a class, or as an instance
ComponentSpec = Union[str, type, Component]
#: a cache file path; None for the default cache ($NASX_CACHE or the user cache dir); False for no cache
CacheSpec = Union[str, os.PathLike, None, bool]
#: the executor when none is named: worker processes on a machine of several cores (see _build.auto_executor)
DEFAULT_EXECUTOR = "auto"


def check_int(option: str, value: Any, minimum: int | None = None, meaning: str = "") -> None:
    """A NasxError unless ``value`` is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NasxError(f"{option} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        which = {0: "0 or more", 1: "a positive integer"}.get(minimum, f"an integer of at least {minimum}")
        raise NasxError(f"{option} must be {which}{meaning}, got {value}")


def _limit(option: str, value: Any) -> float | None:
    """None, or a positive finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise NasxError(f"{option} must be a positive finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Limits:
    """Largest FLOPs and parameters (millions, the space's definition) and measured latency (milliseconds, see
    ``Latency``); None for no limit. Infeasible architectures are never scored."""

    max_flops: float | None = None
    max_params: float | None = None
    max_latency: float | None = None

    #: option -> (constraint plugin, command-line option)
    CONSTRAINTS = {"max_flops": ("max-flops", "--max-flops"), "max_params": ("max-params", "--max-params"),
                   "max_latency": ("max-latency", "--max-latency")}

    def __post_init__(self) -> None:
        for field_name, (_, option) in self.CONSTRAINTS.items():
            object.__setattr__(self, field_name, _limit(option, getattr(self, field_name)))

    def constraints(self, plugins: "Plugins") -> list:
        """The constraint components of the limits that are set."""
        return [plugins.get("constraint", name)(limit=getattr(self, field_name))
                for field_name, (name, _) in self.CONSTRAINTS.items() if getattr(self, field_name) is not None]

    def as_dict(self) -> dict[str, float | None]:
        return {field_name: getattr(self, field_name) for field_name in self.CONSTRAINTS}


#: how a latency is measured: PyTorch eager, or onnxruntime on the network exported to ONNX (``nasx[export]``)
LATENCY_RUNTIMES = ("torch", "onnxruntime")


@dataclass(frozen=True)
class Latency:
    """How the latency of a network is measured (:mod:`nasx.latency`): by ``runtime`` (``torch``: PyTorch eager;
    ``onnxruntime``: the network exported to ONNX), on ``device`` (None: the scoring device), for a batch of
    ``batch`` inputs, with ``threads`` intra-op threads, ``warmup`` untimed runs and the median of ``repeats``
    timed runs."""

    runtime: str = "torch"
    device: str | None = None
    batch: int = 1
    threads: int = 1
    warmup: int = 5
    repeats: int = 20

    def __post_init__(self) -> None:
        if self.runtime not in LATENCY_RUNTIMES:
            from nasx.names import unknown_name

            raise unknown_name("latency runtime", self.runtime, LATENCY_RUNTIMES, context=" (--latency-runtime)")
        check_int("--latency-batch", self.batch, 1)
        check_int("--latency-threads", self.threads, 1)
        check_int("--latency-warmup", self.warmup, 0)
        check_int("--latency-repeats", self.repeats, 1)

    def as_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "device": self.device, "batch": self.batch, "threads": self.threads,
                "warmup": self.warmup, "repeats": self.repeats}


@dataclass(frozen=True)
class Execution:
    """Where and how scores are computed. ``executor``: a name (``auto``, ``serial``, ``process``, ``dask``), an
    Executor class or instance; ``workers`` processes (None: one per core), ``threads`` torch threads per worker
    (0: torch's default), ``scheduler`` the address of a Dask scheduler; ``batch_archs`` architectures scored in
    one fused pass, or ``auto`` (:mod:`nasx.fusion`)."""

    device: str | None = None
    executor: ComponentSpec = DEFAULT_EXECUTOR
    workers: int | None = None
    threads: int | None = None
    scheduler: str | None = None
    batch_archs: int | str = "auto"

    def __post_init__(self) -> None:
        from nasx.fusion import check_batch_archs

        if self.workers is not None:
            check_int("--workers", self.workers, 1, " (leave it out for one worker per core)")
        if self.threads is not None:
            check_int("--threads", self.threads, 0, " (0: torch's default)")
        object.__setattr__(self, "batch_archs", check_batch_archs(self.batch_archs))


@dataclass(frozen=True)
class Data:
    """A user's own labelled images (``--data PATH``: a folder with one sub-folder per class, an .npz, or a CIFAR
    python folder; see :mod:`nasx.datasets`), read at ``resolution`` x ``resolution`` when it is given (else at
    their own size), and the seed of the class-balanced batch the proxies see. The data names the task: the number
    of classes and the input shape come from it, and spaces that adapt to data are built for it."""

    path: str | os.PathLike
    resolution: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)) or not os.fspath(self.path):
            raise NasxError(f"--data must be a path, got {self.path!r}")
        if self.resolution is not None:
            check_int("--resolution", self.resolution, 1)
        check_int("--data-seed", self.seed, 0)

    @classmethod
    def given(cls, path: "str | os.PathLike | Data | None", resolution: int | None = None,
              seed: int | None = None) -> "Data | None":
        """The Data of the API's ``data``/``resolution``/``data_seed`` keywords, or None without ``data``."""
        if isinstance(path, Data):
            if resolution is not None or seed is not None:
                raise NasxError("give resolution and data_seed in the Data, not beside it")
            return path
        if path is None:
            for option, value in (("--resolution", resolution), ("--data-seed", seed)):
                if value is not None:
                    raise NasxError(f"{option} applies to your own images: give --data PATH too")
            return None
        return cls(path, resolution, 0 if seed is None else seed)

    @cached_property
    def images(self) -> "ImageData":
        """The images, listed once (:func:`nasx.datasets.open_images`)."""
        from nasx.datasets import open_images

        return open_images(self.path, self.resolution)

    def check_alone(self, dataset: str | None = None, images: Any = None) -> None:
        """Own data names the task and gives the proxies' batch: a dataset or input images beside it are errors."""
        if dataset is not None:
            raise NasxError(f"--dataset {dataset} and --data together: your data names the task (its classes and "
                            "image size); leave out --dataset")
        if images is not None:
            raise NasxError("--images and --data together: with your own data the proxies see a batch drawn from it")

    def adapt(self, space: "Space", dataset: str | None) -> "Space":
        """``space`` built for these images: their classes and input shape (a one-line error for a space whose
        networks are fixed to its benchmark, or images too small for it)."""
        self.check_alone(dataset=dataset)
        return space.for_data(self.images.task)

    def record(self) -> dict[str, Any]:
        """What results record of the data."""
        return {"data": os.fspath(self.path), "resolution": self.resolution, "data_seed": self.seed}


@dataclass(frozen=True)
class Inputs:
    """What the proxies see and where the truth is: ``data_dir`` (benchmark tables; else ``$NASX_DATA``),
    ``images`` (a file, a folder, a ready Batch, or None for the synthetic batch), the weight initialisation
    before every score and its seed, the score cache, and ``data``: the user's own images, which the space is
    built for and the proxies' batch is drawn from."""

    data_dir: str | os.PathLike | None = None
    images: "str | os.PathLike | Batch | None" = None
    init: str = "kaiming"
    init_seed: int = 0
    cache: CacheSpec = None
    data: Data | None = None

    def __post_init__(self) -> None:
        from nasx.evaluator import INIT_SCHEMES

        if self.init not in INIT_SCHEMES:
            raise NasxError(f"unknown initialisation {self.init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        check_int("--init-seed", self.init_seed)
        if self.data is not None:
            if not isinstance(self.data, Data):
                raise NasxError(f"data must be a nasx.settings.Data, got {self.data!r}")
            self.data.check_alone(images=self.images)

    def oracle(self, space):
        """The space's ground truth from the data directory, or None."""
        return self.ground_truth(space)[0]

    def ground_truth(self, space) -> tuple[Any, str | None]:
        """(oracle, None), or (None, why there is no ground truth: the space has no benchmark, no data directory
        is set, or the one set holds none for this space and dataset)."""
        from nasx.data import resolve_data_dir

        if space.task is not None:
            return None, (f"no ground truth for your own data ({space.task.name}): no benchmark trained these "
                          "networks on it; train candidates with nasx train to compare them")
        if not space.benchmarked:
            return None, f"space '{space.name}' has no ground truth: no benchmark of its trained networks exists"
        directory = resolve_data_dir(self.data_dir)
        oracle = space.oracle(directory)
        if oracle is not None:
            return oracle, None
        if directory is None:
            return None, "no ground truth: no data directory; set --data-dir or NASX_DATA (README, Data)"
        return None, (f"no ground truth for space '{space.name}' on {space.dataset} in {str(directory)!r} "
                      "(README, Data)")

    def init_record(self) -> dict[str, Any]:
        return {"scheme": self.init, "seed": self.init_seed}
