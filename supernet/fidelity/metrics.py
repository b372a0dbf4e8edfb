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
- per band, the signal left after seed noise (`reliability`), and a verdict in plain words
  (`supernet.fidelity.verdict`);
- confidence intervals from a paired bootstrap over the archs (`supernet.fidelity.bootstrap`): for
  tau, and for the supernet's tau minus the params-only tau.

The target is the mean stand-alone accuracy over seeds; with one seed there is no noise ceiling.
Any other metric (``rank.metric``: RMSE, balanced accuracy...) works alike, its direction given by
``metric={"name", "key", "higher_is_better"}``: the predictor is always "higher is better" (pass
minus an RMSE), the targets are the metric's own values, and the report turns them so that every
figure keeps its sense (tau above size's is better, regret >= 0 in the metric's units).
Pure Python + numpy/scipy: no model, no Lightning. See docs/experiments/fidelity.md.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from supernet.core.metrics import short_name
from supernet.core.space import Arch, SearchSpace
from supernet.errors import UsageError
from supernet.fidelity.bootstrap import BOOTSTRAP, CONFIDENCE, bootstrap_intervals
from supernet.fidelity.verdict import verdict

__all__ = ["BANDS", "BOOTSTRAP", "CONFIDENCE", "TOPK", "bootstrap_intervals", "fidelity_report", "verdict"]

BANDS = (100_000, 400_000)  # parameter-count edges: small < 100k <= medium < 400k <= large
TOPK = (5, 10)
ENUMERATE_UP_TO = 50_000  # a space this small may be enumerated when random draws repeat too often
POOL_PER_ARCH = 200  # random draws per requested arch: enough to fill the rare extreme bins
# The metric a report ranks by when none is named (and what rank.json files without one used).
ACCURACY: dict[str, Any] = {"name": "accuracy", "key": "val_acc", "higher_is_better": True}


def metric_doc(metric: Mapping | str | None = None) -> dict[str, Any]:
    """A report's metric as plain data ``{"name", "key", "higher_is_better"}`` (None: accuracy;
    a name alone is accuracy's or looked up in `supernet.core.metrics`)."""
    if metric is None or metric == "accuracy":
        return dict(ACCURACY)
    if isinstance(metric, str):
        from supernet.core.metrics import METRICS  # torch: only where a name must be looked up

        m = METRICS[metric]
        return {"name": m.name, "key": m.key, "higher_is_better": m.higher_is_better}
    return {
        "name": str(metric["name"]),
        "key": str(metric["key"]),
        "higher_is_better": bool(metric["higher_is_better"]),
    }


def score_column(metric: Mapping | None = None) -> str:
    """The name a metric's values take in rank.csv's columns: ``acc`` for accuracy (``inherited_acc``,
    ``standalone_acc_mean``: the columns supernet-rank has always written), else the metric's name
    (``inherited_rmse``, ``standalone_rmse_seed0``...)."""
    return short_name(metric_doc(metric)["name"])


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


def _rankable(pred: Sequence[float], target: Sequence[float]) -> bool:
    """At least 3 points and neither input constant: a rank correlation means something."""
    return len(pred) >= 3 and len(set(pred)) >= 2 and len(set(target)) >= 2


def kendall_tau(pred: Sequence[float], target: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties counted fairly); None with fewer than 3 points or a constant input."""
    from scipy import stats  # lazy: about 1 s to import, which reading a report never needs

    return _clean(stats.kendalltau(pred, target).statistic) if _rankable(pred, target) else None


def spearman_rho(pred: Sequence[float], target: Sequence[float]) -> float | None:
    """Spearman's rho; None where `kendall_tau` is."""
    from scipy import stats  # lazy: about 1 s to import, which reading a report never needs

    return _clean(stats.spearmanr(pred, target).statistic) if _rankable(pred, target) else None


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


@dataclass(frozen=True)
class _Target:
    """The stand-alone values per seed, in the metric's own units, and the metric's direction."""

    by_seed: list[list[float]]
    sign: int = 1  # +1: higher is better; -1: lower is (the ranking figures use sign * value)
    column: str = "acc"


def _metrics_block(
    idx: list[int],
    params: Sequence[int],
    pred: Sequence[float],
    target: _Target,
    topk: Sequence[int],
    bootstrap: int,
    seed: int,
) -> dict:
    sign = target.sign
    raw = [statistics.fmean(col) for col in zip(*target.by_seed, strict=True)]
    by_seed = [[sign * v for v in s] for s in target.by_seed]  # higher is better, as the predictor
    t = [sign * raw[i] for i in idx]
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
    block.update(reliability([[s[i] for i in idx] for s in target.by_seed]))
    values = [raw[i] for i in idx]
    block[f"standalone_{target.column}_range"] = [min(values), max(values)] if values else None
    return block


def with_size(scores: Sequence[float], params: Sequence[int]) -> list[float]:
    """Each arch's mean rank by ``scores`` and by parameter count (for both, and for the result,
    higher is better): a Borda count of the supernet and of size, using no stand-alone result.

    Why: inherited accuracy knows what size does not about nets of about the same size (within a
    size bracket it ranks stand-alone accuracy better than size does), but across sizes a few nets
    it badly under-rates (a 16-unit layer behind a wide one) put small and large nets out of order,
    and its tau over all archs ends up no better than size's. Size orders the far-apart pairs, the
    supernet the close ones (docs/experiments/fidelity.md, "Inherited accuracy and size together").

        >>> with_size([0.86, 0.88, 0.87], [50_000, 400_000, 1_000_000])
        [1.0, 2.5, 2.5]
    """
    from scipy import stats  # lazy: about 1 s to import, which reading a report never needs

    if len(scores) != len(params):
        raise ValueError("scores and params must have the same length")
    combined = (stats.rankdata(np.asarray(scores, float)) + stats.rankdata(np.asarray(params, float))) / 2
    return [float(x) for x in combined]


def predictor_name(finetune: Mapping | None = None, size: bool = False, metric: Mapping | None = None) -> str:
    """How a ranking was scored, in words: ``inherited acc`` (``inherited rmse``...: the report's
    `metric`), ``val loss after a 300-step fine-tune``, either with ``+ size (mean rank)``
    (`with_size`)."""
    name = (
        f"inherited {score_column(metric)}"
        if finetune is None
        else f"val {finetune.get('score', 'loss')} after a {finetune['steps']}-step fine-tune"
    )
    return f"{name} + size (mean rank)" if size else name


def fidelity_report(  # noqa: PLR0913 - the sample, its scores, and how to read them
    archs: Sequence[Arch],
    params: Sequence[int],
    inherited: Sequence[float],
    standalone: Mapping[int, Sequence[float]],
    bands: Sequence[int] = BANDS,
    topk: Sequence[int] = TOPK,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
    metric: Mapping | None = None,
) -> dict:
    """Everything `supernet-rank` reports. `standalone` maps seed -> the stand-alone values of
    `metric` (default accuracy; same order as `archs`); the target is their mean over seeds.
    `inherited` is the predictor, higher meaning better whatever the metric (minus an inherited
    RMSE). `bootstrap` resamples (seeded by `seed`) give the confidence intervals; 0 leaves them
    out and the verdict falls back to a fixed margin."""
    if not standalone:
        raise ValueError("fidelity_report needs stand-alone accuracies for at least one seed")
    seeds = sorted(standalone)
    by_seed = [list(map(float, standalone[s])) for s in seeds]
    if any(len(s) != len(archs) for s in by_seed) or len(inherited) != len(archs) or len(params) != len(archs):
        raise ValueError("archs, params, inherited and stand-alone accuracies must have the same length")
    info = metric_doc(metric)
    target = _Target(by_seed, 1 if info["higher_is_better"] else -1, score_column(info))
    pred = list(map(float, inherited))
    names, ranges = band_names(bands), band_ranges(bands)
    report = {
        "n": len(archs),
        "seeds": seeds,
        "metric": info,
        "target": f"mean stand-alone {info['key']} over seeds",
        "all": _metrics_block(list(range(len(archs))), params, pred, target, topk, bootstrap, seed),
        "bands": {},
    }
    for name, rng in zip(names, ranges, strict=True):
        idx = [i for i, p in enumerate(params) if band_of(p, bands) == name]
        block = _metrics_block(idx, params, pred, target, topk, bootstrap, seed) if idx else {"n": 0}
        report["bands"][name] = {"range": rng, **block}
    report["verdict"] = verdict(report)
    return report
