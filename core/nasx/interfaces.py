"""The interfaces of nasx: Space, Proxy, ProxySet, Combiner, Searcher, Constraint, Executor (plus Oracle).

Every component is a class with a ``name``, a dict of typed ``defaults`` for its options and the
``option_checks`` of their values; an instance holds the checked options in ``self.options``. Each interface
declares its ``kind``; ``INTERFACES`` is the one table of kinds, and every other table derives from it.
Nothing here imports torch.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Mapping, Sequence

from nasx.errors import NasxError
from nasx.options import OptionCheck, checked_options

if TYPE_CHECKING:  # pragma: no cover
    # networkx only names the genotype type here: importing it (0.1 s) would delay every command's first step
    import networkx as nx
    import numpy as np
    import torch

    from nasx.data import Batch
    from nasx.search import SearchContext


class Component:
    """Common base: a registered name, option defaults, and option validation."""

    #: what the component is: declared once by each interface (``space``, ``proxy``, ...), inherited by components
    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    #: option name -> default value; the default's type is the option's type.
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: option name -> check of its value (see :mod:`nasx.options`: ``positive``, ``non_negative``, ``finite``,
    #: ``probability``, ``in_range(low, high)``, ``one_of(*choices)``, or any callable returning a phrase or None).
    option_checks: ClassVar[Mapping[str, OptionCheck]] = {}
    #: one-line description shown by ``nasx plugins``.
    summary: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise NasxError(f"{self.kind} '{self.name}' has no option {unknown[0]!r} (options: {known})")
        self.options: dict[str, Any] = checked_options(
            self.name, {**self.defaults, **options}, self.defaults, self.option_checks)


@dataclass(frozen=True)
class Task:
    """A user's own data as a space sees it: a name that identifies the data (it stands in for the dataset in
    results and cache keys), its number of classes and the (channels, height, width) of its images."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]


@dataclass(frozen=True)
class Cost:
    """Cost of an architecture in the benchmark's units: FLOPs in millions, parameters in millions, and its
    measured latency in milliseconds when a search measures one (None otherwise: latency is measured, not
    computed, see :mod:`nasx.latency`)."""

    flops_m: float
    params_m: float
    latency_ms: float | None = None


class Space(Component, ABC):
    """A search space for one dataset: genotypes (frozen networkx DiGraphs), their string form and networks."""

    kind = "space"

    #: datasets this space can build networks for.
    datasets: ClassVar[tuple[str, ...]] = ()
    #: the dataset used when none is given; empty means the first of ``datasets``.
    default_dataset: ClassVar[str] = ""
    #: bump when the networks or the genotype encoding change, so cached scores are not reused.
    version: ClassVar[str] = "1"
    #: True when cost().params_m equals the built network's parameter count.
    cost_is_exact: ClassVar[bool] = False
    #: False for a space of which no trained networks are published: it never has ground truth.
    benchmarked: ClassVar[bool] = True
    #: named subsets that published evaluations restrict themselves to (name -> what it keeps, one line);
    #: ``nasx correlate --cells NAME`` measures on one, so its figures compare with theirs.
    subsets: ClassVar[dict[str, str]] = {}
    #: True when the space builds its networks for any number of classes and input resolution (a user's own
    #: data): ``for_data`` then gives such a space, whose ``input_shape``, ``num_classes``, ``build`` and ``cost``
    #: follow ``self.task``.
    adapts_to_data: ClassVar[bool] = False
    #: the smallest input side its networks accept (their downsampling), checked against own data
    min_resolution: ClassVar[int] = 1
    #: both input sides must be multiples of this (a network that halves the side twice without rounding: 4)
    resolution_multiple: ClassVar[int] = 1
    #: the user's data the space is adapted to, or None for a benchmark dataset
    task: Task | None = None

    def __init__(self, dataset: str | None = None, **options: Any) -> None:
        if dataset is None:
            dataset = self.dataset_or_default(None)
        if dataset not in self.datasets:
            from nasx.names import unknown_name

            raise unknown_name("dataset", dataset, self.datasets, context=f" for space '{self.name}'")
        super().__init__(**options)
        self.dataset = dataset

    @classmethod
    def dataset_or_default(cls, dataset: str | None) -> str:
        """``dataset``, or the space's default dataset when it is None."""
        if dataset is not None:
            return dataset
        if cls.default_dataset:
            return cls.default_dataset
        if not cls.datasets:
            raise NasxError(f"space '{cls.name}' declares no dataset")
        return cls.datasets[0]

    def for_data(self, task: Task) -> "Space":
        """A copy of this space whose networks are built for ``task``: its classes and input shape. Its
        ``dataset`` is the task's name, so scores of other data are never reused; it has no ground truth."""
        if not self.adapts_to_data:
            raise NasxError(f"space '{self.name}' cannot build its networks for other data: its networks are "
                            f"fixed to its benchmark's datasets ({', '.join(self.datasets)})")
        height, width = task.input_shape[1:]
        if min(height, width) < self.min_resolution:
            raise NasxError(f"images of {height}x{width} are too small for space '{self.name}', whose networks need "
                            f"a side of at least {self.min_resolution} (use --resolution)")
        step = self.resolution_multiple
        if height % step or width % step:
            fitting = max(self.min_resolution, step * round(max(height, width) / step))
            raise NasxError(f"images of {height}x{width} do not fit space '{self.name}', whose networks need sides "
                            f"that are multiples of {step} (use --resolution, e.g. --resolution {fitting})")
        import copy

        adapted = copy.copy(self)
        adapted.task = task
        adapted.dataset = task.name
        return adapted

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input image."""

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Number of output classes of the networks."""

    @abstractmethod
    def sample(self, rng: random.Random) -> nx.DiGraph:
        """A uniformly drawn valid genotype."""

    @abstractmethod
    def encode(self, genotype: nx.DiGraph) -> str:
        """Canonical string of a genotype; ``decode(encode(g))`` is equal to ``g``."""

    @abstractmethod
    def decode(self, text: str) -> nx.DiGraph:
        """Genotype from its string; raises InvalidGenotype for malformed text."""

    @abstractmethod
    def build(self, genotype: nx.DiGraph) -> "torch.nn.Module":
        """A freshly built torch network (imports torch); a space without networks raises NotImplementedError."""

    #: True when ``build_fused`` builds one network of several genotypes (horizontal fusion, :mod:`nasx.fusion`)
    fusable: ClassVar[bool] = False

    def build_fused(self, genotypes: Sequence[nx.DiGraph]) -> "torch.nn.Module":
        """One network computing the networks of ``genotypes`` side by side, holding them (``networks``, as
        ``build`` gives them) to take their weights from (``load_networks()``); see :mod:`nasx.fusion` for what it
        offers proxies. Only spaces with ``fusable = True``."""
        raise NotImplementedError(f"space '{self.name}' does not build fused networks")

    def build_for_training(self, genotype: nx.DiGraph) -> "torch.nn.Module":
        """The network a practitioner trains (what ``nasx export`` writes): by default the one ``build`` gives. A
        space whose proxies score a smaller stand-in of its network returns the full network here."""
        return self.build(genotype)

    @abstractmethod
    def cost(self, genotype: nx.DiGraph) -> Cost:
        """FLOPs and parameters in the benchmark's definition, without building the network."""

    def key(self, genotype: nx.DiGraph) -> str:
        """Stable hash of the genotype, the same in every process."""
        from nasx.genotype import stable_hash

        return stable_hash(self.name, self.encode(genotype))

    def skip_edges(self, genotype: nx.DiGraph) -> list[tuple[int, int]]:
        """Skip connections (u, v) between topologically numbered nodes; used by the ``skip`` proxy."""
        raise NasxError(f"space '{self.name}' does not define skip connections")

    def check_subset(self, subset: str) -> None:
        """Raises NasxError unless ``subset`` is one of the names in ``subsets``."""
        if subset in self.subsets:
            return
        if not self.subsets:
            raise NasxError(f"space '{self.name}' defines no subsets (asked for '{subset}')")
        from nasx.names import unknown_name

        raise unknown_name("subset", subset, self.subsets, context=f" of space '{self.name}'")

    def in_subset(self, subset: str, genotype: nx.DiGraph) -> bool:
        """True when ``genotype`` belongs to ``subset``, one of the names in ``subsets``."""
        self.check_subset(subset)
        raise NasxError(f"space '{self.name}' declares subset '{subset}' but does not test membership of it")

    def oracle(self, data_dir: str | None) -> "Oracle | None":
        """Ground truth for this space and dataset, or None when no data is available."""
        return None

    def input_batch(self, path: Any, size: int) -> "Batch | None":
        """The input batch of a space whose networks do not read images (e.g. token ids): a synthetic one of
        ``size`` examples when ``path`` is None, else one read from ``path`` (``--images``). None (the default):
        nasx's image batches."""
        return None

    def proxy_problem(self, proxy: "Proxy") -> str | None:
        """Why ``proxy`` is not defined on this space's networks (a phrase), or None when it is."""
        return None

    # a categorical encoding (optional): what black-box optimisers such as Optuna search through ----------------
    def categorical(self) -> "list[tuple[str, tuple[Any, ...]]] | None":
        """The space as categorical genes: (gene name, its choices) in a fixed order, each choice a str, int,
        float or bool; or None (the default) for a space that declares no such encoding. Every genotype has one
        set of values (``to_categorical``); values that make no valid genotype may exist (``from_categorical``
        raises InvalidGenotype for them)."""
        return None

    def to_categorical(self, genotype: nx.DiGraph) -> dict[str, Any]:
        """The genes' values of a genotype, by gene name (see ``categorical``)."""
        raise NasxError(f"space '{self.name}' declares no categorical encoding")

    def from_categorical(self, values: Mapping[str, Any]) -> nx.DiGraph:
        """The genotype of the genes' values (see ``categorical``); InvalidGenotype when they make none."""
        raise NasxError(f"space '{self.name}' declares no categorical encoding")


class SquareImages:
    """``num_classes`` and ``input_shape`` of a space whose benchmark datasets are square RGB images: from its
    ``image_datasets`` (dataset -> (classes, side)), or from the user's task once the space is adapted to one
    (``Space.for_data``). Listed before the space's base classes."""

    image_datasets: ClassVar[dict[str, tuple[int, int]]] = {}
    dataset: str
    task: Task | None

    @property
    def num_classes(self) -> int:
        return self.task.num_classes if self.task is not None else self.image_datasets[self.dataset][0]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        if self.task is not None:
            return tuple(self.task.input_shape)
        side = self.image_datasets[self.dataset][1]
        return (3, side, side)


class EvolvableSpace(Space):
    """A space with the genetic operators evolutionary searchers need."""

    @abstractmethod
    def mutate(self, genotype: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """A valid genotype that differs from ``genotype`` in exactly one gene."""

    @abstractmethod
    def crossover(self, first: nx.DiGraph, second: nx.DiGraph, rng: random.Random) -> nx.DiGraph:
        """A valid genotype each of whose genes comes from one of the parents."""


class EnumerableSpace(Space):
    """A finite space whose architectures have official indices."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def genotype_at(self, index: int) -> nx.DiGraph:
        """The genotype with this official index."""

    @abstractmethod
    def index_of(self, genotype: nx.DiGraph) -> int:
        """The official index of a genotype."""


class Proxy(Component, ABC):
    """A zero-cost proxy: scores an untrained network (or a genotype)."""

    kind = "proxy"

    higher_is_better: ClassVar[bool] = True
    needs_data: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    needs_gradients: ClassVar[bool] = False
    #: False for proxies computed from the genotype alone (no network is built for them).
    needs_network: ClassVar[bool] = True
    #: bump when the computation changes, so cached scores are not reused.
    version: ClassVar[str] = "1"

    def score_network(self, network: "torch.nn.Module", batch: "Batch | None", space: Space) -> float:
        """Score of one initialised network (``batch`` is None unless ``needs_data``); the evaluator averages it
        over ``repeats`` initialisations."""
        raise NasxError(f"proxy '{self.name}' scores genotypes, not networks")

    def score_genotype(self, space: Space, genotype: nx.DiGraph) -> float:
        """Score computed from the genotype alone (for proxies with ``needs_network = False``)."""
        raise NasxError(f"proxy '{self.name}' scores networks, not genotypes")

    #: True when ``score_fused`` scores every architecture of a fused network in one pass
    fusable: ClassVar[bool] = False

    def score_fused(self, network: "torch.nn.Module", batch: "Batch | None", space: Space) -> list[float | None]:
        """Scores of the architectures of a fused network (``Space.build_fused``), in its order, each initialised
        as it would be alone: the scores ``score_network`` gives each architecture's own network. None for an
        architecture that must be scored on its own network. Only proxies with ``fusable = True``."""
        raise NotImplementedError(f"proxy '{self.name}' does not score fused networks")

    @property
    def repeats(self) -> int:
        return int(self.options.get("repeats", 1))

    @property
    def batch_size(self) -> int:
        return int(self.options.get("batch_size", 0))


class Combiner(Component, ABC):
    """Merges several proxies' scores into one fitness (higher is better)."""

    kind = "combiner"

    @abstractmethod
    def combine(self, scores: "np.ndarray", higher_is_better: Sequence[bool]) -> "np.ndarray":
        """``scores`` has one row per candidate and one column per proxy; returns one fitness per row.

        Non-finite scores must never change the fitness of other candidates.
        """


class Searcher(Component, ABC):
    """Explores a space through a SearchContext until its budget ends."""

    kind = "searcher"

    #: the kind of space the searcher needs.
    requires: ClassVar[type[Space]] = Space

    @abstractmethod
    def search(self, context: "SearchContext") -> None:
        """Evaluate genotypes through ``context``; may return early, or be stopped by the budget."""


class Constraint(Component, ABC):
    """Feasibility of an architecture, decided from its cost before any proxy is computed."""

    kind = "constraint"

    #: True for a constraint on the measured latency (``cost.latency_ms``): a search measures a candidate's latency
    #: only once every other constraint has passed it, and before any proxy scores it.
    needs_latency: ClassVar[bool] = False

    @abstractmethod
    def is_feasible(self, cost: Cost) -> bool: ...

    def describe(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.options.items())})"


class Executor(Component, ABC):
    """Runs the evaluator's scoring tasks: in this process, in worker processes, or on a cluster.

    ``start(setup)`` hands the workers a :class:`nasx.scoring.ScoringSetup` (sent once per worker, not per task);
    ``run(tasks)`` pulls tasks lazily, keeps about ``capacity`` running (a remote executor may queue one more per
    worker so that none waits for a round trip), and yields each
    :class:`nasx.scoring.TaskResult` as it completes (in any order); ``close()`` stops the workers. ``start`` may be
    called again with another setup while the workers run. A task whose worker dies is run once more elsewhere; a
    second death gives NaN scores with the error.
    """

    kind = "executor"

    #: how many tasks run at once
    @property
    def capacity(self) -> int:
        return 1

    def open(self) -> None:
        """Start the workers ahead of the first ``start``, so that their start-up is not part of a search's time."""

    @abstractmethod
    def start(self, setup: Any) -> None: ...

    @abstractmethod
    def run(self, tasks: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None:
        """Stop the workers; the executor may be started again."""

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Oracle(ABC):
    """Ground truth of a benchmark space: the accuracy networks reach when trained."""

    #: where the numbers come from, shown to users.
    source: str = ""
    #: False for ground truth where lower is better (a loss): ``nasx correlate`` turns it round
    higher_is_better: bool = True
    #: what ``test_accuracy`` returns, with its unit, as reports name it
    metric: str = "test accuracy (%)"

    @abstractmethod
    def test_accuracy(self, genotype: nx.DiGraph) -> float:
        """Test accuracy in percent (or the benchmark's measure, e.g. a test loss; see ``higher_is_better``)."""

    def genotypes(self) -> "list[nx.DiGraph] | None":
        """Every architecture with ground truth when only a few of a space's architectures have it and the space
        cannot be enumerated (``nasx correlate`` then samples these); None otherwise."""
        return None

    def records(self) -> "Iterable[tuple[str, float, Cost]] | None":
        """(arch string, test accuracy, cost) of every architecture of the space, when the benchmark holds them all
        in a table it can read quickly (the true front of a search with several objectives is built from them);
        None otherwise."""
        return None

    def optimum(self, constraints: Sequence[Constraint]) -> tuple[str, float] | None:
        """(arch string, accuracy) of the most accurate feasible architecture, when it can be known."""
        return None


class ProxySet(Component):
    """A named set of proxies and the combiner that merges them, usable wherever proxies are named
    (``--proxy az_nas``); its combiner applies unless one is given."""

    kind = "proxy-set"
    #: the proxies' names, in the order their scores are combined
    proxies: ClassVar[tuple[str, ...]] = ()
    #: the combiner's name
    combiner: ClassVar[str] = ""


#: every interface a component can implement: the one table of kinds
INTERFACES: tuple[type[Component], ...] = (Space, Proxy, ProxySet, Combiner, Searcher, Constraint, Executor)
BASE_OF_KIND: dict[str, type[Component]] = {base.kind: base for base in INTERFACES}
KINDS = tuple(BASE_OF_KIND)
