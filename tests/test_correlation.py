import math

import numpy as np
import pytest
from scipy import stats

from nasx.correlation import MEASURES, correlate, measures


def test_a_perfect_score_gets_perfect_measures():
    accuracy = np.linspace(50, 95, 1000)
    values = dict(zip(MEASURES, measures(accuracy * 3 + 1, accuracy)))
    assert values["kendall"] == pytest.approx(1) and values["spearman"] == pytest.approx(1)
    assert values["kendall_top10"] == pytest.approx(1) and values["top10_top10"] == 100
    # the 64 best by score include every architecture of the top 5 % (50 of them)
    assert values["top64_top5"] == 50


def test_a_reversed_score_gets_reversed_measures():
    accuracy = np.linspace(50, 95, 200)
    values = dict(zip(MEASURES, measures(-accuracy, accuracy)))
    assert values["kendall"] == pytest.approx(-1) and values["top10_top10"] == 0 and values["top64_top5"] == 0


def test_measures_agree_with_scipy_on_noisy_data():
    rng = np.random.default_rng(3)
    accuracy = rng.normal(size=500)
    score = accuracy + rng.normal(size=500)
    values = dict(zip(MEASURES, measures(score, accuracy)))
    assert values["kendall"] == pytest.approx(stats.kendalltau(score, accuracy)[0])
    top = accuracy > np.percentile(accuracy, 90)
    assert values["spearman_top10"] == pytest.approx(stats.spearmanr(score[top], accuracy[top])[0])
    best_score = set(np.argsort(score)[-50:])
    best_accuracy = set(np.argsort(accuracy)[-50:])
    assert values["top10_top10"] == pytest.approx(100 * len(best_score & best_accuracy) / 50)


def test_non_finite_scores_are_left_out_and_reported():
    rng = np.random.default_rng(0)
    accuracy = rng.normal(size=300)
    score = accuracy + 0.5 * rng.normal(size=300)
    dirty = score.copy()
    dirty[[4, 17, 250]] = [math.nan, math.inf, -math.inf]
    result = correlate("x", dirty, accuracy, resamples=0)
    keep = np.isfinite(dirty)
    assert result.non_finite == [4, 17, 250] and result.count == 297
    assert result.values["kendall"] == pytest.approx(stats.kendalltau(score[keep], accuracy[keep])[0])


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    accuracy = rng.normal(size=400)
    score = accuracy + rng.normal(size=400)
    first = correlate("x", score, accuracy, resamples=200, seed=5)
    second = correlate("x", score, accuracy, resamples=200, seed=5)
    assert first.low == second.low
    for measure in ("kendall", "spearman"):
        assert first.low[measure] < first.values[measure] < first.high[measure]
    assert first.high["kendall"] - first.low["kendall"] < 0.2


def test_a_constant_score_has_no_correlation():
    result = correlate("flat", np.ones(50), np.arange(50.0), resamples=10)
    assert all(math.isnan(v) for v in result.values.values())
