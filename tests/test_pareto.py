"""Property tests of the Pareto utilities against brute force on seeded random points.

.venv/bin/python -m pytest tests/test_pareto.py -q
"""

import itertools
import random

import numpy as np
import pytest

from supernet.search.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    non_dominated_sort,
    pareto_front,
    rank_and_crowding,
)


def random_points(rng: random.Random, n: int, m: int, grid: int = 6) -> list[tuple]:
    # Small integer grids make ties and duplicates common: the hard cases.
    return [tuple(rng.randrange(grid) for _ in range(m)) for _ in range(n)]


CASES = [(seed, m) for seed in range(12) for m in (1, 2, 3)]


@pytest.mark.parametrize(("seed", "m"), CASES)
def test_front_is_exactly_the_non_dominated_points(seed, m):
    pts = random_points(random.Random(seed), 40, m)
    front = pareto_front(pts, chunk=7)  # several chunks
    brute = [i for i, p in enumerate(pts) if not any(dominates(q, p) for q in pts)]
    assert front == brute
    for i, j in itertools.product(front, front):
        assert not dominates(pts[i], pts[j])


@pytest.mark.parametrize(("seed", "m"), CASES)
def test_non_dominated_sort_fronts(seed, m):
    pts = random_points(random.Random(seed), 30, m)
    fronts = non_dominated_sort(pts)
    assert sorted(i for f in fronts for i in f) == list(range(len(pts)))
    assert fronts[0] == pareto_front(pts)
    for k, front in enumerate(fronts):
        for i, j in itertools.product(front, front):
            assert not dominates(pts[i], pts[j])
        if k:  # each member of a later front is dominated by one of the previous front
            for j in front:
                assert any(dominates(pts[i], pts[j]) for i in fronts[k - 1])


def test_dominates_is_strict():
    assert dominates((0, 1), (1, 1))
    assert not dominates((1, 1), (1, 1))
    assert not dominates((0, 2), (1, 1))


def test_crowding_distance_boundaries_and_order():
    pts = [(0.0, 4.0), (1.0, 3.0), (1.5, 2.5), (3.0, 1.0), (4.0, 0.0)]
    d = crowding_distance(pts)
    assert d[0] == d[-1] == float("inf")
    # (1.5, 2.5) sits between close neighbours, (3, 1) between far ones.
    assert d[2] < d[3]
    assert crowding_distance([(1, 2), (2, 1)]) == [float("inf")] * 2
    ranks, crowd = rank_and_crowding(pts + [(5.0, 5.0)])
    assert ranks == [0, 0, 0, 0, 0, 1]
    assert crowd[-1] == float("inf")


def grid_hypervolume(pts, ref):
    """Count unit cells dominated by some point (integer coordinates only)."""
    cells = itertools.product(*(range(int(r)) for r in ref))
    return sum(any(all(p[k] <= c[k] for k in range(len(ref))) for p in pts) for c in cells)


@pytest.mark.parametrize(("seed", "m"), CASES)
def test_hypervolume_matches_cell_count(seed, m):
    rng = random.Random(seed)
    pts = random_points(rng, rng.randint(1, 12), m)
    ref = (6,) * m
    assert hypervolume(pts, ref) == pytest.approx(grid_hypervolume(pts, ref))


def test_hypervolume_monotone_and_bounded():
    rng = random.Random(7)
    pts: list[tuple] = []
    last = 0.0
    for _ in range(30):
        pts.append(tuple(rng.random() for _ in range(3)))
        hv = hypervolume(pts, (1.0, 1.0, 1.0))
        assert last <= hv <= 1.0
        last = hv
    assert hypervolume([], (1, 1)) == 0.0
    assert hypervolume([(2, 0)], (1, 1)) == 0.0  # outside the reference box
    assert hypervolume(np.array([[0.5, 0.5]]), (1, 1)) == pytest.approx(0.25)
