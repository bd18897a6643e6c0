"""Plugin discovery: entry points of group ``nasx``, one per component.

An entry point is named ``KIND.NAME`` and names the component class (``"proxy.naswot" =
"nasx_proxies.naswot:NASWOT"``); the loader checks that the class is of that kind and has that name. A module that
registers several components at once names itself instead and implements the pluggy hook
:func:`nasx.hookspecs.nasx_register`.

The manager is created on demand (never at import). A plugin cannot break nasx, only itself:

- an entry point that fails to load, a registration hook that raises and a registration that is structurally
  wrong (not a component, no name, option checks its defaults fail, an entry-point name that does not match the
  class) each become a ``PluginFailure`` (in ``failures``, and a warning): that plugin contributes nothing;
- a component name claimed by two different classes becomes a ``NameConflict``: that name alone is disabled,
  and using it raises a NasxError naming every claimant and the ``NASX_BLOCK_PLUGINS`` value that keeps one.

Environment switches:

- ``NASX_BLOCK_PLUGINS``: comma-separated entry-point names (e.g. ``proxy.naswot``) or component names not to load
  (a component name blocks every component of that name); when distributions share an entry-point name, each is
  named ``DISTRIBUTION:ENTRY_POINT``;
- ``NASX_DISABLE_PLUGIN_AUTOLOAD``: when set to a non-empty value, no entry point is loaded.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pluggy

from nasx import hookspecs
from nasx.errors import NasxError, PluginError
from nasx.interfaces import BASE_OF_KIND, KINDS, Component, ProxySet
from nasx.names import unknown_name
from nasx.options import declaration_problem

ENTRY_POINT_GROUP = "nasx"
# A plugin's error is shown in one line of a table; the rest of a long one says little.
MAX_ERROR_LENGTH = 300


@dataclass(frozen=True)
class ComponentInfo:
    kind: str
    name: str
    cls: type[Component]
    plugin: str
    distribution: str
    version: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that contributes nothing: it failed to load or to register. ``kind`` and ``name`` are the
    component's as far as they are known (from an entry-point name such as ``proxy.foo``), else empty."""

    plugin: str
    distribution: str
    version: str
    error: str
    kind: str = ""
    name: str = ""


@dataclass(frozen=True)
class NameConflict:
    """A component name that several plugins claim with different classes; the name is disabled."""

    kind: str
    name: str
    claimants: tuple[ComponentInfo, ...]

    def message(self) -> str:
        described = [_describe_claimant(info, self.claimants) for info in self.claimants]
        listed = ", ".join(described[:-1]) + " and " + described[-1]
        count = {2: "two", 3: "three"}.get(len(described), str(len(described)))
        plugins = list(dict.fromkeys(info.plugin for info in self.claimants))
        if len(plugins) == 1:  # one plugin registered the name twice: only its author can mend it
            return f"{self.kind} '{self.name}' is claimed by {count} classes of one plugin: {listed}; uninstall it"
        return (f"{self.kind} '{self.name}' is claimed by {count} plugins: {listed}; keep the first with "
                f"NASX_BLOCK_PLUGINS={','.join(plugins[1:])}, or uninstall all but one")


def _describe_claimant(info: ComponentInfo, claimants: tuple[ComponentInfo, ...]) -> str:
    """"plugin (distribution)", with the class when one plugin registered the name twice."""
    same_plugin = sum(other.plugin == info.plugin for other in claimants) > 1
    where = f", class {info.cls.__module__}.{info.cls.__qualname__}" if same_plugin else ""
    return f"{info.plugin} ({info.distribution}{where})"


def _kind_and_name(plugin: str) -> tuple[str, str]:
    """The component a plugin name stands for: ``[distribution:]kind.name`` by convention, else ("", "")."""
    entry_point = plugin.rpartition(":")[2]
    prefix, dot, name = entry_point.partition(".")
    if dot and prefix in KINDS:
        return prefix, name
    return "", ""


def component_problem(cls: Any) -> str | None:
    """What makes ``cls`` unfit to be registered as a component, or None."""
    if not (isinstance(cls, type) and issubclass(cls, Component) and cls.kind in BASE_OF_KIND):
        return f"registered {cls!r}, which is not a subclass of a nasx interface ({', '.join(KINDS)})"
    if not cls.name:
        return f"registered {cls.__name__} without a name"
    if issubclass(cls, ProxySet) and not (cls.proxies and cls.combiner):
        return f"proxy set {cls.__name__} names no proxies or no combiner"
    return declaration_problem(cls)


def _builtin_components() -> tuple[type[Component], ...]:
    """The components that ship inside the core distribution itself."""
    from nasx.constraints import MaxFlops, MaxLatency, MaxParams
    from nasx.executors import ProcessExecutor, SerialExecutor

    return (MaxFlops, MaxParams, MaxLatency, SerialExecutor, ProcessExecutor)


class Plugins:
    """Finds, loads and indexes the components of all plugins."""

    def __init__(self, autoload: bool | None = None, blocked: Iterable[str] | None = None) -> None:
        self.pm = pluggy.PluginManager("nasx")
        self.pm.add_hookspecs(hookspecs)
        if autoload is None:
            autoload = not os.environ.get("NASX_DISABLE_PLUGIN_AUTOLOAD")
        if blocked is None:
            blocked = [b.strip() for b in os.environ.get("NASX_BLOCK_PLUGINS", "").split(",") if b.strip()]
        self.autoload = autoload
        self.blocked = set(blocked)
        #: one line per problem, for the CLI to print; ``failures()`` and ``conflicts()`` keep them structured.
        self.warnings: list[str] = []
        self._load_failures: list[PluginFailure] = []
        self._register_failures: list[PluginFailure] = []
        self._origin: dict[str, tuple[str, str]] = {}
        #: component classes named by entry points (or handed in), with their plugin name
        self._classes: list[tuple[type[Component], str]] = []
        self._components: dict[str, dict[str, ComponentInfo]] | None = None
        self._conflicts: dict[str, dict[str, NameConflict]] = {kind: {} for kind in KINDS}
        for cls in _builtin_components():
            self.add(cls, name=f"{cls.kind}.{cls.name}", distribution="nasx")

    def add(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin: a component class, or a module (or object) implementing ``nasx_register``."""
        if not distribution:
            from nasx import __version__

            distribution, version = "nasx", __version__
        elif not version:
            version = _distribution_version(distribution)
        self._origin[name] = (distribution, version)
        if isinstance(plugin, type):
            self._classes.append((plugin, name))
        else:
            if not hasattr(plugin, "nasx_register"):
                raise PluginError(f"{plugin!r} is neither a component class nor a module implementing nasx_register "
                                  "(an entry point names a component class, e.g. 'nasx_proxies.naswot:NASWOT')")
            self.pm.register(plugin, name=name)
        self._components = None

    def _fail(self, into: list[PluginFailure], plugin: str, what: str, exc: BaseException) -> None:
        """Record that ``plugin`` failed to ``what`` (load, register) and warn."""
        origin = self._origin.get(plugin, ("?", "?"))
        # a PluginError is nasx's own verdict on the registration and reads best without its class name
        error = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
        error = " ".join(error.split())  # one line, for the warning and the table
        if len(error) > MAX_ERROR_LENGTH:
            error = error[: MAX_ERROR_LENGTH - 3] + "..."
        into.append(PluginFailure(plugin, *origin, error, *_kind_and_name(plugin)))
        self.warnings.append(f"plugin {plugin} ({origin[0]}) failed to {what}: {error}")

    def _load_entry_points(self) -> None:
        entry_points = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                              key=lambda e: (e.name, e.dist.name if e.dist else ""))
        # Two distributions may use one entry-point name; each then gets a plugin name of its own.
        shared = {name for name, count in Counter(ep.name for ep in entry_points).items() if count > 1}
        for ep in entry_points:
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            plugin_name = f"{dist}:{ep.name}" if ep.name in shared else ep.name
            short = ep.name.split(".", 1)[-1]
            if {ep.name, short, plugin_name} & self.blocked or plugin_name in self._origin:
                continue
            self._origin[plugin_name] = (dist, version)
            try:
                plugin = ep.load()
                if isinstance(plugin, type):
                    problem = _entry_point_problem(ep.name, plugin)
                    if problem:
                        raise PluginError(problem)
                elif self.pm.is_registered(plugin):
                    continue  # another entry point for the same module: it has nothing new to register
                self.add(plugin, name=plugin_name, distribution=dist, version=version)
            except (Exception, SystemExit) as exc:  # a broken plugin must not break nasx
                self._fail(self._load_failures, plugin_name, "load", exc)

    def components(self) -> dict[str, dict[str, ComponentInfo]]:
        """kind -> name -> ComponentInfo of every usable component (conflicting names left out), built on first
        use."""
        if self._components is None:
            if self.autoload:
                self.autoload = False  # load entry points once
                self._load_entry_points()
            self._components = self._collect()
        return self._components

    def conflicts(self) -> list[NameConflict]:
        """The disabled names, each with the plugins that claim it."""
        self.components()
        return [conflict for kind in KINDS for _, conflict in sorted(self._conflicts[kind].items())]

    def failures(self) -> list[PluginFailure]:
        """The plugins that failed to load or to register, in that order."""
        self.components()
        return [*self._load_failures, *self._register_failures]

    def _collect(self) -> dict[str, dict[str, ComponentInfo]]:
        self._register_failures = []
        claims: dict[str, dict[str, list[ComponentInfo]]] = {kind: {} for kind in KINDS}

        def claim(plugin: str, register: Callable[[Callable], None]) -> None:
            registered: list[ComponentInfo] = []
            try:
                register(self._registrar(plugin, registered))
            except Exception as exc:  # the plugin contributes nothing, the others are unaffected
                self._fail(self._register_failures, plugin, "register", exc)
                return
            for info in registered:
                claims[info.kind].setdefault(info.name, []).append(info)

        for cls, plugin in self._classes:
            claim(plugin, lambda register, cls=cls: register(cls))
        for impl in self.pm.hook.nasx_register.get_hookimpls():
            claim(impl.plugin_name, lambda register, impl=impl: impl.function(register=register))
        found: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in KINDS}
        self._conflicts = {kind: {} for kind in KINDS}
        for kind in KINDS:
            for name, infos in claims[kind].items():
                # the same class registered twice (say, re-exported by a second plugin) is no conflict
                distinct: list[ComponentInfo] = []
                for info in infos:
                    if all(info.cls is not kept.cls for kept in distinct):
                        distinct.append(info)
                if len(distinct) == 1:
                    found[kind][name] = distinct[0]
                else:
                    conflict = NameConflict(kind, name, tuple(distinct))
                    self._conflicts[kind][name] = conflict
                    self.warnings.append(f"{conflict.message()}; until then the {kind} '{name}' is disabled")
        return found

    def _registrar(self, plugin: str, registered: list[ComponentInfo]) -> Callable[[type[Component]], type]:
        distribution, version = self._origin.get(plugin, ("?", "?"))

        def register(cls: type[Component]) -> type[Component]:
            problem = component_problem(cls)
            if problem:
                raise PluginError(problem)
            if cls.name not in self.blocked:
                registered.append(ComponentInfo(cls.kind, cls.name, cls, plugin, distribution, version))
            return cls

        return register

    def get(self, kind: str, name: str) -> type[Component]:
        """The component class of this kind and name; a NasxError naming the claimants of a conflicting name, the
        error of a plugin that failed to load it, or close names for an unknown one."""
        table = self.components()[kind]
        if name in self._conflicts[kind]:
            raise NasxError(self._conflicts[kind][name].message())
        if name not in table:
            for failure in self.failures():
                if (failure.kind, failure.name) == (kind, name):
                    raise NasxError(f"{kind} '{name}' is installed ({failure.distribution}) but failed to load: "
                                    f"{failure.error}")
            raise unknown_name(kind, name, table)
        return table[name].cls

    def has(self, kind: str, name: str) -> bool:
        """True when ``name`` is a usable component of this kind."""
        return name in self.components()[kind]

    def names(self, kind: str) -> list[str]:
        return sorted(self.components()[kind])

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for _, info in sorted(self.components()[kind].items())]


def _entry_point_problem(entry_point: str, cls: type) -> str | None:
    """Why a component class does not fit the ``KIND.NAME`` entry point that names it, or None."""
    problem = component_problem(cls)
    if problem:
        return problem
    expected = f"{cls.kind}.{cls.name}"
    if entry_point != expected:
        return (f"entry point {entry_point!r} names {cls.__module__}.{cls.__qualname__}, a {cls.kind} called "
                f"'{cls.name}': name the entry point {expected!r}")
    return None


def _distribution_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"
