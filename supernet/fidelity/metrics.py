"""How far the supernet's ranking can be trusted: stratified arch samples and ranking metrics.

`stratified_sample` draws ``n`` distinct archs spread evenly over log(parameter count), so small
and large nets are both present (a uniform sample of a deep space is mostly large nets).
`fidelity_report` compares a predictor (inherited-weight accuracy) with stand-alone accuracy:

- Kendall tau and Spearman rho, top-k overlap (share of the stand-alone top k that the predictor
  also puts in its top k) and the regret of picking the predictor's top arch (best stand-alone
  accuracy minus the stand-alone accuracy of that arch), all archs and per parameter band;
- references: the same tau for ranking by parameter count alone (does the supernet know more than
  size?) and the noise ceiling, the tau between two stand-alone seeds (no predictor is judged
  beyond the agreement of stand-alone training with itself);
- per band, the signal left after seed noise (`reliability`), and a verdict in plain words;
- confidence intervals from a paired bootstrap over the archs (`bootstrap_intervals`): for tau,
  and for the supernet's tau minus the params-only tau, so "better than size" is a claim about
  the sample's uncertainty, not about a fixed margin. They cover which archs were drawn, not the
  supernet's own training seed (rank several supernets for that: `supernet-report`).

The target is the mean stand-alone accuracy over seeds; with one seed there is no noise ceiling.
Pure Python + numpy/scipy: no model, no Lightning.

    from supernet.fidelity.metrics import fidelity_report, stratified_sample
    archs = stratified_sample(space, 50, seed=0)
    report = fidelity_report(archs, params, inherited, {0: accs_seed0, 1: accs_seed1})
    print(report["verdict"])
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from supernet.core.space import Arch, SearchSpace
from supernet.errors import UsageError
from supernet.fidelity.fmt import signed

BANDS = (100_000, 400_000)  # parameter-count edges: small < 100k <= medium < 400k <= large
TOPK = (5, 10)
# A tau within this margin of the params-only tau is "no better than size".
MARGIN = 0.05
# A band is "within noise" when less than half of its spread of stand-alone accuracy is signal
# (see `reliability`), or when two seeds agree on its ranking with tau below this.
MIN_RELIABILITY = 0.5
MIN_NOISE_TAU = 0.3
# Below these, a band is "close to noise": its ranking is measurable but fragile (on Fashion-MNIST
# with 10 epochs, nets above 400k params differ by about twice the seed-to-seed sd).
CLOSE_RELIABILITY = 0.85
CLOSE_NOISE_TAU = 0.5
# Paired bootstrap behind the confidence intervals (`rank.bootstrap`): resamples of the archs, and
# the interval's coverage. Both intervals from 2000 percentile resamples take 0.007 s at n = 50,
# 0.06 s at n = 293 and 0.14 s at n = 500 (2-core CPU), growing as n^2 (`_ResampledTau`).
BOOTSTRAP = 2000
CONFIDENCE = 0.95
# Below this many archs a resample is mostly repeats (often all ties: no tau): no interval.
MIN_INTERVAL_ARCHS = 8
ENUMERATE_UP_TO = 50_000  # a space this small may be enumerated when random draws repeat too often
POOL_PER_ARCH = 200  # random draws per requested arch: enough to fill the rare extreme bins


# ---------------------------------------------------------------------------- sampling
def stratified_sample(space: SearchSpace, n: int, seed: int = 0, bins: int = 5) -> list[Arch]:
    """`n` distinct archs, about ``n / bins`` from each of `bins` equal-width bins of
    log(params) between the smallest and largest arch (a bin with too few archs passes its share
    on to the others). Seeded: the same (space, n, seed, bins) gives the same archs."""
    if not 1 <= n <= space.size():
        raise UsageError(f"rank.n={n} must be in [1, {space.size()}] (the number of archs in the space)")
    if bins < 1:
        raise UsageError(f"rank.bins={bins} must be >= 1")
    rng = random.Random(seed)
    # The pool follows the space's own sampling rule (uniform depth, then widths), so a bin holds
    # shallow and deep nets alike; a tiny space whose draws repeat is topped up by enumeration.
    pool = list(dict.fromkeys(space.sample(rng) for _ in range(max(2000, POOL_PER_ARCH * n))))
    if len(pool) < 2 * n and space.size() <= ENUMERATE_UP_TO:
        every = (a for d in space.depths for a in itertools.product(space.widths, repeat=d))
        pool = list(dict.fromkeys([*pool, *every]))
    lo, hi = math.log(space.params(space.smallest())), math.log(space.params(space.largest()))
    width = (hi - lo) / bins or 1.0
    strata: list[list[Arch]] = [[] for _ in range(bins)]
    for arch in pool:
        strata[min(bins - 1, int((math.log(space.params(arch)) - lo) / width))].append(arch)
    for stratum in strata:
        rng.shuffle(stratum)
    chosen: list[Arch] = []
    # Round-robin over the bins: each takes one arch per round until n are chosen.
    while len(chosen) < n:
        for stratum in strata:
            if stratum and len(chosen) < n:
                chosen.append(stratum.pop())
    return sorted(chosen, key=space.params)


def band_of(params: int, edges: Sequence[int] = BANDS) -> str:
    return band_names(edges)[sum(params >= e for e in edges)]


def band_names(edges: Sequence[int] = BANDS) -> list[str]:
    if len(edges) == 2:
        return ["small", "medium", "large"]
    return [f"band{i}" for i in range(len(edges) + 1)]


def band_ranges(edges: Sequence[int] = BANDS) -> list[str]:
    def k(v: int) -> str:
        return f"{v / 1e6:g}M" if v >= 1_000_000 else f"{v / 1e3:g}k"

    bounds = [None, *edges, None]
    return [
        f"< {k(b)}" if a is None else f">= {k(a)}" if b is None else f"{k(a)}-{k(b)}"
        for a, b in zip(bounds[:-1], bounds[1:], strict=False)
    ]


def check_bands(edges: Sequence) -> list[int]:
    try:
        out = [int(e) for e in edges]
    except (TypeError, ValueError):
        raise UsageError(
            f"rank.bands={list(edges)!r} must be a list of parameter counts, e.g. [100000, 400000]"
        ) from None
    if any(b <= a for a, b in zip(out, out[1:], strict=False)) or any(e <= 0 for e in out):
        raise UsageError(f"rank.bands={out} must be positive and increasing, e.g. [100000, 400000]")
    return out


# ---------------------------------------------------------------------------- metrics
def _clean(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def kendall_tau(pred: Sequence[float], target: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties counted fairly); None with fewer than 3 points or a constant input."""
    if len(pred) < 3 or len(set(pred)) < 2 or len(set(target)) < 2:
        return None
    return _clean(stats.kendalltau(pred, target).statistic)


def spearman_rho(pred: Sequence[float], target: Sequence[float]) -> float | None:
    if len(pred) < 3 or len(set(pred)) < 2 or len(set(target)) < 2:
        return None
    return _clean(stats.spearmanr(pred, target).statistic)


def top_k_overlap(pred: Sequence[float], target: Sequence[float], k: int) -> float | None:
    """Share of the target's top k that is also in the predictor's top k; None when k >= n
    (every arch is in the top k: the overlap says nothing)."""
    if k >= len(pred):
        return None
    top_pred = set(sorted(range(len(pred)), key=lambda i: -pred[i])[:k])
    top_target = set(sorted(range(len(target)), key=lambda i: -target[i])[:k])
    return len(top_pred & top_target) / k


def regret(pred: Sequence[float], target: Sequence[float]) -> float | None:
    """Best target minus the target of the predictor's top pick (0: it picked the best)."""
    if not pred:
        return None
    pick = max(range(len(pred)), key=lambda i: pred[i])
    return float(max(target) - target[pick])


def ranking_metrics(pred: Sequence[float], target: Sequence[float], topk: Sequence[int] = TOPK) -> dict:
    out = {
        "n": len(pred),
        "kendall_tau": kendall_tau(pred, target),
        "spearman_rho": spearman_rho(pred, target),
        "regret": regret(pred, target),
    }
    for k in topk:
        out[f"top{k}_overlap"] = top_k_overlap(pred, target, k)
    return out


class _ResampledTau:
    """Kendall's tau-b of ``x`` against ``y`` over bootstrap resamples given as index arrays, a
    whole batch at once (`scipy.stats.kendalltau` takes one sample per call: 2000 calls are ~2 s
    per interval at n = 50).

    Over the pairs of a resample, tau-b is the sum of sign(dx) * sign(dy) over the square root of
    (pairs untied in x) * (pairs untied in y), and a pair's signs depend only on which two archs it
    holds. So with ``c`` the count of each arch in a resample, each sum is a quadratic form
    ``c^T M c / 2`` with ``M`` the n x n matrix of that pair term: one (batch x n) @ (n x n) product
    per sum instead of a (batch x n^2) array of pair signs (a whole fidelity report at n = 293:
    0.09 s instead of 5.7 on the 2-core CPU). An arch drawn twice is tied with itself in both x
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
    low, high = (_clean(float(v)) for v in (result.confidence_interval.low, result.confidence_interval.high))
    return None if low is None or high is None else [low, high]


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


def reliability(by_seed: Sequence[Sequence[float]]) -> dict:
    """How much of the spread of the mean-over-seeds accuracy is signal rather than seed noise.

    ``noise_sd``: the standard deviation of one run (from the seed-to-seed differences);
    ``spread_sd``: the standard deviation of the mean accuracy across archs; ``reliability``:
    1 - (noise_sd^2 / seeds) / spread_sd^2, the share of the target's variance that is not noise
    (1: noise-free, <= 0: all noise)."""
    seeds = len(by_seed)
    n = len(by_seed[0]) if by_seed else 0
    if seeds < 2 or n < 2:
        return {"noise_sd": None, "spread_sd": None, "reliability": None}
    means = [statistics.fmean(col) for col in zip(*by_seed, strict=True)]
    # Per-arch sample variance over seeds, pooled: an unbiased estimate of one run's variance.
    noise_var = statistics.fmean(statistics.variance(col) for col in zip(*by_seed, strict=True))
    spread_var = statistics.variance(means)
    rel = None if spread_var == 0 else 1.0 - (noise_var / seeds) / spread_var
    return {"noise_sd": math.sqrt(noise_var), "spread_sd": math.sqrt(spread_var), "reliability": rel}


def _metrics_block(
    idx: list[int],
    params: Sequence[int],
    pred: Sequence[float],
    by_seed: list[list[float]],
    topk: Sequence[int],
    bootstrap: int,
    seed: int,
) -> dict:
    target = [statistics.fmean(col) for col in zip(*by_seed, strict=True)]
    t = [target[i] for i in idx]
    p, size = [pred[i] for i in idx], [float(params[i]) for i in idx]
    block = ranking_metrics(p, t, topk)
    block["params_tau"] = kendall_tau(size, t)
    tau, ptau = block["kendall_tau"], block["params_tau"]
    block["params_gap"] = None if tau is None or ptau is None else tau - ptau
    block.update({"kendall_tau_ci": None, "params_gap_ci": None})
    block.update(bootstrap_intervals(p, size, t, bootstrap, seed))
    block["tau_vs_seed"] = [kendall_tau(p, [s[i] for i in idx]) for s in by_seed]
    block["noise_tau"] = (
        kendall_tau([by_seed[0][i] for i in idx], [by_seed[1][i] for i in idx]) if len(by_seed) > 1 else None
    )
    block.update(reliability([[s[i] for i in idx] for s in by_seed]))
    block["standalone_acc_range"] = [min(t), max(t)] if t else None
    return block


def with_size(scores: Sequence[float], params: Sequence[int]) -> list[float]:
    """Each arch's mean rank by ``scores`` and by parameter count (for both, and for the result,
    higher is better): a Borda count of the supernet and of size, using no stand-alone result.

    Why: inherited accuracy knows what size does not about nets of about the same size (within a
    size bracket it ranks stand-alone accuracy better than size does), but across sizes a few nets
    it badly under-rates (a 16-unit layer behind a wide one) put small and large nets out of order,
    and its tau over all archs ends up no better than size's. Size orders the far-apart pairs, the
    supernet the close ones. Fashion-MNIST, 293 archs (README, fidelity section), three supernets
    without batch norm: tau 0.85 against 0.80 for size alone and 0.79 for inherited accuracy alone
    (with `model.norm=batch`: 0.86 against 0.80 and 0.81).

        >>> with_size([0.86, 0.88, 0.87], [50_000, 400_000, 1_000_000])
        [1.0, 2.5, 2.5]
    """
    if len(scores) != len(params):
        raise ValueError("scores and params must have the same length")
    combined = (stats.rankdata(np.asarray(scores, float)) + stats.rankdata(np.asarray(params, float))) / 2
    return [float(x) for x in combined]


def predictor_name(finetune: Mapping | None = None, size: bool = False) -> str:
    """How a ranking was scored, in words: ``inherited acc``, ``val loss after a 300-step
    fine-tune``, either with ``+ size (mean rank)`` (`with_size`)."""
    name = (
        "inherited acc"
        if finetune is None
        else f"val {finetune.get('score', 'loss')} after a {finetune['steps']}-step fine-tune"
    )
    return f"{name} + size (mean rank)" if size else name


def fidelity_report(
    archs: Sequence[Arch],
    params: Sequence[int],
    inherited: Sequence[float],
    standalone: Mapping[int, Sequence[float]],
    bands: Sequence[int] = BANDS,
    topk: Sequence[int] = TOPK,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> dict:
    """Everything `supernet-rank` reports. `standalone` maps seed -> accuracies (same order as
    `archs`); the target is their mean over seeds. `bootstrap` resamples (seeded by `seed`) give
    the confidence intervals; 0 leaves them out and the verdict falls back to a fixed margin."""
    if not standalone:
        raise ValueError("fidelity_report needs stand-alone accuracies for at least one seed")
    seeds = sorted(standalone)
    by_seed = [list(map(float, standalone[s])) for s in seeds]
    if any(len(s) != len(archs) for s in by_seed) or len(inherited) != len(archs) or len(params) != len(archs):
        raise ValueError("archs, params, inherited and stand-alone accuracies must have the same length")
    pred = list(map(float, inherited))
    names, ranges = band_names(bands), band_ranges(bands)
    report = {
        "n": len(archs),
        "seeds": seeds,
        "target": "mean stand-alone val_acc over seeds",
        "all": _metrics_block(list(range(len(archs))), params, pred, by_seed, topk, bootstrap, seed),
        "bands": {},
    }
    for name, rng in zip(names, ranges, strict=True):
        idx = [i for i, p in enumerate(params) if band_of(p, bands) == name]
        block = _metrics_block(idx, params, pred, by_seed, topk, bootstrap, seed) if idx else {"n": 0}
        report["bands"][name] = {"range": rng, **block}
    report["verdict"] = verdict(report)
    return report


# ---------------------------------------------------------------------------- verdict
def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def within_noise(block: Mapping, min_reliability: float = MIN_RELIABILITY, min_tau: float = MIN_NOISE_TAU) -> bool:
    rel, noise_tau = block.get("reliability"), block.get("noise_tau")
    return (rel is not None and rel < min_reliability) or (noise_tau is not None and noise_tau < min_tau)


def _pt(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} pt"


def _noise_words(b: Mapping) -> str:
    return (
        f"spread sd {_pt(b.get('spread_sd'))} vs one run's seed sd {_pt(b.get('noise_sd'))}, "
        f"seed-vs-seed tau {_f(b.get('noise_tau'))}"
    )


def _gap_words(block: Mapping) -> str:
    """``difference -0.06, 95% CI -0.13 to +0.02`` (empty without an interval)."""
    ci = block.get("params_gap_ci")
    if ci is None or block.get("params_gap") is None:
        return ""
    gap, low, high = (signed(v) for v in (block["params_gap"], *ci))
    return f"difference {gap}, {CONFIDENCE:.0%} CI {low} to {high} over resampled archs"


def versus_size(block: Mapping) -> str | None:
    """``better``, ``worse`` or ``same`` than ranking by parameter count alone: by the bootstrap
    interval of the difference when there is one (does it exclude 0?), else by `MARGIN`."""
    tau, ptau, ci = block.get("kendall_tau"), block.get("params_tau"), block.get("params_gap_ci")
    if tau is None or ptau is None:
        return None
    low, high = ci if ci is not None else (tau - ptau - MARGIN, tau - ptau + MARGIN)
    return "better" if low > 0 else "worse" if high < 0 else "same"


def verdict(report: Mapping) -> str:
    """Plain words: does the supernet know more than size, is it at the noise ceiling, which
    bands are too noisy to rank?"""
    a = report["all"]
    tau, ptau, ceiling = a["kendall_tau"], a["params_tau"], a["noise_tau"]
    parts = []
    gap = _gap_words(a)
    gap = f" ({gap})" if gap else ""
    vs = versus_size(a)
    if tau is None:
        parts.append("too few distinct accuracies to rank")
    elif vs == "worse":
        parts.append(f"the supernet ranks worse than parameter count alone: tau {_f(tau)} vs {_f(ptau)}{gap}")
    elif vs == "same":
        parts.append(
            f"the supernet ranks no better than size: tau {_f(tau)} vs {_f(ptau)} for ranking by parameter count "
            f"alone{gap}"
        )
    else:
        parts.append(f"the supernet ranks better than size alone: tau {_f(tau)} vs {_f(ptau)} for parameter count{gap}")
    if ceiling is None:
        parts.append("no noise ceiling (use rank.seeds>=2)")
    elif tau is not None and tau >= ceiling:
        parts.append(f"at the noise ceiling (two stand-alone seeds agree only to tau {_f(ceiling)})")
    else:
        parts.append(f"noise ceiling tau {_f(ceiling)} (seed vs seed)")
    if ceiling is not None and ptau is not None and ptau >= ceiling - MARGIN:
        # Then even a second stand-alone training ranks no better than size over this sample.
        parts.append(
            f"parameter count alone ranks at the noise ceiling ({_f(ptau)} vs {_f(ceiling)}): over the whole "
            "sample no predictor can be shown to beat size, compare within the bands"
        )
    for name, b in report["bands"].items():
        if b.get("n", 0) == 0:
            continue
        if b["n"] < 3:
            parts.append(f"{name} ({b['range']}): {b['n']} archs, not ranked")
        elif within_noise(b):
            parts.append(
                f"{name} ({b['range']}): stand-alone accuracies within seed noise ({_noise_words(b)}): "
                f"its tau {_f(b['kendall_tau'])} means little"
            )
        else:
            judged = {"better": "better than size", "same": "no better than size", "worse": "worse than size"}
            judged = judged.get(versus_size(b))
            gap = _gap_words(b)
            close = within_noise(b, CLOSE_RELIABILITY, CLOSE_NOISE_TAU)
            parts.append(
                f"{name} ({b['range']}): tau {_f(b['kendall_tau'])} vs {_f(b['params_tau'])} by size"
                + (f" ({judged}: {gap})" if judged and gap else f" ({judged})" if judged else "")
                + (f", archs differ by little more than seed noise ({_noise_words(b)})" if close else "")
            )
    return "; ".join(parts) + "."
