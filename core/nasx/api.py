"""The Python API: one function per ``nasx`` command, whose keyword arguments are the command's option names.

    import nasx

    result = nasx.run(proxies=["naswot", "logsynflow", "skip"], search="freerea", max_evals=20, seed=0)
    print(result.arch, result.test_accuracy)

Components are given by name (installed plugins), or as classes or instances that are not installed
(``proxies=["naswot", MyProxy]``), so a new proxy can be tried without packaging it. Options of named components
and of classes come from ``options`` (``{"naswot.batch_size": 32, "repeats": 1}``); an instance is used as it is.
The commands of the ``nasx`` CLI only parse their options, call these functions and print the result.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence, Union

import networkx as nx

from nasx import jsonio
from nasx.errors import NasxError
from nasx.interfaces import BASE_OF_KIND, Component, EnumerableSpace, Proxy, Space
from nasx.options import check_all_used, option_table, options_for, parse_assignments

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch
    from nasx.evaluator import Evaluator
    from nasx.interfaces import Executor
    from nasx.plugins import Plugins

DEFAULT_SPACE = "nats-tss"
DEFAULT_COMBINER = "freerea"
DEFAULT_SEARCH = "freerea"
#: distinct architectures scored when no budget is given
DEFAULT_MAX_EVALS = 100
#: images in the synthetic input batch (the proxies take the first ``batch_size``)
SYNTHETIC_BATCH_SIZE = 256
CORRELATE_OUTPUT_SUFFIXES = (".json", ".csv")

ComponentSpec = Union[str, type, Component]
Options = Union[Mapping[str, Any], Iterable[str], None]
#: a cache file path; None for the default cache ($NASX_CACHE or the user cache dir); False for no cache
CacheSpec = Union[str, os.PathLike, None, bool]


# ---------------------------------------------------------------------------------------------------------------
# building components


def option_pairs(options: Options) -> tuple[str, ...]:
    """``[component.]name=value`` strings from a mapping ({"naswot.batch_size": 32}) or from such strings."""
    if options is None:
        return ()
    if isinstance(options, str):
        raise NasxError("options must be a mapping or a list of 'name=value' strings, not one string")
    if isinstance(options, Mapping):
        return tuple(f"{key}={_option_text(value)}" for key, value in options.items())
    return tuple(options)


def _option_text(value: Any) -> str:
    """The command-line form of a Python value, so that both go through the same conversion and checks."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_option_text(v) for v in value)
    return str(value)


class ComponentBuilder:
    """Turns component specs (names, classes or instances) into instances carrying their options.

    Every option must concern a selected component, so a typo is an error, not a silently ignored setting.
    """

    def __init__(self, plugins: "Plugins", options: Options) -> None:
        self.plugins = plugins
        self.assignments = parse_assignments(option_pairs(options))
        self.classes: list[type] = []
        self.instances: list[Component] = []

    def resolve(self, kind: str, spec: ComponentSpec) -> type | Component:
        base = BASE_OF_KIND[kind]
        if isinstance(spec, str):
            resolved = self.plugins.get(kind, spec)
        elif isinstance(spec, type) and issubclass(spec, base):
            if not spec.name:
                raise NasxError(f"{kind} class {spec.__name__} has no name")
            resolved = spec
        elif isinstance(spec, base):
            resolved = spec
        else:
            raise NasxError(f"a {kind} is given by name, as a {base.__name__} subclass or as an instance; "
                            f"got {spec!r}")
        (self.classes if isinstance(resolved, type) else self.instances).append(resolved)
        return resolved

    def check(self) -> None:
        """Call once every component is resolved: each option must reach one of them."""
        given_as_instances = {c.name for c in self.instances} - {c.name for c in self.classes}
        for scope, name, _ in self.assignments:
            if scope in given_as_instances:
                raise NasxError(f"option {scope}.{name}: '{scope}' is given as an instance; set its options "
                                "when you create it")
        check_all_used(self.assignments, option_table(self.classes))

    def build(self, resolved: type | Component, **extra: Any) -> Any:
        if not isinstance(resolved, type):
            return resolved
        return resolved(**extra, **options_for(resolved.name, resolved.defaults, self.assignments))


def components(
    plugins: "Plugins",
    space: ComponentSpec,
    dataset: str | None,
    proxies: Sequence[ComponentSpec],
    others: Mapping[str, Sequence[ComponentSpec]],
    options: Options,
) -> tuple[Space, list[Proxy], dict[str, list[Any]]]:
    """The space (for ``dataset``, else its default), the proxies, and components of other kinds by kind."""
    proxies = _as_specs(proxies)
    if not proxies:
        raise NasxError("at least one proxy is needed (--proxy NAME)")
    builder = ComponentBuilder(plugins, options)
    space_resolved = builder.resolve("space", space)
    proxy_resolved = [builder.resolve("proxy", p) for p in proxies]
    names = [p.name for p in proxy_resolved]
    for name in names:
        if names.count(name) > 1:
            raise NasxError(f"the proxy '{name}' is named twice")
    other_resolved = {kind: [builder.resolve(kind, s) for s in specs] for kind, specs in others.items()}
    builder.check()
    built_space = _space_instance(builder, space_resolved, dataset)
    return (
        built_space,
        [builder.build(p) for p in proxy_resolved],
        {kind: [builder.build(r) for r in resolved] for kind, resolved in other_resolved.items()},
    )


def _space_instance(builder: ComponentBuilder, resolved: type | Component, dataset: str | None) -> Space:
    """The space for ``dataset`` (else its default) from a resolved class, or the instance given."""
    if isinstance(resolved, type):
        return builder.build(resolved, dataset=resolved.dataset_or_default(dataset))
    if dataset is not None and dataset != resolved.dataset:
        raise NasxError(f"the space instance is built for {resolved.dataset!r}, not {dataset!r}")
    return resolved  # type: ignore[return-value]


def _as_specs(specs: Any) -> list:
    if specs is None:
        return []
    if isinstance(specs, (str, type, Component)):
        return [specs]
    return list(specs)


def _plugins(plugins: "Plugins | None") -> "Plugins":
    from nasx.plugins import Plugins

    return plugins if plugins is not None else Plugins()


def open_cache(cache: CacheSpec):
    """The score cache: a path, None (or True) for the default cache, False for none (in memory)."""
    from nasx.evaluator import ScoreCache, default_cache_path

    if cache is False:
        return ScoreCache(None)
    if cache is None or cache is True:
        return ScoreCache(default_cache_path())
    return ScoreCache(cache)


def input_batch(space: Space, proxies: Sequence[Proxy], images: "str | os.PathLike | Batch | None") -> "Batch | None":
    """The images the proxies see: a file or folder, a ready Batch, or the synthetic batch; None when no proxy
    needs data."""
    from nasx.data import Batch, load_images, synthetic_batch

    if not any(p.needs_data for p in proxies):
        return None
    if isinstance(images, Batch):
        return images
    own = space.input_batch(images, SYNTHETIC_BATCH_SIZE)  # a space whose networks read no images
    if own is not None:
        return own
    if images is None:
        return synthetic_batch(space.input_shape, space.num_classes, size=SYNTHETIC_BATCH_SIZE)
    return load_images(images, space.dataset)


def evaluator(space: Space, proxies: Sequence[Proxy], images, init: str, init_seed: int, cache: CacheSpec,
              device: str = "cpu", executor: "Executor | None" = None) -> "Evaluator":
    from nasx.evaluator import Evaluator

    _check_int("--init-seed", init_seed)
    batch = input_batch(space, proxies, images)
    return Evaluator(space, proxies, batch, open_cache(cache), init=init, init_seed=init_seed, device=device,
                     executor=executor)


EXECUTOR_OPTIONS = {"workers": "--workers", "threads": "--threads", "scheduler": "--scheduler"}


def make_executor(plugins: "Plugins", executor: ComponentSpec, workers: int | None = None,
                  threads: int | None = None, scheduler: str | None = None) -> "Executor":
    """An executor by name (``serial``, ``process``, ``dask``), class or instance, with the worker options that
    were given; an option the executor does not have is an error (``--workers`` needs process or dask)."""
    builder = ComponentBuilder(plugins, None)
    resolved = builder.resolve("executor", executor)
    given = {name: value for name, value in (("workers", workers), ("threads", threads), ("scheduler", scheduler))
             if value is not None}
    if not isinstance(resolved, type):
        if given:
            raise NasxError(f"{EXECUTOR_OPTIONS[next(iter(given))]} cannot change an executor given as an instance")
        return resolved
    for name in given:
        if name not in resolved.defaults:
            raise NasxError(f"{EXECUTOR_OPTIONS[name]}: the {resolved.name} executor has no {name} "
                            f"(options: {', '.join(sorted(resolved.defaults)) or 'none'})")
    return resolved(**given)


class _Execution:
    """The device and the executor of one call; closes an executor it made (not one it was given)."""

    def __init__(self, plugins, device, executor, workers, threads, scheduler) -> None:
        from nasx.scoring import resolve_device

        self.device = resolve_device(device)
        self.owned = not isinstance(executor, Component)
        self.executor = make_executor(plugins, executor, workers, threads, scheduler)
        try:
            self.executor.open()
        except BaseException:
            if self.owned:
                self.executor.close()
            raise

    def __enter__(self) -> "_Execution":
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.executor.close()


def _check_int(option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NasxError(f"{option} must be an integer, got {value!r}")


def _limit(option: str, value: Any) -> float | None:
    """A FLOPs or parameter limit: None, or a positive finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise NasxError(f"{option} must be a positive finite number, got {value!r}")
    return float(value)


def constraints(plugins: "Plugins", max_flops: float | None, max_params: float | None) -> list:
    chosen = []
    for option, name, value in (("--max-flops", "max-flops", max_flops), ("--max-params", "max-params", max_params)):
        limit = _limit(option, value)
        if limit is not None:
            chosen.append(plugins.get("constraint", name)(limit=limit))
    return chosen


def _oracle(space: Space, data_dir: str | os.PathLike | None):
    from nasx.data import resolve_data_dir

    return space.oracle(resolve_data_dir(data_dir))


# ---------------------------------------------------------------------------------------------------------------
# nasx.run


@dataclass
class RunResult:
    """What a search found. ``to_dict()`` is exactly what ``nasx run --out`` writes (strict JSON: non-finite
    scores are null and named in ``non_finite_scores``)."""

    space: str
    dataset: str
    search: str
    proxies: list[str]
    combiner: str
    seed: int
    arch: str
    genotype: nx.DiGraph
    index: int | None
    scores: dict[str, float]
    fitness: float
    flops_m: float
    params_m: float
    evaluated: int
    wall_seconds: float
    compute_seconds: float
    stop_reason: str
    budget: dict[str, Any]
    constraints: dict[str, Any]
    options: dict[str, dict[str, Any]]
    input: str | None
    init: dict[str, Any]
    device: str = "cpu"
    executor: str = "serial"
    test_accuracy: float | None = None
    optimum_arch: str | None = None
    optimum_accuracy: float | None = None
    regret: float | None = None
    ground_truth: str | None = None
    ground_truth_metric: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def non_finite_scores(self) -> list[str]:
        """Proxies whose score of the chosen architecture is NaN or infinite."""
        return jsonio.non_finite(self.scores)

    def to_dict(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "genotype"}
        position = list(record).index("fitness")
        items = list(record.items())
        items.insert(position, ("non_finite_scores", self.non_finite_scores))
        return jsonio.strict(dict(items))


def run(
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    proxies: Sequence[ComponentSpec] | ComponentSpec = (),
    combiner: ComponentSpec = DEFAULT_COMBINER,
    search: ComponentSpec = DEFAULT_SEARCH,
    seed: int = 0,
    max_evals: int | None = None,
    max_time: float | None = None,
    max_wall: float | None = None,
    max_flops: float | None = None,
    max_params: float | None = None,
    data_dir: str | os.PathLike | None = None,
    images: "str | os.PathLike | Batch | None" = None,
    init: str = "kaiming",
    init_seed: int = 0,
    cache: CacheSpec = None,
    options: Options = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
    device: str | None = None,
    executor: ComponentSpec = "serial",
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    plugins: "Plugins | None" = None,
) -> RunResult:
    """Search ``space`` with the proxies' combined fitness and return the best architecture found.

    Budgets: ``max_evals`` distinct architectures (100 when no budget is given), ``max_time`` recorded compute
    seconds, ``max_wall`` wall-clock seconds. ``max_flops``/``max_params`` in millions; infeasible candidates are
    never scored. ``out`` also writes the result as JSON. ``progress`` shows a bar on a terminal's stderr.
    ``device``: cpu (default, or ``$NASX_DEVICE``), cuda, cuda:N, mps or auto. ``executor``: serial (default),
    process (``workers`` local processes) or dask (``scheduler`` address, else a local cluster of ``workers``);
    ``threads``: torch threads per worker. The same seed gives the same result with any executor.
    """
    from nasx.search import Budget, SearchContext, run_search

    plugins = _plugins(plugins)
    _check_int("--seed", seed)
    built_space, built_proxies, others = components(
        plugins, space, dataset, proxies, {"combiner": [combiner], "searcher": [search]}, options)
    (built_combiner,), (searcher,) = others["combiner"], others["searcher"]
    budget_given = any(v is not None for v in (max_evals, max_time, max_wall))
    budget = Budget(max_evals=max_evals if budget_given else DEFAULT_MAX_EVALS, max_time=max_time,
                    max_wall=max_wall)
    chosen_constraints = constraints(plugins, max_flops, max_params)
    oracle = _oracle(built_space, data_dir)
    with _Execution(plugins, device, executor, workers, threads, scheduler) as execution:
        scorer = evaluator(built_space, built_proxies, images, init, init_seed, cache, execution.device,
                           execution.executor)
        bar = _SearchProgress(budget, enabled=progress)
        context = SearchContext(built_space, scorer, built_combiner, chosen_constraints, budget, seed=seed,
                                on_evaluation=bar.on_evaluation)
        try:
            with bar:
                found = run_search(searcher, context)
        finally:
            scorer.close()
        executor_description = execution.executor.describe()
    genotype = context.genotypes[found.key]
    result = RunResult(
        space=built_space.name, dataset=built_space.dataset, search=searcher.name,
        proxies=[p.name for p in built_proxies], combiner=built_combiner.name, seed=seed,
        arch=found.arch, genotype=genotype,
        index=built_space.index_of(genotype) if isinstance(built_space, EnumerableSpace) else None,
        scores=found.scores, fitness=found.fitness, flops_m=found.cost.flops_m, params_m=found.cost.params_m,
        evaluated=found.evaluated, wall_seconds=found.wall_seconds, compute_seconds=found.compute_seconds,
        stop_reason=found.stop_reason,
        budget={"max_evals": budget.max_evals, "max_time": budget.max_time, "max_wall": budget.max_wall},
        constraints={"max_flops": max_flops, "max_params": max_params},
        options={c.name: c.options for c in [built_space, *built_proxies, built_combiner, searcher] if c.options},
        input=scorer.batch.identity if scorer.batch is not None else None,
        init={"scheme": init, "seed": init_seed},
        device=scorer.device, executor=executor_description,
        ground_truth=oracle.source if oracle is not None else None,
        history=[
            {"arch": e.arch, "scores": e.scores, "non_finite": jsonio.non_finite(e.scores), "seconds": e.seconds,
             "cached": all(e.cached.values()), "errors": e.errors}
            for e in found.history
        ],
    )
    if oracle is not None:
        result.test_accuracy = oracle.test_accuracy(genotype)
        result.ground_truth_metric = oracle.metric
        optimum = oracle.optimum(chosen_constraints)
        if optimum is not None:
            result.optimum_arch, result.optimum_accuracy = optimum
            result.regret = result.optimum_accuracy - result.test_accuracy
    if out is not None:
        jsonio.write(out, result.to_dict(), indent=2)
    return result


class _SearchProgress:
    """Progress of a search: distinct architectures scored, or compute seconds spent, against the budget."""

    def __init__(self, budget, enabled: bool) -> None:
        from nasx.progress import ProgressBar

        total = budget.max_evals if budget.max_evals is not None else budget.max_time
        self.bar = ProgressBar("searching", None if total is None else float(total), enabled)
        self.budget = budget

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def on_evaluation(self, context, evaluation) -> None:
        done = len(context.explored) if self.budget.max_evals is not None else context.compute_seconds
        self.bar.update(done, f"{len(context.explored)} scored, {context.compute_seconds:.1f} s compute")


# ---------------------------------------------------------------------------------------------------------------
# nasx.score


def iter_scores(
    archs: Sequence[str] | str = (),
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    proxies: Sequence[ComponentSpec] | ComponentSpec = (),
    all_archs: bool = False,
    data_dir: str | os.PathLike | None = None,
    images: "str | os.PathLike | Batch | None" = None,
    init: str = "kaiming",
    init_seed: int = 0,
    cache: CacheSpec = None,
    options: Options = None,
    progress: bool = False,
    device: str | None = None,
    executor: ComponentSpec = "serial",
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    plugins: "Plugins | None" = None,
) -> Iterator[dict[str, Any]]:
    """``score``, one record at a time, in order, as the architectures are scored. ``all_archs`` takes every
    architecture of an enumerable space in official index order; scores are stored in the cache as they come, so
    an interrupted run continues where it stopped."""
    plugins = _plugins(plugins)
    built_space, built_proxies, _ = components(plugins, space, dataset, proxies, {}, options)
    archs = [archs] if isinstance(archs, str) else list(archs)
    if all_archs:
        if archs:
            raise NasxError("give architectures or --all, not both")
        if not isinstance(built_space, EnumerableSpace):
            raise NasxError(f"space '{built_space.name}' cannot be enumerated: --all needs an enumerable space")
        genotypes: Sequence[nx.DiGraph] = _Enumeration(built_space)
    else:
        if not archs:
            raise NasxError("no architecture to score (--arch ARCH, or --all)")
        genotypes = [built_space.decode(arch) for arch in archs]  # every string is checked before any work
    oracle = _oracle(built_space, data_dir)
    from nasx.progress import ProgressBar

    with _Execution(plugins, device, executor, workers, threads, scheduler) as execution:
        scorer = evaluator(built_space, built_proxies, images, init, init_seed, cache, execution.device,
                           execution.executor)
        # chunks keep every worker busy while records stream out in order
        chunk = max(64, 16 * execution.executor.capacity)
        try:
            with ProgressBar("scoring", len(genotypes), enabled=progress, eta=True) as bar:
                for first in range(0, len(genotypes), chunk):
                    part = [genotypes[i] for i in range(first, min(first + chunk, len(genotypes)))]
                    for genotype, evaluation in zip(part, scorer.evaluate_many(part)):
                        cost = built_space.cost(genotype)
                        yield {
                            "arch": evaluation.arch,
                            "scores": evaluation.scores,
                            "non_finite": jsonio.non_finite(evaluation.scores),
                            "seconds": evaluation.seconds,
                            "cached": all(evaluation.cached.values()),
                            "errors": evaluation.errors,
                            "flops_m": cost.flops_m,
                            "params_m": cost.params_m,
                            "test_accuracy": oracle.test_accuracy(genotype) if oracle is not None else None,
                        }
                    bar.update(first + len(part), f"{first + len(part)}/{len(genotypes)}")
        finally:
            scorer.close()


class _Enumeration:
    """Every genotype of an enumerable space, built when asked for (a list of them all would be large)."""

    def __init__(self, space: EnumerableSpace) -> None:
        self.space = space

    def __len__(self) -> int:
        return len(self.space)

    def __getitem__(self, index: int) -> nx.DiGraph:
        return self.space.genotype_at(index)


def score(archs: Sequence[str] | str = (), **options: Any) -> list[dict[str, Any]]:
    """Scores, costs and (with ground truth) test accuracy of given architecture strings, one record each.
    Takes the keyword arguments of ``iter_scores``."""
    return list(iter_scores(archs, **options))


# ---------------------------------------------------------------------------------------------------------------
# nasx.correlate


def subset_test(space: Space, cells: str | None):
    """None for every architecture, else the membership test of the space's subset named ``cells``."""
    if cells is None:
        return None
    space.check_subset(cells)
    return lambda genotype: space.in_subset(cells, genotype)


def correlation_sample(space: Space, size: int, seed: int, oracle=None, keep=None) -> list[tuple[Any, nx.DiGraph]]:
    """(label, genotype) pairs: the architectures with ground truth when the oracle lists them (labelled by
    their strings), else official indices of an enumerable space, else distinct random genotypes. ``keep``
    (a genotype test) draws from the architectures it accepts only."""
    known = oracle.genotypes() if oracle is not None else None
    if known is not None:
        if keep is not None:
            known = [genotype for genotype in known if keep(genotype)]
        picked = known if size <= 0 or size >= len(known) else random.Random(seed).sample(known, size)
        return [(space.encode(genotype), genotype) for genotype in picked]
    if isinstance(space, EnumerableSpace):
        if keep is None:
            pool = range(len(space))
            indices = pool if size <= 0 or size >= len(pool) else random.Random(seed).sample(pool, size)
            return [(index, space.genotype_at(index)) for index in indices]
        kept = {index: genotype for index in range(len(space)) if keep(genotype := space.genotype_at(index))}
        indices = list(kept) if size <= 0 or size >= len(kept) else random.Random(seed).sample(list(kept), size)
        return [(index, kept[index]) for index in indices]
    if size <= 0:
        raise NasxError(f"space '{space.name}' cannot be enumerated; give --sample N")
    rng, seen, picked = random.Random(seed), set(), []
    for _ in range(size * 100):
        genotype = space.sample(rng)
        key = space.key(genotype)
        if key not in seen and (keep is None or keep(genotype)):
            seen.add(key)
            picked.append((space.encode(genotype), genotype))
        if len(picked) == size:
            break
    return picked


def correlate(
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    proxies: Sequence[ComponentSpec] | ComponentSpec = (),
    combiners: Sequence[ComponentSpec] | ComponentSpec = (),
    sample: int = 1000,
    seed: int = 0,
    bootstrap: int = 1000,
    cells: str | None = None,
    data_dir: str | os.PathLike | None = None,
    images: "str | os.PathLike | Batch | None" = None,
    init: str = "kaiming",
    init_seed: int = 0,
    cache: CacheSpec = None,
    options: Options = None,
    out: Sequence[str | os.PathLike] | str | os.PathLike = (),
    plot: str | os.PathLike | None = None,
    progress: bool = False,
    device: str | None = None,
    executor: ComponentSpec = "serial",
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    plugins: "Plugins | None" = None,
) -> dict[str, Any]:
    """Rank correlation of each proxy, and of each combiner over all the proxies, with the benchmark's test
    accuracy on a random sample (``sample=0``: the whole space). ``cells`` names a subset of the space
    (``Space.subsets``) to draw from instead of the whole space. Returns the record ``out=FILE.json`` writes;
    ``out=FILE.csv`` writes the table of measures."""
    import numpy as np

    from nasx.correlation import correlate as measure
    from nasx.progress import ProgressBar

    plugins = _plugins(plugins)
    built_space, built_proxies, others = components(
        plugins, space, dataset, proxies, {"combiner": _as_specs(combiners)}, options)
    built_combiners = others["combiner"]
    if built_combiners and len(built_proxies) < 2:
        raise NasxError("combining needs at least two --proxy")
    outputs = [out] if isinstance(out, (str, os.PathLike)) else list(out)
    for path in outputs:  # checked before any scoring, so a typo costs nothing
        if Path(path).suffix not in CORRELATE_OUTPUT_SUFFIXES:
            raise NasxError(f"--out {path}: use a .json or .csv file name")
    _check_int("--sample", sample)
    _check_int("--seed", seed)
    _check_int("--bootstrap", bootstrap)
    if bootstrap < 0:
        raise NasxError(f"--bootstrap must be 0 or more, got {bootstrap}")
    if sample < 0:
        raise NasxError(f"--sample must be 0 (the whole space) or more, got {sample}")

    keep = subset_test(built_space, cells)

    if not built_space.benchmarked:
        raise NasxError(f"space '{built_space.name}' has no ground truth: no benchmark of its trained networks exists")
    oracle = _oracle(built_space, data_dir)
    if oracle is None:
        raise NasxError(f"no ground truth for space '{built_space.name}' on {built_space.dataset}: "
                        "set --data-dir or NASX_DATA")
    chosen = correlation_sample(built_space, sample, seed, oracle, keep)
    if not chosen and cells is not None:
        raise NasxError(f"subset '{cells}' of space '{built_space.name}' has no architecture with ground truth")
    accuracy = np.array([oracle.test_accuracy(genotype) for _, genotype in chosen])
    # the measures assume higher is better: ground truth such as a loss is turned round for them
    oriented = accuracy if oracle.higher_is_better else -accuracy
    scores = np.empty((len(chosen), len(built_proxies)))
    seconds = np.empty_like(scores)
    computed = 0
    with _Execution(plugins, device, executor, workers, threads, scheduler) as execution:
        scorer = evaluator(built_space, built_proxies, images, init, init_seed, cache, execution.device,
                           execution.executor)
        chunk = max(64, 16 * execution.executor.capacity)
        try:
            with ProgressBar("scoring", len(chosen), enabled=progress, eta=True) as bar:
                for first in range(0, len(chosen), chunk):
                    part = chosen[first:first + chunk]
                    for row, evaluation in enumerate(scorer.evaluate_many([g for _, g in part]), start=first):
                        scores[row] = [evaluation.scores[p.name] for p in built_proxies]
                        seconds[row] = [evaluation.seconds[p.name] for p in built_proxies]
                        computed += not all(evaluation.cached.values())
                    bar.update(first + len(part), f"{first + len(part)}/{len(chosen)}")
        finally:
            scorer.close()
        executor_description = execution.executor.describe()

    directions = [p.higher_is_better for p in built_proxies]
    columns: list[tuple[str, Any, str]] = []
    for column, proxy in enumerate(built_proxies):
        sign = 1.0 if proxy.higher_is_better else -1.0
        columns.append((proxy.name, sign * scores[:, column], "higher" if proxy.higher_is_better else "lower"))
    mix = "+".join(p.name for p in built_proxies)
    for combiner in built_combiners:
        columns.append((f"{combiner.name}({mix})", combiner.combine(scores, directions), "higher"))

    results = []
    for name, values, direction in columns:
        found = measure(name, values, oriented, resamples=bootstrap, seed=seed)
        entry = found.as_dict()
        entry["direction"] = direction
        entry["non_finite_archs"] = [chosen[i][0] for i in found.non_finite]
        results.append(entry)
    for column, entry in enumerate(results[: len(built_proxies)]):
        entry["median_seconds"] = float(np.median(seconds[:, column])) if len(chosen) else None

    record = {
        "space": built_space.name,
        "dataset": built_space.dataset,
        "sample": len(chosen),
        "cells": cells or "all",
        "seed": seed,
        "computed": computed,
        "bootstrap": bootstrap,
        "ground_truth": oracle.source,
        "ground_truth_higher_is_better": oracle.higher_is_better,
        "ground_truth_metric": oracle.metric,
        "input": scorer.batch.identity if scorer.batch is not None else None,
        "init": {"scheme": init, "seed": init_seed},
        "device": scorer.device,
        "executor": executor_description,
        "options": {c.name: c.options for c in [built_space, *built_proxies, *built_combiners] if c.options},
        "results": results,
        "architectures": [
            {"arch": label, "test_accuracy": float(acc),
             **{p.name: float(scores[row, col]) for col, p in enumerate(built_proxies)},
             **{name: float(values[row]) for name, values, _ in columns[len(built_proxies):]}}
            for row, (label, acc) in enumerate(zip((s[0] for s in chosen), accuracy))
        ],
    }
    for path in outputs:
        write_correlation(record, path)
    if plot is not None:
        from nasx.plotting import plot_correlation

        plot_correlation(record, os.fspath(plot))
    return record


def write_correlation(record: dict[str, Any], path: str | os.PathLike) -> Path:
    """``.json``: the whole record (strict JSON); ``.csv``: the table of measures."""
    from nasx.correlation import MEASURES
    from nasx.grid import write_table

    path = Path(path)
    if path.suffix == ".json":
        return jsonio.write(path, record)
    fields_ = ["name", "direction", "count", "non_finite", *MEASURES,
               *(f"{m}_{end}" for m in MEASURES for end in ("low", "high")), "median_seconds"]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NasxError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    return write_table(path, record["results"], fields_)


# ---------------------------------------------------------------------------------------------------------------
# nasx.build, nasx.export, nasx.load_export

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


def _export_space(plugins: "Plugins", space: ComponentSpec, dataset: str | None, options: Options) -> Space:
    builder = ComponentBuilder(plugins, options)
    resolved = builder.resolve("space", space)
    builder.check()
    return _space_instance(builder, resolved, dataset)


def _trainable_network(built_space: Space, genotype: nx.DiGraph, init: str | None, init_seed: int):
    """The space's network for training, with reproducible initial weights (none drawn when ``init`` is None)."""
    from nasx.evaluator import INIT_SCHEMES
    from nasx.torch_utils import initialise

    if init is not None and init not in INIT_SCHEMES:
        raise NasxError(f"unknown initialisation {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
    _check_int("--init-seed", init_seed)
    try:
        network = built_space.build_for_training(genotype)
    except NotImplementedError as reason:
        raise NasxError(f"space '{built_space.name}' builds no networks: {reason}") from None
    if init is not None:
        initialise(network, init, init_seed)
    return network


def build(
    arch: str,
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    options: Options = None,
    init: str = "pytorch",
    init_seed: int = 0,
    plugins: "Plugins | None" = None,
):
    """The untrained torch network of an architecture string: the network a practitioner trains (the space's
    ``build_for_training``, e.g. DARTS's 20-cell network for ``darts``), with initial weights drawn reproducibly
    (``init="pytorch"``: each layer's own initialisation; ``"kaiming"``: as for the proxies) from ``init_seed``.
    ``options`` are the space's (``{"channels": 16}``). This is what ``export`` writes and its ``constructor``
    calls."""
    built_space = _export_space(_plugins(plugins), space, dataset, options)
    return _trainable_network(built_space, built_space.decode(arch), init, init_seed)


def export(
    arch: str,
    space: ComponentSpec = DEFAULT_SPACE,
    dataset: str | None = None,
    out: str | os.PathLike = "model.pt",
    options: Options = None,
    init: str = "pytorch",
    init_seed: int = 0,
    plugins: "Plugins | None" = None,
) -> ExportResult:
    """Write the untrained network of ``arch`` (as ``build`` gives it) to ``out`` with what rebuilds it, so that it
    can be trained elsewhere.

    The file is ``torch.save`` of a dict (it loads with ``torch.load(out, weights_only=True)``): ``format``
    ("nasx-export"), ``format_version``, ``nasx_version``, ``space``, ``space_version``, ``dataset``, ``arch`` (the
    canonical string), ``options`` (all of the space's), ``init``, ``input_shape``, ``num_classes``, ``params``,
    ``constructor`` (a Python call of ``nasx.build`` that rebuilds the same network with the same initial weights)
    and ``state_dict``. ``load_export(out)`` gives the network back. A state dict is written, not TorchScript:
    the NATS-Bench networks cannot be scripted, and a traced network fixes BatchNorm's training or evaluation
    mode, so it could not be trained."""
    import torch

    from nasx import __version__

    plugins = _plugins(plugins)
    built_space = _export_space(plugins, space, dataset, options)
    genotype = built_space.decode(arch)  # checked before anything is built
    network = _trainable_network(built_space, genotype, init, init_seed)
    canonical = built_space.encode(genotype)
    space_options = dict(built_space.options)
    constructor = (f"nasx.build({canonical!r}, space={built_space.name!r}, dataset={built_space.dataset!r}, "
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
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, path)
    except OSError as exc:
        raise NasxError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    return ExportResult(path, built_space.name, built_space.dataset, canonical, space_options,
                        payload["init"], params, constructor)


def load_export(path: str | os.PathLike, plugins: "Plugins | None" = None):
    """The network of a file written by ``export``, with its weights (rebuilt by the installed space plugin)."""
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
    built_space = _export_space(_plugins(plugins), payload["space"], payload["dataset"], payload["options"])
    network = _trainable_network(built_space, built_space.decode(payload["arch"]), None, 0)
    try:
        network.load_state_dict(payload["state_dict"])
    except RuntimeError:
        raise NasxError(f"the weights in {os.fspath(path)!r} do not fit the network that space '{built_space.name}' "
                        f"builds now (space version {payload.get('space_version')} in the file, "
                        f"{built_space.version} now)") from None
    return network


# ---------------------------------------------------------------------------------------------------------------
# nasx.experiment


@dataclass
class ExperimentResult:
    """Every run of a grid (this call's and, with ``resume``, those recorded before) and the summary per cell."""

    runs: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    written: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] != "ok"]

    def to_dict(self) -> dict[str, Any]:
        return jsonio.strict({"runs": self.runs, "summary": self.summary})


def experiment(
    grid: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    space: str | None = None,
    datasets: Sequence[str] | str = (),
    searches: Sequence[str] | str = (),
    proxies: Any = (),
    combiner: str = DEFAULT_COMBINER,
    seeds: int | Sequence[int] | None = None,
    max_evals: Any = (),
    max_time: Any = (),
    max_wall: Any = (),
    constraints: Any = (),
    data_dir: str | os.PathLike | None = None,
    images: str | os.PathLike | Mapping[str, str] | None = None,
    init: str | None = None,
    init_seed: int | None = None,
    cache: CacheSpec = None,
    options: Options = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    plot: str | os.PathLike | None = None,
    progress: bool = False,
    on_failure=None,
    device: str | None = None,
    executor: ComponentSpec = "serial",
    workers: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    plugins: "Plugins | None" = None,
) -> ExperimentResult:
    """Run every combination of searches x proxy sets x datasets x constraints x budgets x seeds with one shared
    score cache (see :mod:`nasx.grid` for the grid's form).

    ``grid`` is a TOML file or a dict; keyword arguments replace its values: ``searches`` with ``proxies`` (proxy
    sets, e.g. ``["naswot,logsynflow,skip"]``) make the grid's searches; ``max_evals``/``max_time``/``max_wall``
    one budget, or several when one of them is a list; ``constraints`` settings such as
    ``"max_flops=100,max_params=0.8"``, ``{}`` or ``"none"``. With ``out``, each finished run is appended to
    ``out/runs.jsonl`` and ``out/runs.csv`` as it finishes, and ``summary.csv`` and ``experiment.json`` are written
    at the end; ``resume=True`` skips the runs recorded there as finished. A run that raises is recorded as failed
    with its error (``on_failure(row)`` is called) and the grid goes on.
    """
    from nasx import grid as grids
    from nasx.progress import ProgressBar

    plugins = _plugins(plugins)
    spec = _merge_grid(grid, space=space, datasets=datasets, searches=searches, proxies=proxies, combiner=combiner,
                       seeds=seeds, max_evals=max_evals, max_time=max_time, max_wall=max_wall,
                       constraints=constraints, images=images, options=options)
    if spec.get("space") and not spec.get("datasets"):
        spec["datasets"] = [plugins.get("space", spec["space"]).dataset_or_default(None)]
    runs = grids.expand(spec)
    for dataset in spec["datasets"]:
        grids.images_for(spec, dataset)  # a bad path table fails before any work
    init = init if init is not None else spec.get("init", "kaiming")
    init_seed = init_seed if init_seed is not None else spec.get("init_seed", 0)
    # Grid-wide options go to the runs whose components have them; each must concern at least one run.
    grid_options = list(spec.get("options", []))
    everything: dict[str, dict[str, Any]] = {}
    for entry in runs:
        entry["components"] = option_table((
            plugins.get("space", spec["space"]), *(plugins.get("proxy", p) for p in entry["proxies"]),
            plugins.get("combiner", entry["combiner"]), plugins.get("searcher", entry["search"])))
        for name, defaults in entry["components"].items():
            everything.setdefault(name, {}).update(defaults)
    check_all_used(parse_assignments(grid_options), everything)
    from nasx.options import applicable

    for entry in runs:
        entry["run_options"] = (*applicable(grid_options, entry["components"]), *entry["options"])
        entry["images"] = grids.images_for(spec, entry["dataset"])
        entry["run_key"] = grids.run_key({
            "space": spec["space"], "init": init, "init_seed": init_seed,
            **{k: entry[k] for k in ("dataset", "label", "search", "proxies", "combiner", "run_options",
                                     "constraints", "budget", "seed", "images")}})

    log = grids.RunLog(out, resume) if out is not None else None
    done = log.done() if log is not None else set()
    fresh: list[dict[str, Any]] = []
    # one executor for the whole grid: its workers start once
    with _Execution(plugins, device, executor, workers, threads, scheduler) as execution, \
            ProgressBar("experiment", len(runs), enabled=progress) as bar:
        for number, entry in enumerate(runs, start=1):
            if entry["run_key"] in done:
                continue
            bar.update(number - 1, f"run {number}/{len(runs)}: {entry['dataset']} {entry['label']} "
                                   f"seed {entry['seed']}")
            row = _experiment_run(plugins, spec, entry, data_dir, init, init_seed, cache, execution)
            fresh.append(row)
            if log is not None:
                log.append(row)
            if row["status"] != "ok" and on_failure is not None:
                on_failure(row)
        bar.update(len(runs))
    keys = [entry["run_key"] for entry in runs]
    rows = log.latest(keys) if log is not None else fresh
    summary = grids.summarise(rows)
    result = ExperimentResult(rows, summary)
    if out is not None:
        directory = Path(out)
        result.written = [
            grids.write_table(directory / "runs.csv", rows, grids.RUN_FIELDS),
            grids.write_table(directory / "summary.csv", summary, grids.SUMMARY_FIELDS),
            jsonio.write(directory / "experiment.json", result.to_dict()),
        ]
    if plot is not None:
        from nasx.plotting import plot_experiment

        plot_experiment(summary, os.fspath(plot))
        result.written.append(Path(plot))
    return result


def _experiment_run(plugins, spec, entry, data_dir, init, init_seed, cache, execution) -> dict[str, Any]:
    """One run of a grid as a row: its result, or its error when it raised."""
    from nasx import grid as grids

    row: dict[str, Any] = {
        "dataset": entry["dataset"], "label": entry["label"], "search": entry["search"],
        "proxies": "+".join(entry["proxies"]), "combiner": entry["combiner"],
        "constraints": grids.describe(entry["constraints"]), "budget": grids.describe(entry["budget"]),
        "seed": entry["seed"], "status": "ok", "arch": None, "index": None, "test_accuracy": None,
        "optimum_accuracy": None, "regret": None, "evaluated": None, "compute_seconds": None, "wall_seconds": None,
        "stop_reason": None, "error": None, "run_key": entry["run_key"],
    }
    try:
        found = run(
            space=spec["space"], dataset=entry["dataset"], proxies=entry["proxies"], combiner=entry["combiner"],
            search=entry["search"], seed=entry["seed"], max_evals=entry["budget"].get("max_evals"),
            max_time=entry["budget"].get("max_time"), max_wall=entry["budget"].get("max_wall"),
            max_flops=entry["constraints"].get("max_flops"), max_params=entry["constraints"].get("max_params"),
            data_dir=data_dir, images=entry["images"], init=init, init_seed=init_seed, cache=cache,
            options=entry["run_options"], device=execution.device, executor=execution.executor, plugins=plugins)
    except Exception as exc:  # one failed run must not lose the grid; KeyboardInterrupt still stops it
        row["status"] = "failed"
        row["error"] = str(exc) if isinstance(exc, NasxError) else f"{type(exc).__name__}: {exc}"
        return row
    row.update({
        "arch": found.arch, "index": found.index, "test_accuracy": found.test_accuracy,
        "optimum_accuracy": found.optimum_accuracy, "regret": found.regret, "evaluated": found.evaluated,
        "compute_seconds": found.compute_seconds, "wall_seconds": found.wall_seconds,
        "stop_reason": found.stop_reason,
    })
    return row


def _merge_grid(grid, *, space, datasets, searches, proxies, combiner, seeds, max_evals, max_time, max_wall,
                constraints, images, options) -> dict[str, Any]:
    """The grid (a TOML file or a dict) with the keyword arguments' values in place of its own."""
    from nasx import grid as grids

    if grid is None:
        spec: dict[str, Any] = {}
    elif isinstance(grid, Mapping):
        spec = dict(grid)
        grids.check_grid_keys(spec)
    else:
        spec = grids.load_grid(grid)
    if space:
        spec["space"] = space
    spec.setdefault("space", DEFAULT_SPACE)
    if grids.as_list(datasets):
        spec["datasets"] = grids.as_list(datasets)
    if seeds is not None:
        spec["seeds"] = seeds
    budgets = grids.command_line_budgets(max_evals, max_time, max_wall)
    if budgets:
        spec["budgets"] = budgets
    if grids.as_list(constraints):
        spec["constraints"] = [grids.parse_setting(c) for c in grids.as_list(constraints)]
    search_names = grids.as_list(searches)
    sets = grids.proxy_sets(proxies)
    if search_names:
        if not sets:
            raise NasxError("--search needs at least one --proxies (e.g. --proxies naswot,logsynflow,skip)")
        spec["searches"] = [
            {"label": f"{name}[{','.join(names)}]" if len(sets) > 1 else name,
             "search": name, "proxies": names, "combiner": combiner}
            for name in search_names for names in sets
        ]
    elif sets:
        raise NasxError("--proxies needs at least one --search")
    if images is not None:
        spec["images"] = dict(images) if isinstance(images, Mapping) else os.fspath(images)
    pairs = option_pairs(options)
    if pairs:
        spec["options"] = [*spec.get("options", []), *pairs]
    return spec
