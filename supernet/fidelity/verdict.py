"""A fidelity report in plain words: does the supernet rank better than size, is it at the noise
ceiling, which parameter bands are too noisy to rank?

`verdict(report)` reads the blocks `supernet.fidelity.metrics.fidelity_report` computes (overall
and per band) and returns one sentence of ``;``-separated parts. "Better than size" is judged by
the bootstrap interval of the difference when there is one, else by `MARGIN`. The thresholds are
explained in docs/experiments/fidelity.md. A report of a metric other than accuracy
(``report["metric"]``) names it, and gives its spreads in its own units instead of points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from supernet.fidelity.bootstrap import CONFIDENCE
from supernet.fidelity.fmt import signed

# A tau within this margin of the params-only tau is "no better than size".
MARGIN = 0.05
# A band is "within noise" when less than half of its spread of stand-alone accuracy is signal
# (see `metrics.reliability`), or when two seeds agree on its ranking with tau below this.
MIN_RELIABILITY = 0.5
MIN_NOISE_TAU = 0.3
# Below these, a band is "close to noise": its ranking is measurable but fragile.
CLOSE_RELIABILITY = 0.85
CLOSE_NOISE_TAU = 0.5
JUDGED = {"better": "better than size", "same": "no better than size", "worse": "worse than size"}


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _pt(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} pt"


@dataclass(frozen=True)
class _Words:
    """How a verdict names the stand-alone values and writes their spreads."""

    values: str = "accuracies"
    spread: Callable[[float | None], str] = _pt


def _words(report: Mapping) -> _Words:
    name = (report.get("metric") or {}).get("name", "accuracy")
    if name == "accuracy":
        return _Words()
    return _Words(f"{name} values", lambda x: "n/a" if x is None else f"{x:.3g} {name}")


def within_noise(block: Mapping, min_reliability: float = MIN_RELIABILITY, min_tau: float = MIN_NOISE_TAU) -> bool:
    rel, noise_tau = block.get("reliability"), block.get("noise_tau")
    return (rel is not None and rel < min_reliability) or (noise_tau is not None and noise_tau < min_tau)


def _noise_words(b: Mapping, words: _Words = _Words()) -> str:
    return (
        f"spread sd {words.spread(b.get('spread_sd'))} vs one run's seed sd {words.spread(b.get('noise_sd'))}, "
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
    """Plain words for the whole sample, then for each band with archs."""
    words = _words(report)
    parts = _overall_parts(report["all"], words)
    for name, b in report["bands"].items():
        if b.get("n", 0) > 0:
            parts.append(_band_part(name, b, words))
    return "; ".join(parts) + "."


def _overall_parts(a: Mapping, words: _Words = _Words()) -> list[str]:
    """Versus size, versus the noise ceiling, and whether size alone is already at the ceiling."""
    tau, ptau, ceiling = a["kendall_tau"], a["params_tau"], a["noise_tau"]
    gap = _gap_words(a)
    gap = f" ({gap})" if gap else ""
    vs = versus_size(a)
    if tau is None:
        parts = [f"too few distinct {words.values} to rank"]
    elif vs == "worse":
        parts = [f"the supernet ranks worse than parameter count alone: tau {_f(tau)} vs {_f(ptau)}{gap}"]
    elif vs == "same":
        parts = [
            f"the supernet ranks no better than size: tau {_f(tau)} vs {_f(ptau)} for ranking by parameter count "
            f"alone{gap}"
        ]
    else:
        parts = [f"the supernet ranks better than size alone: tau {_f(tau)} vs {_f(ptau)} for parameter count{gap}"]
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
    return parts


def _band_part(name: str, b: Mapping, words: _Words = _Words()) -> str:
    """One band: too small to rank, within seed noise, or its tau against size's."""
    if b["n"] < 3:
        return f"{name} ({b['range']}): {b['n']} archs, not ranked"
    if within_noise(b):
        return (
            f"{name} ({b['range']}): stand-alone {words.values} within seed noise ({_noise_words(b, words)}): "
            f"its tau {_f(b['kendall_tau'])} means little"
        )
    judged = JUDGED.get(versus_size(b))
    gap = _gap_words(b)
    close = within_noise(b, CLOSE_RELIABILITY, CLOSE_NOISE_TAU)
    return (
        f"{name} ({b['range']}): tau {_f(b['kendall_tau'])} vs {_f(b['params_tau'])} by size"
        + (f" ({judged}: {gap})" if judged and gap else f" ({judged})" if judged else "")
        + (f", archs differ by little more than seed noise ({_noise_words(b, words)})" if close else "")
    )
