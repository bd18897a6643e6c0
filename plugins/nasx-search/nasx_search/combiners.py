"""Combiners: merge several proxies' scores into one fitness, respecting each proxy's direction.

A non-finite score (NaN, +-inf) is the worst value of its proxy, and is left out when normalising, so it never
changes the fitness of other candidates.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nasx.interfaces import Combiner


def oriented(scores: np.ndarray, higher_is_better: Sequence[bool]) -> np.ndarray:
    """Scores turned so that higher is better in every column."""
    signs = np.where(np.asarray(higher_is_better, dtype=bool), 1.0, -1.0)
    return np.asarray(scores, dtype=float) * signs


def column_sum(scores, higher_is_better, transform, worst: float) -> np.ndarray:
    """Sum over proxies of ``transform`` applied to each proxy's finite (oriented) scores; a non-finite score
    gets ``worst``, which must lie below every value ``transform`` can give."""
    values = oriented(scores, higher_is_better)
    fitness = np.zeros(values.shape[0])
    for column in values.T:
        finite = np.isfinite(column)
        part = np.full_like(column, worst)
        if finite.any():
            part[finite] = transform(column[finite])
        fitness += part
    return fitness


def _max_normalised(column: np.ndarray) -> np.ndarray:
    scale = np.max(np.abs(column))
    return column / scale if scale > 0 else np.zeros_like(column)


def _min_max_normalised(column: np.ndarray) -> np.ndarray:
    low, high = np.min(column), np.max(column)
    return (column - low) / (high - low) if high > low else np.zeros_like(column)


class FreeREACombiner(Combiner):
    name = "freerea"
    summary = "FreeREA: sum over proxies of score / max |score| over the explored set"

    def combine(self, scores, higher_is_better):
        return column_sum(scores, higher_is_better, _max_normalised, worst=-1.0)


class RankCombiner(Combiner):
    name = "rank"
    summary = "sum over proxies of the rank of each score (ties share the mean rank)"

    def combine(self, scores, higher_is_better):
        from scipy.stats import rankdata  # here: scipy.stats takes half a second to import

        return column_sum(scores, higher_is_better, rankdata, worst=0.0)  # ranks start at 1


class LogRankCombiner(Combiner):
    name = "logrank"
    summary = "sum over proxies of log(rank of each score): a proxy's top ranks weigh less than a plain rank sum"

    def combine(self, scores, higher_is_better):
        from scipy.stats import rankdata

        return column_sum(scores, higher_is_better, lambda c: np.log(rankdata(c)), worst=-1.0)  # log 1 = 0


class MinMaxCombiner(Combiner):
    """Each proxy scaled to [0, 1] between its worst and best score in the explored set, then summed.

    FreeREA divides by the largest score, which keeps a proxy whose scores all lie far from zero (NASWOT's
    log-determinants span about 700-830) inside a sliver near 1 while a proxy that starts at zero (the skip count)
    spans the whole unit: the sum is then decided by the skip count alone. Scaling between the explored minimum and
    maximum gives every proxy the same span, whatever its offset (docs/results.md, "The best network under a
    budget")."""

    name = "minmax"
    summary = "sum over proxies of (score - min) / (max - min) over the explored set: every proxy spans [0, 1]"

    def combine(self, scores, higher_is_better):
        return column_sum(scores, higher_is_better, _min_max_normalised, worst=-1.0)
