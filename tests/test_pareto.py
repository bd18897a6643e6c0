"""Pareto fronts, non-dominated sorting, crowding distance and hypervolume (nasx.pareto) against brute force."""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasx.errors import NasxError
from nasx.pareto import (crowding_distance, dominates, hypervolume, non_dominated, non_dominated_sort,
                         pareto_order)

# small integer grids: many ties and duplicates, the hard cases of dominance
coordinate = st.integers(min_value=0, max_value=6)
points_2d = st.lists(st.tuples(coordinate, coordinate), max_size=25)
points_3d = st.lists(st.tuples(coordinate, coordinate, coordinate), max_size=12)
points_any = st.integers(min_value=1, max_value=4).flatmap(
    lambda d: st.lists(st.tuples(*[coordinate] * d), max_size=20))


def brute_front(points):
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


@given(points_any)
def test_front_is_non_dominated_and_complete(points):
    front = non_dominated(points)
    assert front == brute_front(points)
    for i in front:  # non-dominated: no point of the set dominates a member
        assert not any(dominates(q, points[i]) for q in points)
    for j in set(range(len(points))) - set(front):  # complete: every other point is dominated by a member
        assert any(dominates(points[i], points[j]) for i in front)


@given(points_any)
def test_non_dominated_sort_peels_fronts(points):
    fronts = non_dominated_sort(points)
    assert sorted(i for front in fronts for i in front) == list(range(len(points)))
    remaining = list(range(len(points)))
    for front in fronts:
        expected = [remaining[i] for i in brute_front([points[r] for r in remaining])]
        assert front == expected
        remaining = [r for r in remaining if r not in front]


def brute_volume(points, reference):
    """Unit cells of the integer grid that some point dominates (the point is at or beyond the cell's far
    corner)."""
    if not points:
        return 0
    top = [max(p[d] for p in points) for d in range(len(reference))]
    cells = itertools.product(*(range(reference[d], max(top[d], reference[d])) for d in range(len(reference))))
    return sum(1 for cell in cells if any(all(p[d] >= cell[d] + 1 for d in range(len(cell))) for p in points))


@given(points_2d, st.tuples(st.integers(-2, 2), st.integers(-2, 2)))
def test_hypervolume_2d_counts_the_dominated_cells(points, reference):
    assert hypervolume(points, reference) == brute_volume(points, reference)


@settings(max_examples=60)
@given(points_3d, st.tuples(st.integers(-1, 1), st.integers(-1, 1), st.integers(-1, 1)))
def test_hypervolume_3d_counts_the_dominated_cells(points, reference):
    assert hypervolume(points, reference) == brute_volume(points, reference)


@given(points_2d)
def test_hypervolume_of_the_front_is_that_of_the_set(points):
    front = [points[i] for i in non_dominated(points)]
    assert hypervolume(front, (0, 0)) == hypervolume(points, (0, 0))


def test_hypervolume_of_a_hand_computed_staircase():
    # (3, 1) and (1, 3) above (0, 0): two 3x1 strips overlapping in a unit square
    assert hypervolume([(3, 1), (1, 3)], (0, 0)) == 5
    assert hypervolume([(1, 1, 1)], (0, 0, 0)) == 1
    assert hypervolume([(2, 1, 1), (1, 2, 1), (1, 1, 2)], (0, 0, 0)) == 4  # unit cube + three unit bumps


def test_crowding_distance_by_hand():
    # one front in 2-D: extremes infinite; (2, 3): gaps (4 - 1) / 4 + (4 - 1) / 4 ... by hand below
    points = [(1, 4), (2, 3), (4, 1), (3, 2), (0, 5)]
    distance = crowding_distance(points)
    # x: sorted 0,1,2,3,4 (range 4); y: sorted 1,2,3,4,5 (range 4)
    assert distance[4] == math.inf and distance[2] == math.inf
    assert distance[0] == pytest.approx((2 - 0) / 4 + (5 - 3) / 4)
    assert distance[1] == pytest.approx((3 - 1) / 4 + (4 - 2) / 4)
    assert distance[3] == pytest.approx((4 - 2) / 4 + (3 - 1) / 4)


def test_non_dominated_sort_and_order_by_hand():
    points = [(1, 1), (3, 3), (2, 2), (3, 1), (1, 3), (2, 2)]
    # front 1: (3, 3); front 2: the two (2, 2), (3, 1), (1, 3); front 3: (1, 1)
    assert non_dominated_sort(points) == [[1], [2, 3, 4, 5], [0]]
    order = pareto_order(points)
    assert order[0] == 1 and order[-1] == 0
    # in front 2, the extremes (3, 1) and (1, 3) come before the crowded pair of (2, 2)
    assert set(order[1:3]) == {3, 4} and set(order[3:5]) == {2, 5}


def test_one_objective_orders_by_value():
    values = [(2.0,), (5.0,), (1.0,), (4.0,)]
    assert pareto_order(values) == [1, 3, 0, 2]


def test_nan_is_refused_and_minus_infinity_is_worst():
    with pytest.raises(NasxError, match="NaN"):
        non_dominated([(1.0, math.nan)])
    assert non_dominated([(-math.inf, 1.0), (0.0, 1.0)]) == [1]


def test_hypervolume_checks_dimensions():
    with pytest.raises(NasxError, match="2 or 3"):
        hypervolume([(1, 1, 1, 1)], (0, 0, 0, 0))
    with pytest.raises(NasxError, match="reference"):
        hypervolume([(1, 1)], (0, 0, 0))
    assert hypervolume([], (0, 0)) == 0.0
