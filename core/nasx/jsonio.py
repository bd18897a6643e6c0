"""Strict JSON: every file nasx writes parses with ``json.loads(text, parse_constant=reject)``.

Non-finite floats (NaN, ±inf) become ``null``; results name the scores that were non-finite next to them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from nasx.errors import NasxError


def strict(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, tuples, scalars, numpy scalars) with non-finite floats as None."""
    if isinstance(value, dict):
        return {str(key): strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return strict(value.item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(strict(value), indent=indent, allow_nan=False)


def write(path: str | os.PathLike, value: Any, indent: int | None = 1) -> Path:
    """Write ``value`` as strict JSON; a one-line NasxError when the file cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(value, indent=indent) + "\n")
    except OSError as exc:
        raise NasxError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    return path


def non_finite(scores: dict[str, float]) -> list[str]:
    """Names of the scores that are NaN or infinite (written as null)."""
    return [name for name, value in scores.items() if not math.isfinite(value)]
