"""The paired bootstrap's intervals and its batched tau (supernet/fidelity/bootstrap.py).

.venv/bin/python -m pytest tests/test_bootstrap.py -q
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from supernet.fidelity.bootstrap import _ResampledTau, bootstrap_intervals
from supernet.fidelity.fmt import signed
from supernet.fidelity.metrics import kendall_tau


def test_resampled_tau_equals_scipy_with_ties_and_repeats():
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=25).astype(float)  # many ties
    y = x + rng.normal(0, 2, size=25)
    y[:5] = y[0]  # ties in y too
    idx = rng.integers(0, 25, size=(4, 25))  # resamples: repeated archs are ties in both
    want = [stats.kendalltau(x[i], y[i]).statistic for i in idx]
    tau = _ResampledTau(x, y)
    assert tau(idx) == pytest.approx(want, abs=1e-12)
    assert tau(idx.T, axis=0) == pytest.approx(want, abs=1e-12)
    assert tau(np.arange(25)) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_bootstrap_intervals_cover_the_estimate_and_tell_better_from_same():
    rng = random.Random(0)
    target = [0.8 + 0.1 * i / 40 + rng.gauss(0, 0.004) for i in range(40)]
    size = [i + rng.gauss(0, 12) for i in range(40)]  # knows the trend, not the order within it
    perfect = list(target)
    better = bootstrap_intervals(perfect, size, target, resamples=500, seed=0)
    lo, hi = better["kendall_tau_ci"]
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    gap_lo, gap_hi = better["params_gap_ci"]
    tau_size = kendall_tau(size, target)
    assert 0 < gap_lo <= 1 - tau_size <= gap_hi  # the gap's interval holds the gap and excludes 0
    # A predictor that is the size ranking itself: the gap is 0 in every resample.
    same = bootstrap_intervals(size, size, target, resamples=500, seed=0)
    assert same["params_gap_ci"] == [0.0, 0.0]
    assert same["kendall_tau_ci"][0] < tau_size < same["kendall_tau_ci"][1]
    assert bootstrap_intervals(size, size, target, resamples=500, seed=0) == same  # seeded
    assert bootstrap_intervals(size, size, target, resamples=500, seed=1) != same
    assert bootstrap_intervals(size[:2], size[:2], target[:2]) == {}
    assert signed(-0.001) == "+0.00" and signed(-0.006) == "-0.01"
    assert bootstrap_intervals(size, size, target, resamples=0) == {}
