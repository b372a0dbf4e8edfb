"""The fidelity report's verdict in words (supernet/fidelity/verdict.py), on inputs whose taus,
noise and bands are known by hand.

    .venv/bin/python -m pytest tests/test_verdict.py -q
"""

from __future__ import annotations

import math
import random

import pytest

from supernet.core.space import SearchSpace
from supernet.fidelity.metrics import fidelity_report, stratified_sample

MNIST_LIKE = SearchSpace(in_features=784, num_classes=10, depth_min=1, depth_max=4, width_min=16, width_max=1024)


def test_report_flags_size_only_and_noise():
    """Nine one-layer archs, three per band; a predictor that is parameter count itself. Small and
    medium: both seeds rise with size (no noise). Large: the seeds disagree, and the spread of the
    mean is as large as seed noise predicts (reliability 0). Every number below is worked out by
    hand from these accuracies."""
    widths = [16, 32, 64, 128, 256, 384, 512, 768, 1024]
    archs = [(w,) for w in widths]
    params = [MNIST_LIKE.params(a) for a in archs]
    assert [p < 100_000 for p in params] == [True] * 3 + [False] * 6 and min(params[6:]) >= 400_000
    seed0 = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85, 0.90, 0.92, 0.92]
    seed1 = [0.80, 0.81, 0.82, 0.83, 0.84, 0.85, 0.92, 0.90, 0.93]
    report = fidelity_report(archs, params, [float(p) for p in params], {0: seed0, 1: seed1}, bootstrap=0)
    a, large = report["all"], report["bands"]["large"]
    # The means rise with size but for one tie (the first two large archs): 35 concordant pairs of
    # 36, one tied in the target, none discordant: tau-b = 35 / sqrt(36 * 35).
    assert a["kendall_tau"] == pytest.approx(math.sqrt(35 / 36)) == pytest.approx(a["params_tau"])
    # Seed vs seed: 34 concordant, 1 discordant, 1 tied in seed 0: tau-b = 33 / sqrt(35 * 36).
    assert a["noise_tau"] == pytest.approx(33 / math.sqrt(35 * 36))
    # Large band: one run's variance is the mean of (a - b)^2 / 2 = (2e-4, 2e-4, 5e-5), 1.5e-4; the
    # means (0.91, 0.91, 0.925) vary by 7.5e-5 = 1.5e-4 / 2 seeds: all of it noise.
    assert large["noise_sd"] == pytest.approx(math.sqrt(1.5e-4))
    assert large["spread_sd"] == pytest.approx(math.sqrt(7.5e-5))
    assert large["reliability"] == pytest.approx(0.0, abs=1e-9)
    assert large["noise_tau"] == pytest.approx(0.0) and large["kendall_tau"] == pytest.approx(2 / math.sqrt(6))
    for band in ("small", "medium"):
        b = report["bands"][band]
        assert b["n"] == 3 and b["reliability"] == 1.0 and b["kendall_tau"] == b["params_tau"] == pytest.approx(1.0)
    assert report["verdict"] == (
        "the supernet ranks no better than size: tau 0.99 vs 0.99 for ranking by parameter count alone; "
        "at the noise ceiling (two stand-alone seeds agree only to tau 0.93); "
        "parameter count alone ranks at the noise ceiling (0.99 vs 0.93): over the whole sample no predictor "
        "can be shown to beat size, compare within the bands; "
        "small (< 100k): tau 1.00 vs 1.00 by size (no better than size); "
        "medium (100k-400k): tau 1.00 vs 1.00 by size (no better than size); "
        "large (>= 400k): stand-alone accuracies within seed noise (spread sd 0.87 pt vs one run's seed sd "
        "1.22 pt, seed-vs-seed tau 0.00): its tau 0.82 means little."
    )


def test_verdict_says_when_size_is_at_the_noise_ceiling():
    rng = random.Random(1)
    archs = stratified_sample(MNIST_LIKE, 30, seed=0)
    params = [MNIST_LIKE.params(a) for a in archs]
    truth = [0.8 + 0.1 * i / 30 for i in sorted(range(30), key=lambda i: params[i])]
    truth = [truth[sorted(range(30), key=lambda i: params[i]).index(i)] for i in range(30)]  # monotone in size
    noisy = {s: [t + rng.gauss(0, 0.004) for t in truth] for s in (0, 1)}
    report = fidelity_report(archs, params, [rng.random() for _ in archs], noisy)
    assert report["all"]["params_tau"] >= report["all"]["noise_tau"]
    assert "parameter count alone ranks at the noise ceiling" in report["verdict"]
    assert "compare within the bands" in report["verdict"]


def test_verdict_judges_size_by_the_interval_of_the_difference():
    rng = random.Random(2)
    archs = stratified_sample(MNIST_LIKE, 40, seed=0)
    params = [MNIST_LIKE.params(a) for a in archs]
    # The truth is size plus a second factor (depth) that a good supernet sees and size cannot.
    truth = [0.8 + 0.01 * math.log(p) - 0.02 * len(a) for a, p in zip(archs, params, strict=True)]
    seeds = {s: [t + rng.gauss(0, 0.001) for t in truth] for s in (0, 1)}
    good = fidelity_report(archs, params, truth, seeds, bootstrap=500)
    assert good["all"]["params_gap_ci"][0] > 0
    assert "the supernet ranks better than size alone" in good["verdict"]
    assert "95% CI +" in good["verdict"]
    reversed_ = fidelity_report(archs, params, [-t for t in truth], seeds, bootstrap=500)
    assert reversed_["all"]["params_gap_ci"][1] < 0
    assert "ranks worse than parameter count alone" in reversed_["verdict"]
    # Without resamples: no intervals, and the verdict falls back to the fixed margin.
    plain = fidelity_report(archs, params, truth, seeds, bootstrap=0)
    assert plain["all"]["kendall_tau_ci"] is None and "CI" not in plain["verdict"]
    assert plain["all"]["params_gap"] == pytest.approx(good["all"]["params_gap"])
