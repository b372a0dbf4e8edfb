"""Ranking metrics, the mean rank with size and stratified sampling (supernet/fidelity/metrics.py).

.venv/bin/python -m pytest tests/test_metrics.py -q
"""

from __future__ import annotations

import math
import random

import pytest

from supernet.core.space import SearchSpace
from supernet.errors import UsageError
from supernet.fidelity.metrics import (
    band_of,
    kendall_tau,
    ranking_metrics,
    regret,
    spearman_rho,
    stratified_sample,
    top_k_overlap,
    with_size,
)

MNIST_LIKE = SearchSpace(in_features=784, num_classes=10, depth_min=1, depth_max=4, width_min=16, width_max=1024)


def test_identical_ranking_is_perfect():
    x = [0.1, 0.5, 0.3, 0.9, 0.7, 0.2, 0.8, 0.4, 0.6, 0.05, 0.95, 0.35]
    m = ranking_metrics(x, x)
    assert m["kendall_tau"] == pytest.approx(1.0)
    assert m["spearman_rho"] == pytest.approx(1.0)
    assert m["top5_overlap"] == 1.0 and m["top10_overlap"] == 1.0
    assert m["regret"] == 0.0


def test_reversed_ranking_is_minus_one():
    x = [float(i) for i in range(12)]
    y = [-v for v in x]
    assert kendall_tau(x, y) == pytest.approx(-1.0)
    assert spearman_rho(x, y) == pytest.approx(-1.0)
    assert top_k_overlap(x, y, 5) == 0.0
    assert regret(x, y) == pytest.approx(11.0)  # picked the worst


def test_known_values():
    # One discordant pair out of 6: tau = (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert top_k_overlap([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5], 2) == 1.0
    assert top_k_overlap([1, 2, 3], [3, 2, 1], 5) is None  # k >= n says nothing
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None  # a constant predictor has no ranking
    assert regret([0.9, 0.1, 0.5], [0.7, 0.8, 0.75]) == pytest.approx(0.1)


def test_with_size_is_the_mean_of_the_two_ranks():
    assert with_size([0.86, 0.88, 0.87], [50_000, 400_000, 1_000_000]) == [1.0, 2.5, 2.5]
    assert with_size([0.5, 0.5], [10, 20]) == [1.25, 1.75]  # tied scores share their rank
    with pytest.raises(ValueError, match="same length"):
        with_size([0.1, 0.2], [10])


def test_with_size_beats_both_when_the_score_knows_the_order_within_a_size_but_not_across():
    """The Fashion-MNIST pattern: the score orders nets of similar size right, but a few outliers
    (scored far too low) break its order across sizes; size alone knows the trend, not the order
    within it. Together they rank better than either."""
    rng = random.Random(0)
    n = 60
    params = [int(10_000 * 2 ** (i / 6)) for i in range(n)]  # 10k to ~10M
    within = [rng.gauss(0, 1) for _ in range(n)]
    truth = [math.log(p) + 2.0 * w for p, w in zip(params, within, strict=True)]  # size trend + a shape effect
    score = [w + rng.gauss(0, 0.3) for w in within]  # knows the shape effect, not the trend
    for i in range(0, n, 5):
        score[i] -= 5  # the outliers: far below where they belong
    tau_size, tau_score, tau_both = (kendall_tau(x, truth) for x in (params, score, with_size(score, params)))
    assert tau_both > tau_size + 0.05 and tau_both > tau_score + 0.05, (tau_size, tau_score, tau_both)


def test_stratified_sample_covers_bands():
    archs = stratified_sample(MNIST_LIKE, 30, seed=0)
    assert len(set(archs)) == 30 and all(MNIST_LIKE.contains(a) for a in archs)
    bands = [band_of(MNIST_LIKE.params(a)) for a in archs]
    assert min(bands.count(b) for b in ("small", "medium", "large")) >= 5
    assert len({len(a) for a in archs}) >= 3  # shallow and deep nets alike
    assert stratified_sample(MNIST_LIKE, 30, seed=0) == archs
    assert stratified_sample(MNIST_LIKE, 30, seed=1) != archs


def test_stratified_sample_tiny_space_and_bad_n():
    tiny = SearchSpace(in_features=4, num_classes=2, depth_min=1, depth_max=2, width_min=1, width_max=2, width_step=1)
    assert len(set(stratified_sample(tiny, tiny.size(), seed=0))) == tiny.size()
    with pytest.raises(UsageError, match="rank.n=7"):
        stratified_sample(tiny, 7, seed=0)
