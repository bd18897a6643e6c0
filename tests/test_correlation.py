import math

import numpy as np
import pytest

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


def kendall_by_pairs(x, y) -> float:
    """Kendall's tau-b from the O(n^2) count of concordant and discordant pairs (ties in x or y count in neither,
    and shrink the normalisation), the textbook definition."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    upper = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    return float(np.sum(dx * dy) / np.sqrt(np.sum(dx != 0) * np.sum(dy != 0)))


def spearman_by_ranks(x, y) -> float:
    """Pearson's correlation of the ranks, each rank counted by comparisons (ties get their mean rank)."""
    def ranks(v):
        v = np.asarray(v, dtype=float)
        below = (v[None, :] < v[:, None]).sum(axis=1)
        equal = (v[None, :] == v[:, None]).sum(axis=1)
        return below + (equal + 1) / 2

    rx, ry = ranks(x) - ranks(x).mean(), ranks(y) - ranks(y).mean()
    return float((rx * ry).sum() / np.sqrt((rx**2).sum() * (ry**2).sum()))


def test_kendall_and_spearman_of_a_small_example_by_hand():
    # pairs of (1, 2, 3, 4) against (1, 3, 2, 4): 5 concordant, 1 discordant (2-3): tau = 4/6; rank differences
    # 0, 1, 1, 0: rho = 1 - 6 * 2 / (4 * 15) = 0.8; the top 10 % of 4 is one architecture: no correlation there
    values = dict(zip(MEASURES, measures(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0]))))
    assert values["kendall"] == pytest.approx(2 / 3) and values["spearman"] == pytest.approx(0.8)
    assert math.isnan(values["kendall_top10"]) and values["top10_top10"] == 100.0  # the best is the best
    # a tie in the score: the tied pair is neither concordant nor discordant, the other 5 agree: tau-b =
    # 5 / sqrt((6 - 1) * 6) (one pair tied in the score, none in the accuracy)
    tied = dict(zip(MEASURES, measures(np.array([1.0, 2.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0]))))
    assert tied["kendall"] == pytest.approx(5 / math.sqrt(30))


def test_measures_agree_with_their_definitions_on_noisy_data():
    rng = np.random.default_rng(3)
    accuracy = rng.normal(size=500)
    score = np.round(accuracy + rng.normal(size=500), 1)  # rounded: ties in the score, as counts and proxies give
    values = dict(zip(MEASURES, measures(score, accuracy)))
    assert values["kendall"] == pytest.approx(kendall_by_pairs(score, accuracy), rel=1e-12)
    assert values["spearman"] == pytest.approx(spearman_by_ranks(score, accuracy), rel=1e-12)
    top = accuracy > np.percentile(accuracy, 90)
    assert top.sum() == 50
    assert values["kendall_top10"] == pytest.approx(kendall_by_pairs(score[top], accuracy[top]), rel=1e-12)
    assert values["spearman_top10"] == pytest.approx(spearman_by_ranks(score[top], accuracy[top]), rel=1e-12)
    # the top-k measures on the unrounded score (no ties, so "the top 10 %" is one set): by sorting the indices
    rng = np.random.default_rng(3)
    accuracy = rng.normal(size=500)
    unrounded = accuracy + rng.normal(size=500)
    by_score = sorted(range(500), key=lambda i: -unrounded[i])
    by_accuracy = sorted(range(500), key=lambda i: -accuracy[i])
    smooth = dict(zip(MEASURES, measures(unrounded, accuracy)))
    assert smooth["top10_top10"] == pytest.approx(100 * len(set(by_score[:50]) & set(by_accuracy[:50])) / 50)
    assert smooth["top64_top5"] == len(set(by_score[:64]) & set(by_accuracy[:25]))


def test_non_finite_scores_are_left_out_and_reported():
    rng = np.random.default_rng(0)
    accuracy = rng.normal(size=300)
    score = accuracy + 0.5 * rng.normal(size=300)
    dirty = score.copy()
    dirty[[4, 17, 250]] = [math.nan, math.inf, -math.inf]
    result = correlate("x", dirty, accuracy, resamples=0)
    keep = np.isfinite(dirty)
    assert result.non_finite == [4, 17, 250] and result.count == 297
    assert result.values["kendall"] == pytest.approx(kendall_by_pairs(score[keep], accuracy[keep]), rel=1e-12)


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
