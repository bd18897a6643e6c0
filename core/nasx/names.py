"""Helpful errors for names that are not known."""

from __future__ import annotations

import difflib
from typing import Iterable

from nasx.errors import NasxError


def unknown_name(kind: str, name: str, known: Iterable[str], context: str = "") -> NasxError:
    """An error naming the closest known names, e.g. "unknown proxy 'naswt'; did you mean 'naswot'?"."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        hint = "known: " + (", ".join(known) if known else "none installed")
    return NasxError(f"unknown {kind} {name!r}{context}; {hint}")
