"""How well scores rank architectures: the measures of the zero-cost proxy literature, with bootstrap
confidence intervals. numpy and scipy only."""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

#: measure name -> one-line meaning (the order of the report's columns)
MEASURES = {
    "kendall": "Kendall tau with the accuracy, all architectures",
    "spearman": "Spearman rho with the accuracy, all architectures",
    "kendall_top10": "Kendall tau within the top 10 % by accuracy",
    "spearman_top10": "Spearman rho within the top 10 % by accuracy",
    "top10_top10": "% of the top 10 % by score that are in the top 10 % by accuracy",
    "top64_top5": "how many of the 64 best by score are in the top 5 % by accuracy",
}


def measures(score: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """The MEASURES of finite (score, accuracy) pairs, in order; higher score must mean better."""
    score, accuracy = np.asarray(score, dtype=float), np.asarray(accuracy, dtype=float)
    top_accuracy = accuracy > np.percentile(accuracy, 90)
    top_score = score > np.percentile(score, 90)
    values = [
        stats.kendalltau(score, accuracy)[0],
        stats.spearmanr(score, accuracy)[0],
        stats.kendalltau(score[top_accuracy], accuracy[top_accuracy])[0] if top_accuracy.sum() > 1 else np.nan,
        stats.spearmanr(score[top_accuracy], accuracy[top_accuracy])[0] if top_accuracy.sum() > 1 else np.nan,
        100.0 * np.sum(top_accuracy & top_score) / np.sum(top_score) if top_score.any() else np.nan,
        np.nan,
    ]
    if len(score) > 64:
        best_64 = np.argsort(-score, kind="stable")[:64]
        values[5] = float(np.sum(accuracy[best_64] > np.percentile(accuracy, 95)))
    return np.asarray(values, dtype=float)


@dataclass
class Correlation:
    """The measures of one score column, with percentile bootstrap intervals and the non-finite scores."""

    name: str
    values: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    count: int
    non_finite: list[int] = field(default_factory=list)  # positions in the sample

    def as_dict(self) -> dict:
        return {"name": self.name, "count": self.count, "non_finite": len(self.non_finite),
                "non_finite_positions": self.non_finite,
                **{m: self.values[m] for m in MEASURES},
                **{f"{m}_low": self.low[m] for m in MEASURES},
                **{f"{m}_high": self.high[m] for m in MEASURES}}


def correlate(name: str, score, accuracy, resamples: int = 1000, seed: int = 0,
              confidence: float = 0.95) -> Correlation:
    """Measures of ``score`` against ``accuracy`` over the architectures whose score is finite."""
    score, accuracy = np.asarray(score, dtype=float), np.asarray(accuracy, dtype=float)
    finite = np.isfinite(score)
    kept_score, kept_accuracy = score[finite], accuracy[finite]
    names = list(MEASURES)
    if len(kept_score) < 3 or np.ptp(kept_score) == 0:
        nan = {m: float("nan") for m in names}
        return Correlation(name, nan, dict(nan), dict(nan), int(finite.sum()), np.flatnonzero(~finite).tolist())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        point = measures(kept_score, kept_accuracy)
    low = high = np.full(len(names), np.nan)
    if resamples > 0:
        # resamples with constant columns (ties in a top-10 % subset) have no correlation: NaN, not noise
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interval = stats.bootstrap(
                (kept_score, kept_accuracy), measures, paired=True, vectorized=False, n_resamples=resamples,
                confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
            ).confidence_interval
        low, high = np.asarray(interval.low), np.asarray(interval.high)
    return Correlation(
        name,
        dict(zip(names, map(float, point))),
        dict(zip(names, map(float, low))),
        dict(zip(names, map(float, high))),
        int(finite.sum()),
        np.flatnonzero(~finite).tolist(),
    )


def subset_test(space, cells: str | None):
    """None for every architecture, else the membership test of the space's subset named ``cells``."""
    if cells is None:
        return None
    space.check_subset(cells)
    return lambda genotype: space.in_subset(cells, genotype)


def correlation_sample(space, size: int, seed: int, oracle=None, keep=None) -> list[tuple[Any, Any]]:
    """(label, genotype) pairs: the architectures with ground truth when the oracle lists them (labelled by
    their strings), else official indices of an enumerable space, else distinct random genotypes. ``keep``
    (a genotype test) draws from the architectures it accepts only."""
    from nasx.errors import NasxError
    from nasx.interfaces import EnumerableSpace

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


def table_fields() -> list[str]:
    """Columns of the ``.csv`` table of a correlation record."""
    return ["name", "direction", "count", "non_finite", *MEASURES,
            *(f"{m}_{end}" for m in MEASURES for end in ("low", "high")), "median_seconds"]


def write_correlation(record: dict, path: str | os.PathLike) -> Path:
    """``.json``: the whole record (strict JSON); ``.csv``: the table of measures."""
    from nasx import jsonio
    from nasx.grid import write_table

    path = Path(path)
    if path.suffix == ".json":
        return jsonio.write(path, record)
    return write_table(path, record["results"], table_fields())
