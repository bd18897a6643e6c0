"""Combiners: merge several proxies' scores into one fitness, respecting each proxy's direction.

A non-finite score (NaN, +-inf) is the worst value of its proxy, and is left out when normalising, so it never
changes the fitness of other candidates.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import rankdata

from nasx.interfaces import Combiner
from nasx_search._register import CombinerPlugin


def oriented(scores: np.ndarray, higher_is_better: Sequence[bool]) -> np.ndarray:
    """Scores turned so that higher is better in every column."""
    signs = np.where(np.asarray(higher_is_better, dtype=bool), 1.0, -1.0)
    return np.asarray(scores, dtype=float) * signs


class FreeREACombiner(Combiner):
    name = "freerea"
    summary = "FreeREA: sum over proxies of score / max |score| over the explored set"

    def combine(self, scores, higher_is_better):
        values = oriented(scores, higher_is_better)
        fitness = np.zeros(values.shape[0])
        for column in values.T:
            finite = np.isfinite(column)
            scale = np.max(np.abs(column[finite])) if finite.any() else 0.0
            normalised = np.zeros_like(column)
            if scale > 0:
                normalised[finite] = column[finite] / scale
            normalised[~finite] = -1.0  # the lowest value a normalised score can take
            fitness += normalised
        return fitness


class RankCombiner(Combiner):
    name = "rank"
    summary = "sum over proxies of the rank of each score (ties share the mean rank)"

    def combine(self, scores, higher_is_better):
        values = oriented(scores, higher_is_better)
        fitness = np.zeros(values.shape[0])
        for column in values.T:
            finite = np.isfinite(column)
            ranks = np.zeros_like(column)  # non-finite: rank 0, below every finite score (ranks start at 1)
            ranks[finite] = rankdata(column[finite])
            fitness += ranks
        return fitness


class LogRankCombiner(Combiner):
    name = "logrank"
    summary = "sum over proxies of log(rank of each score): a proxy's top ranks weigh less than a plain rank sum"

    def combine(self, scores, higher_is_better):
        values = oriented(scores, higher_is_better)
        fitness = np.zeros(values.shape[0])
        for column in values.T:
            finite = np.isfinite(column)
            logs = np.full_like(column, -1.0)  # non-finite: below log(1) = 0, the lowest finite rank
            logs[finite] = np.log(rankdata(column[finite]))
            fitness += logs
        return fitness


freerea_plugin = CombinerPlugin(FreeREACombiner)
rank_plugin = CombinerPlugin(RankCombiner)
logrank_plugin = CombinerPlugin(LogRankCombiner)
