"""How well scores rank architectures: the measures of the zero-cost proxy literature, with bootstrap
confidence intervals. numpy and scipy only."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

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
