"""Component options given on the command line as ``-o name=value`` or ``-o component.name=value``."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from nasx.errors import NasxError


def parse_assignments(pairs: Iterable[str]) -> list[tuple[str | None, str, str]]:
    """Split ``[component.]name=value`` strings into (component or None, name, raw value)."""
    parsed = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise NasxError(f"option {pair!r} is not of the form name=value or component.name=value")
        scope, dot, name = key.rpartition(".")
        parsed.append((scope if dot else None, name, value))
    return parsed


def coerce(value: str, default: Any, label: str) -> Any:
    """Convert a raw string to the type of the option's default."""
    try:
        if isinstance(default, bool):
            lowered = value.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, (list, tuple)):
            return type(default)(float(v) for v in value.split(","))
    except ValueError:
        raise NasxError(f"option {label} expects a {type(default).__name__}, got {value!r}") from None
    return value


def option_table(classes: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Component name -> its options' defaults; components of different kinds that share a name (the
    ``freerea`` searcher and combiner) share one entry, so ``-o freerea.NAME=V`` reaches whichever has NAME."""
    table: dict[str, dict[str, Any]] = {}
    for cls in classes:
        table.setdefault(cls.name, {}).update(cls.defaults)
    return table


def options_for(
    component_name: str, defaults: Mapping[str, Any], assignments: list[tuple[str | None, str, str]]
) -> dict[str, Any]:
    """The options of one component: the assignments (scoped to its name, or unscoped) of options it has.
    Unknown names are reported by ``check_all_used``."""
    chosen: dict[str, Any] = {}
    for scope, name, value in assignments:
        if (scope is None or scope == component_name) and name in defaults:
            chosen[name] = coerce(value, defaults[name], f"{component_name}.{name}")
    return chosen


def check_all_used(
    assignments: list[tuple[str | None, str, str]], components: Mapping[str, Mapping[str, Any]]
) -> None:
    """Every ``-o`` must name an option of some selected component, so typos are reported."""
    for scope, name, _ in assignments:
        if scope is not None:
            if scope not in components:
                raise NasxError(f"-o {scope}.{name}: '{scope}' is not a component of this run")
            if name not in components[scope]:
                known = ", ".join(sorted(components[scope])) or "none"
                raise NasxError(f"'{scope}' has no option {name!r} (options: {known})")
        elif not any(name in defaults for defaults in components.values()):
            raise NasxError(f"-o {name}: no component of this run has an option {name!r}")


def applicable(pairs: Iterable[str], components: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The ``[component.]name=value`` strings that concern these components (a grid-wide option may concern
    only some runs)."""

    def concerns(scope: str | None, name: str) -> bool:
        if scope is not None:
            return scope in components
        return any(name in defaults for defaults in components.values())

    pairs = list(pairs)
    return tuple(pair for pair, (scope, name, _) in zip(pairs, parse_assignments(pairs)) if concerns(scope, name))
