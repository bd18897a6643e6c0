"""Plugin discovery: entry points of group ``nasx``, one per component, registered with pluggy.

The manager is created on demand (never at import). Each entry point is loaded on its own: one that fails
becomes a warning, never an exception. Environment switches:

- ``NASX_BLOCK_PLUGINS``: comma-separated entry-point names (e.g. ``proxy.naswot``) or component names not to load;
- ``NASX_DISABLE_PLUGIN_AUTOLOAD``: when set to a non-empty value, no entry point is loaded.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pluggy

from nasx import hookspecs
from nasx.errors import PluginError
from nasx.interfaces import BASE_OF_KIND, KINDS, Component
from nasx.names import unknown_name

ENTRY_POINT_GROUP = "nasx"
HOOK_OF_KIND = {
    "space": "nasx_register_spaces",
    "proxy": "nasx_register_proxies",
    "combiner": "nasx_register_combiners",
    "searcher": "nasx_register_searchers",
    "constraint": "nasx_register_constraints",
}
# Components that ship inside the core distribution itself.
BUILTIN_MODULES = ("nasx.constraints",)


@dataclass(frozen=True)
class ComponentInfo:
    kind: str
    name: str
    cls: type[Component]
    plugin: str
    distribution: str
    version: str


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
        self.warnings: list[str] = []
        self._origin: dict[str, tuple[str, str]] = {}
        self._components: dict[str, dict[str, ComponentInfo]] | None = None
        for module_name in BUILTIN_MODULES:
            module = __import__(module_name, fromlist=["_"])
            self.add(module, name=module_name, distribution="nasx")

    def add(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin object (a module or an object with hook implementations)."""
        if not distribution:
            from nasx import __version__

            distribution, version = "nasx", __version__
        elif not version:
            version = _distribution_version(distribution)
        self.pm.register(plugin, name=name)
        self._origin[name] = (distribution, version)
        self._components = None

    def _load_entry_points(self) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            short = ep.name.split(".", 1)[-1]
            if ep.name in self.blocked or short in self.blocked or self.pm.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist else "?"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break nasx
                self.warnings.append(f"plugin {ep.name} ({dist}) failed to load: {type(exc).__name__}: {exc}")
                continue
            self.add(plugin, name=ep.name, distribution=dist, version=ep.dist.version if ep.dist else "?")

    def components(self) -> dict[str, dict[str, ComponentInfo]]:
        """kind -> name -> ComponentInfo, built on first use."""
        if self._components is None:
            if self.autoload:
                self.autoload = False  # load entry points once
                self._load_entry_points()
            self._components = self._collect()
        return self._components

    def _collect(self) -> dict[str, dict[str, ComponentInfo]]:
        found: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            caller = getattr(self.pm.hook, HOOK_OF_KIND[kind])
            for impl in caller.get_hookimpls():
                plugin_name = impl.plugin_name
                distribution, version = self._origin.get(plugin_name, ("?", "?"))
                try:
                    impl.function(register=self._registrar(kind, plugin_name, distribution, version, found))
                except PluginError:
                    raise
                except Exception as exc:
                    self.warnings.append(
                        f"plugin {plugin_name} ({distribution}) failed to register: {type(exc).__name__}: {exc}"
                    )
        return found

    def _registrar(
        self, kind: str, plugin: str, distribution: str, version: str, found: dict[str, dict[str, ComponentInfo]]
    ) -> Callable[[type[Component]], type[Component]]:
        base = BASE_OF_KIND[kind]

        def register(cls: type[Component]) -> type[Component]:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(f"plugin {plugin} registered {cls!r} as a {kind}, but it is not a {base.__name__}")
            if not cls.name:
                raise PluginError(f"plugin {plugin} registered {cls.__name__} without a name")
            if cls.name in self.blocked:
                return cls
            previous = found[kind].get(cls.name)
            if previous is not None and previous.cls is not cls:
                raise PluginError(
                    f"two plugins register the {kind} '{cls.name}': {previous.plugin} ({previous.distribution}) "
                    f"and {plugin} ({distribution}); uninstall one or block it with NASX_BLOCK_PLUGINS"
                )
            found[kind][cls.name] = ComponentInfo(kind, cls.name, cls, plugin, distribution, version)
            return cls

        return register

    def get(self, kind: str, name: str) -> type[Component]:
        """The component class of this kind and name, or a NasxError suggesting close names."""
        table = self.components()[kind]
        if name not in table:
            raise unknown_name(kind, name, table)
        return table[name].cls

    def names(self, kind: str) -> list[str]:
        return sorted(self.components()[kind])

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for _, info in sorted(self.components()[kind].items())]


def _distribution_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"
