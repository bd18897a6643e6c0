"""Building what a command needs: components with their options, named proxy sets, the executor, the score
cache, the input batch and the evaluator."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, Union

from nasx.errors import NasxError
from nasx.interfaces import BASE_OF_KIND, Component, Proxy, Space
from nasx.options import check_all_used, option_table, options_for, parse_assignments
from nasx.settings import CacheSpec, ComponentSpec, Data, Execution, Inputs

if TYPE_CHECKING:  # pragma: no cover
    from nasx.data import Batch
    from nasx.evaluator import Evaluator, ScoreCache
    from nasx.interfaces import Executor
    from nasx.plugins import Plugins

DEFAULT_COMBINER = "freerea"
#: images in the synthetic input batch (the proxies take the first ``batch_size``)
SYNTHETIC_BATCH_SIZE = 256

Options = Union[Mapping[str, Any], Iterable[str], None]


def plugins_or_default(plugins: "Plugins | None") -> "Plugins":
    from nasx.plugins import Plugins

    return plugins if plugins is not None else Plugins()


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

    def space(self, resolved: type | Component, dataset: str | None) -> Space:
        """The space for ``dataset`` (else its default) from a resolved class, or the instance given."""
        if isinstance(resolved, type):
            return self.build(resolved, dataset=resolved.dataset_or_default(dataset))
        if dataset is not None and dataset != resolved.dataset:
            raise NasxError(f"the space instance is built for {resolved.dataset!r}, not {dataset!r}")
        return resolved  # type: ignore[return-value]


def as_specs(specs: Any) -> list:
    if specs is None:
        return []
    if isinstance(specs, (str, type, Component)):
        return [specs]
    return list(specs)


@dataclass
class ProxyChoice:
    """Proxies as given, with named proxy sets replaced by their members, and the sets' combiner."""

    proxies: list[ComponentSpec]
    combiner: str | None


def expand_proxy_sets(plugins: "Plugins", specs: Sequence[ComponentSpec] | ComponentSpec) -> ProxyChoice:
    """Each name of a proxy set (``az_nas``) replaced by its proxies; the combiner of the set(s) (several sets
    must agree on it). A name that is both a proxy and a set is the proxy."""
    expanded: list[ComponentSpec] = []
    combiners: list[str] = []
    for spec in as_specs(specs):
        if isinstance(spec, str) and not plugins.has("proxy", spec) and plugins.has("proxy-set", spec):
            proxy_set = plugins.get("proxy-set", spec)
            expanded.extend(proxy_set.proxies)
            combiners.append(proxy_set.combiner)
        else:
            expanded.append(spec)
    if len(set(combiners)) > 1:
        raise NasxError(f"the proxy sets given combine with different combiners ({', '.join(sorted(set(combiners)))}); "
                        "choose one with --combiner")
    return ProxyChoice(expanded, combiners[0] if combiners else None)


@dataclass
class Built:
    """The components of one command, built with their options."""

    space: Space
    proxies: list[Proxy]
    others: dict[str, list[Any]]

    def options(self) -> dict[str, dict[str, Any]]:
        """Every component's options that it has, by name (what results record)."""
        everything = [self.space, *self.proxies, *(c for kind in self.others.values() for c in kind)]
        return {c.name: c.options for c in everything if c.options}


def components(
    plugins: "Plugins",
    space: ComponentSpec,
    dataset: str | None,
    proxies: Sequence[ComponentSpec],
    others: Mapping[str, Sequence[ComponentSpec]],
    options: Options,
    data: Data | None = None,
) -> Built:
    """The space (for ``dataset``, else its default; built for ``data``, the user's own images, when given), the
    proxies, and components of other kinds by kind."""
    proxies = as_specs(proxies)
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
    return Built(
        _space_for(builder, space_resolved, dataset, data),
        [builder.build(p) for p in proxy_resolved],
        {kind: [builder.build(r) for r in resolved] for kind, resolved in other_resolved.items()},
    )


def space_only(plugins: "Plugins", space: ComponentSpec, dataset: str | None, options: Options,
               data: Data | None = None) -> Space:
    """The space alone, with its options (every option must be one of the space's), built for ``data`` when
    given."""
    builder = ComponentBuilder(plugins, options)
    resolved = builder.resolve("space", space)
    builder.check()
    return _space_for(builder, resolved, dataset, data)


def _space_for(builder: ComponentBuilder, resolved: type | Component, dataset: str | None,
               data: Data | None) -> Space:
    """The space for ``dataset``, or adapted to the user's own data (which names the task: no dataset then)."""
    if data is None:
        return builder.space(resolved, dataset)
    return data.adapt(builder.space(resolved, None), dataset)


def open_cache(cache: CacheSpec) -> "ScoreCache":
    """The score cache: a path, None (or True) for the default cache, False for none (in memory)."""
    from nasx.evaluator import ScoreCache, default_cache_path

    if cache is False:
        return ScoreCache(None)
    if cache is None or cache is True:
        return ScoreCache(default_cache_path())
    return ScoreCache(cache)


def input_batch(space: Space, proxies: Sequence[Proxy], images: "str | Batch | None",
                data: Data | None = None) -> "Batch | None":
    """The images the proxies see: a seeded class-balanced draw from the user's own data, a file or folder, a
    ready Batch, or the synthetic batch; None when no proxy needs data."""
    from nasx.data import Batch, load_images, synthetic_batch

    if not any(p.needs_data for p in proxies):
        return None
    if data is not None:
        return own_data_batch(data, proxies)
    if isinstance(images, Batch):
        return images
    own = space.input_batch(images, SYNTHETIC_BATCH_SIZE)  # a space whose networks read no images
    if own is not None:
        return own
    if images is None:
        return synthetic_batch(space.input_shape, space.num_classes, size=SYNTHETIC_BATCH_SIZE)
    return load_images(images, space.dataset)


def own_data_batch(data: Data, proxies: Sequence[Proxy]) -> "Batch":
    """As many images of the user's data as the proxies take (at least the synthetic batch's size, fewer when the
    data has fewer), drawn class-balanced with the data's seed; a proxy that takes more than there are is a
    one-line error."""
    takes = [p.batch_size for p in proxies if p.needs_data]
    batch = data.images.proxy_batch(max([SYNTHETIC_BATCH_SIZE, *takes]), data.seed)
    for proxy in proxies:
        if proxy.needs_data and proxy.batch_size > len(batch):
            raise NasxError(f"proxy '{proxy.name}' takes {proxy.batch_size} images but {os.fspath(data.path)!r} "
                            f"has only {len(batch)} readable ones: set -o {proxy.name}.batch_size={len(batch)} "
                            "or less")
    return batch


def make_evaluator(space: Space, proxies: Sequence[Proxy], inputs: Inputs, device: str = "cpu",
                   executor: "Executor | None" = None, batch_archs: int | str = 1) -> "Evaluator":
    """The evaluator; ``batch_archs``: architectures per fused pass, or ``auto`` (``nasx.fusion``)."""
    from nasx.evaluator import Evaluator
    from nasx.fusion import resolve_batch_archs

    batch = input_batch(space, proxies, inputs.images, inputs.data)
    return Evaluator(space, proxies, batch, open_cache(inputs.cache), init=inputs.init, init_seed=inputs.init_seed,
                     device=device, executor=executor,
                     batch_archs=resolve_batch_archs(batch_archs, space, proxies, batch, device,
                                                     executor.capacity if executor is not None else 1))


#: executor option -> the command-line option that sets it
EXECUTOR_OPTIONS = {"workers": "--workers", "threads": "--threads", "scheduler": "--scheduler"}


def auto_executor(settings: Execution) -> str:
    """What ``--executor auto`` (the default) means: a Dask cluster when a scheduler is named, worker processes
    when workers are asked for; else ``$NASX_EXECUTOR`` when it is set (e.g. ``serial`` on a shared machine, or in
    a test suite of many small searches); else worker processes on a machine of several cores, this process on
    one."""
    from nasx.executors import cores

    if settings.scheduler is not None:
        return "dask"
    if settings.workers is not None:
        return "process"
    chosen = os.environ.get("NASX_EXECUTOR", "").strip()
    if chosen and chosen != "auto":
        return chosen
    return "process" if cores() > 1 else "serial"


def start_workers_early(settings: Execution) -> None:
    """When ``settings`` mean worker processes, start what they fork from before anything else (the plugins
    loading, the benchmark read): worker start-up is then paid while the command starts, not after."""
    name = auto_executor(settings) if settings.executor == "auto" else settings.executor
    if name == "process":
        from nasx.executors import start_forkserver

        start_forkserver()


def make_executor(plugins: "Plugins", settings: Execution) -> "Executor":
    """An executor by name (``serial``, ``process``, ``dask``), class or instance, with the worker options that
    were given; an option the executor does not have is an error (``--workers`` needs process or dask)."""
    builder = ComponentBuilder(plugins, None)
    resolved = builder.resolve("executor", auto_executor(settings) if settings.executor == "auto" else
                               settings.executor)
    given = {name: getattr(settings, name) for name in EXECUTOR_OPTIONS if getattr(settings, name) is not None}
    if not isinstance(resolved, type):
        if given:
            raise NasxError(f"{EXECUTOR_OPTIONS[next(iter(given))]} cannot change an executor given as an instance")
        return resolved
    for name in given:
        if name not in resolved.defaults:
            raise NasxError(f"{EXECUTOR_OPTIONS[name]}: the {resolved.name} executor has no {name} "
                            f"(options: {', '.join(sorted(resolved.defaults)) or 'none'})")
    return resolved(**given)


class Running:
    """The device, the executor and the architectures per fused pass of one command; closes an executor it made
    (not one it was given)."""

    def __init__(self, plugins: "Plugins", settings: Execution) -> None:
        from nasx.scoring import resolve_device

        self.device = resolve_device(settings.device)
        self.batch_archs = settings.batch_archs
        self.owned = not isinstance(settings.executor, Component)
        self.executor = make_executor(plugins, settings)
        try:
            self.executor.open()
        except BaseException:
            if self.owned:
                self.executor.close()
            raise

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.owned:
            self.executor.close()
