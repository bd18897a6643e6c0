"""Pareto fronts and hypervolume, for searches with several objectives. Pure Python and numpy, no torch.

Every function here takes points whose coordinates are all **maximised** (turn a minimised objective round by
negating it first). A point dominates another when it is at least as good in every coordinate and better in one;
equal points do not dominate each other, so both belong to the same front.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from nasx.errors import NasxError


def _array(points: Sequence[Sequence[float]]) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.size == 0:
        return array.reshape(0, 0 if array.ndim < 2 else array.shape[1])
    if array.ndim != 2:
        raise NasxError(f"points must be a list of coordinate tuples, got an array of shape {array.shape}")
    if np.isnan(array).any():
        raise NasxError("a point has a NaN coordinate: Pareto dominance is not defined for it")
    return array


def dominates(first: Sequence[float], second: Sequence[float]) -> bool:
    """True when ``first`` is at least as good as ``second`` in every coordinate and better in one."""
    return all(a >= b for a, b in zip(first, second)) and any(a > b for a, b in zip(first, second))


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices (ascending) of the points that no other point dominates.

    A sweep in decreasing lexicographic order: a point can only be dominated by one that comes before it, and if
    one dominates it so does one of the non-dominated points already kept, so each point is compared with the
    kept ones only (fast for the fronts of whole benchmark spaces)."""
    array = _array(points)
    if len(array) == 0:
        return []
    order = np.lexsort(tuple(-array[:, column] for column in reversed(range(array.shape[1]))))
    kept: list[int] = []
    kept_points = np.empty_like(array)
    for index in order:
        point = array[index]
        earlier = kept_points[: len(kept)]
        if len(kept) and np.any(np.all(earlier >= point, axis=1) & np.any(earlier > point, axis=1)):
            continue
        kept_points[len(kept)] = point
        kept.append(int(index))
    return sorted(kept)


def non_dominated_sort(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Deb et al.'s fast non-dominated sorting (NSGA-II): the first front, then the front of what is left, and so
    on. Each front lists its indices in ascending order."""
    array = _array(points)
    count = len(array)
    if count == 0:
        return []
    at_least = np.all(array[:, None, :] >= array[None, :, :], axis=2)
    better = np.any(array[:, None, :] > array[None, :, :], axis=2)
    dominance = at_least & better  # dominance[i, j]: i dominates j
    dominated_by = dominance.sum(axis=0)  # how many points dominate each point
    fronts: list[list[int]] = []
    current = [i for i in range(count) if dominated_by[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in np.flatnonzero(dominance[i]):
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(int(j))
        current = sorted(following)
    return fronts


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int] | None = None) -> list[float]:
    """NSGA-II's crowding distance of each point of ``front`` (indices into ``points``; all points when None), in
    the front's order: for each coordinate, the points are sorted, the two extremes get infinity and every other
    point the gap between its two neighbours divided by the coordinate's range; the distances add up over the
    coordinates. Sorting is stable, so equal values keep the front's order."""
    array = _array(points)
    members = list(range(len(array))) if front is None else list(front)
    distance = [0.0] * len(members)
    if len(members) <= 2:
        return [math.inf] * len(members)
    for column in range(array.shape[1]):
        values = [array[m, column] for m in members]
        order = sorted(range(len(members)), key=values.__getitem__)
        low, high = values[order[0]], values[order[-1]]
        distance[order[0]] = distance[order[-1]] = math.inf
        spread = high - low
        if spread == 0 or not math.isfinite(spread):
            continue
        for position in range(1, len(order) - 1):
            gap = values[order[position + 1]] - values[order[position - 1]]
            distance[order[position]] += gap / spread
    return distance


def pareto_order(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices from best to worst: by non-domination rank, then by crowding distance within a front (larger is
    better), ties in the given order. NSGA-II's crowded-comparison order; with one coordinate, the order of the
    values."""
    ranked: list[int] = []
    for front in non_dominated_sort(points):
        distance = crowding_distance(points, front)
        positions = sorted(range(len(front)), key=lambda p: -distance[p])  # stable: ties keep the front's order
        ranked.extend(front[p] for p in positions)
    return ranked


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume of the region that the points dominate and that dominates ``reference`` (all coordinates
    maximised), computed exactly in 2 and 3 dimensions. Points that are not better than the reference in every
    coordinate add nothing."""
    reference = np.asarray(reference, dtype=float)
    array = _array(points)
    if len(array) == 0:
        return 0.0
    if array.shape[1] != len(reference):
        raise NasxError(f"points have {array.shape[1]} coordinates but the reference point has {len(reference)}")
    if len(reference) not in (2, 3):
        raise NasxError(f"hypervolume is computed for 2 or 3 objectives, not {len(reference)}")
    array = array[np.all(array > reference, axis=1)]
    if len(array) == 0:
        return 0.0
    array = array[non_dominated(array)]
    if len(reference) == 2:
        return _hypervolume_2d(array, reference)
    # slices along the third coordinate: between two consecutive values of it, the dominated region is the 2-D
    # region of every point at least that high
    array = array[np.argsort(-array[:, 2], kind="stable")]
    volume = 0.0
    for k in range(len(array)):
        floor = array[k + 1, 2] if k + 1 < len(array) else reference[2]
        height = array[k, 2] - floor
        if height > 0:
            volume += _hypervolume_2d(array[: k + 1, :2], reference[:2]) * height
    return float(volume)


def _hypervolume_2d(array: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by 2-D points that are all better than ``reference``: a sweep from the largest first
    coordinate, each point adding the strip above the highest second coordinate seen so far."""
    order = np.lexsort((-array[:, 1], -array[:, 0]))
    area, top = 0.0, reference[1]
    for x, y in array[order]:
        if y > top:
            area += (x - reference[0]) * (y - top)
            top = y
    return float(area)
