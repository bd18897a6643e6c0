"""Component options: given on the command line as ``-o name=value`` or ``-o component.name=value``, and
checked when a component is built.

A component declares what each option accepts in ``option_checks``, option name -> check; a check is any
callable that takes the value and returns None when it is acceptable, else a phrase that completes
"<component>.<option> ...", e.g. "must be a positive integer". Ready-made checks: ``positive``,
``non_negative``, ``finite``, ``probability``, ``in_range(low, high)``, ``one_of(*choices)``::

    class NASWOT(Proxy):
        defaults = {"batch_size": 64, "repeats": 3}
        option_checks = {"batch_size": non_negative, "repeats": positive}

Every option is also checked against the type of its default (an int option takes no 3.5, no "x" and no
True; a float option takes ints), and a float option takes no NaN, nor an infinity unless its default is one.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from nasx.errors import NasxError

#: A check of one option's value: None when the value is acceptable, else a phrase such as "must be positive".
OptionCheck = Callable[[Any], Optional[str]]


@dataclass(frozen=True)
class Check:
    """A condition on a value, and the requirement it states (``{number}`` becomes "integer" for an int value
    and "number" otherwise, so ``positive`` reads right for counts and for temperatures)."""

    holds: Callable[[Any], bool]
    requirement: str

    def __call__(self, value: Any) -> str | None:
        try:
            if self.holds(value):
                return None
        except (TypeError, ValueError):  # a value the condition cannot even compare is not acceptable
            pass
        number = "integer" if isinstance(value, int) and not isinstance(value, bool) else "number"
        return "must be " + self.requirement.format(number=number)

    def __repr__(self) -> str:
        return f"Check({self.requirement.format(number='number')!r})"


# NaN fails every comparison, so none of these accepts it.
positive = Check(lambda value: value > 0, "a positive {number}")
non_negative = Check(lambda value: value >= 0, "a non-negative {number}")
finite = Check(math.isfinite, "a finite number")
probability = Check(lambda value: 0 <= value <= 1, "a probability between 0 and 1")


def in_range(low: float, high: float) -> Check:
    """``low <= value <= high``."""
    return Check(lambda value: low <= value <= high, f"between {low} and {high}")


def one_of(*choices: Any) -> Check:
    """The value is one of ``choices``."""
    return Check(lambda value: value in choices, "one of " + ", ".join(repr(choice) for choice in choices))


def checked_options(component: str, options: Mapping[str, Any], defaults: Mapping[str, Any],
                    checks: Mapping[str, OptionCheck]) -> dict[str, Any]:
    """``options`` (every option of the component, defaults included) checked against the type of each default,
    the NaN and infinity rule of float options and the component's own checks; ints given for float options
    become floats. Raises a one-line NasxError naming ``component.option`` and the value."""
    checked = {}
    for name, value in options.items():
        label = f"{component}.{name}"
        default = defaults.get(name)
        value = _of_default_type(label, value, default)
        problem = None
        if isinstance(default, float) and isinstance(value, float):
            if math.isnan(value):
                problem = "must be a number"
            elif math.isinf(value) and not math.isinf(default):
                problem = finite(value)
        if problem is None and name in checks:
            problem = checks[name](value)
        if problem:
            raise NasxError(f"{label} {problem}, got {value!r}")
        checked[name] = value
    return checked


def _of_default_type(label: str, value: Any, default: Any) -> Any:
    """``value`` if it has the type of ``default`` (normalised: numpy integers become int, ints given for a float
    option become float), else a NasxError."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif isinstance(default, int):
        # bool is an int subclass, but True for a count is a mistake
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        expected = "an integer"
    elif isinstance(default, float):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        expected = "a string"
    else:  # an option without a default of a known type takes anything
        return value
    raise NasxError(f"{label} must be {expected}, got {value!r}")


def declaration_problem(cls: Any) -> str | None:
    """What is wrong with a component class's option declaration (a check of an option it does not have, a
    check that is not callable, a default its own checks refuse), or None."""
    checks = getattr(cls, "option_checks", {})
    for name, check in checks.items():
        if name not in cls.defaults:
            return f"{cls.__name__} checks option {name!r}, which is not in its defaults"
        if not callable(check):
            return f"{cls.__name__}'s check of option {name!r} is not callable: {check!r}"
    try:
        checked_options(cls.name, cls.defaults, cls.defaults, checks)
    except NasxError as exc:
        return f"{cls.__name__}'s default is refused by its own checks: {exc}"
    return None


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
    except ValueError:
        raise NasxError(f"option {label} expects {_TYPE_WORDS[type(default)]}, got {value!r}") from None
    return value


#: how messages name the type of an option's default
_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number"}


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
