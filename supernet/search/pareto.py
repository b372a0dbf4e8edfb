"""Pareto utilities for multi-objective search: dominance, non-dominated sorting, crowding
distance and hypervolume. Every function works on points to be *minimised* (negate a score you
maximise, e.g. ``-val_acc``); plain numpy, no search-specific knowledge.

    >>> pareto_front([(0, 2), (1, 1), (2, 0), (2, 2)])
    [0, 1, 2]
    >>> hypervolume([(0, 1), (1, 0)], ref=(2, 2))
    3.0

Tests: ``.venv/bin/python -m pytest tests/test_pareto.py -q``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = Sequence[float]


def _as_array(points: Sequence[Point]) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return np.zeros((0, 0))
    if arr.ndim != 2:
        arr = arr.reshape(len(points), -1)
    return arr


def dominates(a: Point, b: Point) -> bool:
    """True when `a` is no worse than `b` everywhere and strictly better somewhere."""
    better = False
    for x, y in zip(a, b, strict=True):
        if x > y:
            return False
        better = better or x < y
    return better


def _dominated_by_matrix(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """D[i, j] = cols[j] dominates rows[i]."""
    le = (cols[None, :, :] <= rows[:, None, :]).all(axis=2)
    lt = (cols[None, :, :] < rows[:, None, :]).any(axis=2)
    return le & lt


def pareto_front(points: Sequence[Point], chunk: int = 512) -> list[int]:
    """Indices (ascending) of the points no other point dominates. Duplicates all stay.
    Works in row chunks so a history of thousands of points needs little memory."""
    arr = _as_array(points)
    if len(arr) == 0:
        return []
    keep = []
    for start in range(0, len(arr), chunk):
        dominated = _dominated_by_matrix(arr[start : start + chunk], arr).any(axis=1)
        keep.extend(start + int(i) for i in np.flatnonzero(~dominated))
    return keep


def non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Fronts of indices, best first (the fast non-dominated sort of NSGA-II, vectorised)."""
    arr = _as_array(points)
    n = len(arr)
    if n == 0:
        return []
    dom = _dominated_by_matrix(arr, arr)  # dom[i, j]: j dominates i
    count = dom.sum(axis=1)  # how many points dominate i
    fronts = []
    remaining = np.ones(n, dtype=bool)
    while remaining.any():
        front = np.flatnonzero(remaining & (count == 0))
        fronts.append([int(i) for i in front])
        remaining[front] = False
        # Points of this front no longer count against the rest.
        count = count - dom[:, front].sum(axis=1)
    return fronts


def crowding_distance(points: Sequence[Point]) -> list[float]:
    """NSGA-II crowding distance of each point within one front (boundary points get inf)."""
    arr = _as_array(points)
    n, m = arr.shape
    dist = np.zeros(n)
    if n <= 2:
        return [float("inf")] * n
    for k in range(m):
        order = np.argsort(arr[:, k], kind="stable")
        lo, hi = arr[order[0], k], arr[order[-1], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if hi == lo:
            continue
        gaps = (arr[order[2:], k] - arr[order[:-2], k]) / (hi - lo)
        dist[order[1:-1]] += gaps
    return [float(d) for d in dist]


def rank_and_crowding(points: Sequence[Point]) -> tuple[list[int], list[float]]:
    """Per point: its front number (0 = non-dominated) and its crowding distance in that front."""
    n = len(points)
    ranks, crowd = [0] * n, [0.0] * n
    for r, front in enumerate(non_dominated_sort(points)):
        for i, d in zip(front, crowding_distance([points[i] for i in front]), strict=True):
            ranks[i], crowd[i] = r, d
    return ranks, crowd


def hypervolume(points: Sequence[Point], ref: Point) -> float:
    """Volume dominated by `points` and bounded by the reference point `ref` (any number of
    objectives; exact, by slicing along the last objective, fast enough for 2-3 objectives and
    fronts of hundreds of points). Points that do not strictly dominate `ref` add nothing."""
    ref_arr = np.asarray(ref, dtype=float)
    arr = _as_array(points)
    if len(arr) == 0:
        return 0.0
    arr = arr[(arr < ref_arr).all(axis=1)]
    if len(arr) == 0:
        return 0.0
    return float(_hv(arr[pareto_front(arr)], ref_arr))


def _hv(arr: np.ndarray, ref: np.ndarray) -> float:
    m = arr.shape[1]
    if m == 1:
        return float(ref[0] - arr[:, 0].min())
    if m == 2:
        order = np.argsort(arr[:, 0], kind="stable")
        volume, best_y = 0.0, ref[1]
        for x, y in arr[order]:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    # Sweep the last objective upwards: between two consecutive levels, the dominated region is
    # the (m-1)-dimensional hypervolume of the points at or below the lower level.
    order = np.argsort(arr[:, -1], kind="stable")
    arr = arr[order]
    levels = list(arr[:, -1]) + [ref[-1]]
    volume = 0.0
    for i in range(len(arr)):
        height = levels[i + 1] - levels[i]
        if height > 0:
            volume += height * _hv(arr[: i + 1, :-1], ref[:-1])
    return volume
