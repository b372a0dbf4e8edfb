"""Confidence intervals for a ranking's Kendall tau: a paired bootstrap over the archs.

`bootstrap_intervals` gives percentile intervals for the predictor's tau and for its tau minus the
params-only tau, from resamples that keep each arch's prediction, size and target together, so
"better than size" is a claim about the sample's uncertainty. The intervals cover which archs were
drawn, not the supernet's own training seed (rank several supernets for that: `supernet-report`).
Numpy/scipy only. See docs/experiments/fidelity.md.

    from supernet.fidelity.bootstrap import bootstrap_intervals
    bootstrap_intervals(pred, params, target)   # {"kendall_tau_ci": [lo, hi], "params_gap_ci": [lo, hi]}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

# Resamples of the archs (`rank.bootstrap`) and the interval's coverage; the cost grows as n^2
# (`_ResampledTau`).
BOOTSTRAP = 2000
CONFIDENCE = 0.95
# Below this many archs a resample is mostly repeats (often all ties: no tau): no interval.
MIN_INTERVAL_ARCHS = 8


class _ResampledTau:
    """Kendall's tau-b of ``x`` against ``y`` over bootstrap resamples given as index arrays, a
    whole batch at once (`scipy.stats.kendalltau` takes one sample per call, far too slow for
    thousands of resamples).

    Over the pairs of a resample, tau-b is the sum of sign(dx) * sign(dy) over the square root of
    (pairs untied in x) * (pairs untied in y), and a pair's signs depend only on which two archs it
    holds. So with ``c`` the count of each arch in a resample, each sum is a quadratic form
    ``c^T M c / 2`` with ``M`` the n x n matrix of that pair term: one (batch x n) @ (n x n) product
    per sum instead of a (batch x n^2) array of pair signs. An arch drawn twice is tied with itself in both x
    and y (a zero diagonal), and drops out of both counts, as in tau-b."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
        self.n = len(x)
        self.concordance, self.untied_x, self.untied_y = sx * sy, np.abs(sx), np.abs(sy)

    def __call__(self, idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.moveaxis(np.asarray(idx), axis, -1)
        rows = idx.reshape(-1, self.n)
        offsets = self.n * np.arange(len(rows))[:, None]
        counts = np.bincount((rows + offsets).ravel(), minlength=rows.size).reshape(rows.shape).astype(float)

        def form(m: np.ndarray) -> np.ndarray:
            return ((counts @ m) * counts).sum(axis=-1)

        with np.errstate(invalid="ignore", divide="ignore"):
            tau = form(self.concordance) / np.sqrt(form(self.untied_x) * form(self.untied_y))
        return tau.reshape(idx.shape[:-1])


def _interval(result) -> list[float] | None:
    """The interval's bounds; None where a resample had no ranking (a NaN bound)."""
    low, high = (float(v) for v in (result.confidence_interval.low, result.confidence_interval.high))
    return None if math.isnan(low) or math.isnan(high) else [low, high]


def bootstrap_intervals(
    pred: Sequence[float],
    params: Sequence[float],
    target: Sequence[float],
    resamples: int = BOOTSTRAP,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict:
    """Percentile intervals of the predictor's tau (``kendall_tau_ci``) and of its tau minus the
    params-only tau (``params_gap_ci``), from `resamples` paired resamples of the archs: each
    redraws n archs with replacement, keeping an arch's prediction, size and target together, so
    the two taus share their draws and the gap's interval is far tighter than two separate ones.
    Empty with fewer than `MIN_INTERVAL_ARCHS` archs or no resamples; None where a resample had
    no ranking at all (every arch tied). Seeded: the same inputs give the same intervals."""
    from scipy import stats  # lazy: about 1 s to import, which reading a report never needs

    if resamples < 1 or len(pred) < MIN_INTERVAL_ARCHS:
        return {}
    pred, params, target = (np.asarray(v, dtype=float) for v in (pred, params, target))
    by_pred, by_size = _ResampledTau(pred, target), _ResampledTau(params, target)
    # Resampling the indices is what `paired=True` does inside scipy: the same draws, and the
    # statistics see which archs were drawn, which the quadratic forms above need.
    indices = (np.arange(len(pred)),)
    common = {
        "vectorized": True,
        "n_resamples": resamples,
        "batch": 500,  # (batch, n) counts: small; the products are what cost
        "confidence_level": confidence,
        "method": "percentile",  # BCa's jackknife fails on the constant gap of a size-only predictor
    }
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # a NaN resample: reported as None
        tau = stats.bootstrap(indices, by_pred, rng=np.random.default_rng(seed), **common)
        gap = stats.bootstrap(
            indices, lambda i, axis=-1: by_pred(i, axis) - by_size(i, axis), rng=np.random.default_rng(seed), **common
        )
    return {"kendall_tau_ci": _interval(tau), "params_gap_ci": _interval(gap)}
