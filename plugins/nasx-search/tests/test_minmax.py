"""The minmax combiner: every proxy scaled to [0, 1] over the explored set, then summed."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nasx.testing.contracts import CombinerContract
from nasx_search.combiners import FreeREACombiner, MinMaxCombiner


class TestMinMax(CombinerContract):
    @pytest.fixture
    def combiner(self):
        return MinMaxCombiner()


def test_each_proxy_spans_zero_to_one_by_its_definition():
    scores = np.array([[700.0, 0.0, 3.0], [800.0, 2.0, 1.0], [750.0, 1.0, 2.0]])
    # by hand: (x - min) / (max - min) per column, the third column lower-is-better
    expected = [0.0 + 0.0 + 0.0, 1.0 + 1.0 + 1.0, 0.5 + 0.5 + 0.5]
    assert np.allclose(MinMaxCombiner().combine(scores, [True, True, False]), expected)


def test_a_constant_proxy_adds_nothing_and_a_non_finite_score_is_worst():
    scores = np.array([[5.0, 1.0], [5.0, 3.0], [5.0, math.nan]])
    assert np.allclose(MinMaxCombiner().combine(scores, [True, True]), [0.0, 1.0, -1.0])


finite_columns = arrays(np.float64, st.tuples(st.integers(2, 12), st.integers(1, 4)),
                        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(finite_columns, st.floats(-1e5, 1e5), st.floats(0.01, 100.0))
def test_fitness_ignores_each_proxys_offset_and_scale(scores, offset, scale):
    """Unlike FreeREA's division by the maximum, min-max scaling does not depend on where a proxy's scores sit:
    shifting and stretching one proxy's scores leaves every fitness as it was."""
    column = scores[:, 0]
    spread = np.ptp(column)
    # exact in real numbers; in floats only while the spread is not lost in the offset's rounding (a spread of 1e-27
    # moved by 1.0 becomes 0)
    assume(spread == 0 or spread * scale > 1e-6 * (abs(offset) + scale * np.abs(column).max()))
    directions = [True] * scores.shape[1]
    moved = scores.copy()
    moved[:, 0] = moved[:, 0] * scale + offset
    assert np.allclose(MinMaxCombiner().combine(moved, directions), MinMaxCombiner().combine(scores, directions),
                       atol=1e-6)


def test_freerea_lets_a_proxy_far_from_zero_count_for_little():
    """The reason for minmax: NASWOT-like scores (about 700-830) span a sliver under FreeREA's normalisation,
    so a 0..2 count decides the order alone; under minmax both span [0, 1]."""
    scores = np.array([[830.0, 0.0], [700.0, 2.0]])  # best on the first proxy, worst on the second
    assert FreeREACombiner().combine(scores, [True, True]).argmax() == 1  # the count wins: 700/830 + 1 > 1
    fitness = MinMaxCombiner().combine(scores, [True, True])
    assert fitness[0] == fitness[1] == 1.0  # each is best on one proxy: a tie
