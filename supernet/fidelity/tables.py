"""The Markdown tables of `supernet-report`: winners per configuration, ranking fidelity per
configuration, the pooled rankings and the search strategies' best-so-far."""

from __future__ import annotations

import math
import statistics
from typing import Any

from supernet.core.metrics import LOWER_IS_BETTER, short_name
from supernet.fidelity.fmt import signed
from supernet.fidelity.pooling import Pool

# The metrics written to 4 decimals, like accuracy has always been (the others: 4 significant digits).
ACCURACIES = frozenset({"accuracy", "balanced_accuracy"})


def fmt_cell(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _mean_std(g: dict, m: str, d: int = 4) -> str:
    return f"{fmt_cell(g[f'{m}_mean'], d)} ± {fmt_cell(g[f'{m}_std'], d)}"


def metric_label(metric: str) -> str:
    """A metric in a heading: ``acc`` (accuracy, as always), ``rmse``, ``balanced accuracy``..."""
    return short_name(metric).replace("_", " ")


def fmt_metric(value: Any, metric: str) -> str:
    """Accuracies to 4 decimals (as always), any other metric to 4 significant digits (an RMSE
    may be 0.0123 or 1234)."""
    if metric in ACCURACIES or value is None or not isinstance(value, float) or math.isnan(value):
        return fmt_cell(value)
    return f"{value:.4g}"


def _metric_mean_std(g: dict, column: str, metric: str) -> str:
    return f"{fmt_metric(g[f'{column}_mean'], metric)} ± {fmt_metric(g[f'{column}_std'], metric)}"


def winner_tables(rows: list[dict], groups: list[dict], metrics: list[str] = ("accuracy",)) -> list[str]:
    """Per configuration and per job: the winner's size and, for each of `metrics` (`row_metrics`),
    its value with inherited weights (val) and retrained (test)."""
    labels = [metric_label(m) for m in metrics]
    pairs = [(m, f"{split}_{short_name(m)}") for m in metrics for split in ("val", "test")]
    lines = [
        "## Per configuration (mean ± std over seeds)",
        "",
        "| config | n | "
        + "".join(f"val {x} (inherited) | test {x} (retrained) | " for x in labels)
        + "params | wall s |",
        "|---|---|" + "---|---|" * len(metrics) + "---|---|",
    ]
    for g in groups:
        lines.append(
            f"| {g['config']} | {g['n']} | "
            + "".join(f"{_metric_mean_std(g, c, m)} | " for m, c in pairs)
            + f"{_mean_std(g, 'params', 0)} | {_mean_std(g, 'wall_s', 1)} |"
        )
    lines += [
        "",
        "## Jobs",
        "",
        "| job | config | seed | status | arch | params | "
        + "".join(f"val {x} | test {x} | " for x in labels)
        + "wall s |",
        "|---|---|---|---|---|---|" + "---|---|" * len(metrics) + "---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['job']} | {r['config']} | {fmt_cell(r.get('seed'))} | {r['status']} | {fmt_cell(r.get('arch'))} | "
            f"{fmt_cell(r.get('params'))} | "
            + "".join(f"{fmt_metric(r.get(c), m)} | " for m, c in pairs)
            + f"{fmt_cell(r.get('wall_s'), 1)} |"
        )
    return lines


def _gap_text(gap: float | None, interval: list[float] | None) -> str:
    """``-0.030 [-0.104, +0.041]``: tau minus size's, with its interval when there is one; three
    digits, so that a bound of -0.002 does not read +0.00."""
    if gap is None:
        return "-"
    if not interval or interval[0] is None:
        return signed(gap, 3)
    return f"{signed(gap, 3)} [{signed(interval[0], 3)}, {signed(interval[1], 3)}]"


def _gap(row: dict) -> str:
    """A rank job's row: its tau minus size's (see `_gap_text`)."""
    return _gap_text(row.get("size_gap"), [row.get("size_gap_low"), row.get("size_gap_high")])


def tau_names(taus: list[str]) -> list[str]:
    return ["all" if t == "tau" else t.removeprefix("tau_") for t in taus[:-1]] + ["by size alone"]


def rank_tables(rows: list[dict], groups: list[dict], taus: list[str], metric: str = "accuracy") -> list[str]:
    """The tau tables of rank jobs that ranked by `metric` (its name, or names: ``ranked_by``)."""
    names = tau_names(taus)
    head = " | ".join(names)
    against = "" if metric == "accuracy" else f" vs stand-alone {metric}"
    lines = [
        f"## Ranking fidelity per configuration (Kendall tau{against}, mean ± std over the supernets' seeds)",
        "",
        f"| config | n | {head} |",
        "|---|---|" + "---|" * len(names),
    ]
    lines += [f"| {g['config']} | {g['n']} | " + " | ".join(_mean_std(g, t, 3) for t in taus) + " |" for g in groups]
    lines += [
        "",
        "## Jobs",
        "",
        "*minus size*: the job's tau minus the params-only tau, with its 95% bootstrap interval over the archs",
        "(the supernet beats or trails size only where the interval excludes 0).",
        "",
        f"| job | config | seed | {head} | minus size | wall s |",
        "|---|---|---|" + "---|" * (len(names) + 2),
    ]
    lines += [
        f"| {r['job']} | {r['config']} | {fmt_cell(r.get('seed'))} | "
        + " | ".join(fmt_cell(r.get(t), 3) for t in taus)
        + f" | {_gap(r)} | {fmt_cell(r.get('wall_s'), 1)} |"
        for r in rows
        if r["status"] == "ok"
    ]
    return lines


def pooled_tables(pools: list[Pool]) -> list[str]:
    """One row per pool and predictor: the supernet's ranking over the union of its samples."""
    bands = list(pools[0].report["bands"])
    lines = [
        "",
        "## Pooled over samples (each supernet's rank jobs of different `seed` as one sample)",
        "",
        "More archs, tighter intervals: *minus size* is tau minus the params-only tau with its 95%",
        "bootstrap interval over the pooled archs. *+ size (mean rank)* ranks each arch by the mean of its",
        "rank by the score and its rank by parameter count (no stand-alone result used): above size, it",
        "shows the supernet knows something size does not. Every report in `pooled.json`.",
        "",
        "| supernet | samples | archs | ranked by | tau, 95% | by size | minus size, 95% | "
        + " | ".join(bands)
        + " | noise ceiling |",
        "|---|---|---|---|---|---|---|" + "---|" * len(bands) + "---|",
    ]
    for pool in pools:
        for name, report in pool.rankings():
            a = report["all"]
            ci = a["kendall_tau_ci"]
            tau = fmt_cell(a["kendall_tau"], 3) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
            lines.append(
                f"| {pool.ckpt_path} | {','.join(map(str, pool.samples))} | {report['n']} | "
                f"{name} | {tau} | "
                f"{fmt_cell(a['params_tau'], 3)} | {_gap_text(a['params_gap'], a['params_gap_ci'])} | "
                + " | ".join(fmt_cell(report["bands"][b].get("kendall_tau"), 2) for b in bands)
                + f" | {fmt_cell(a['noise_tau'], 2)} |"
            )
    return lines


def search_table(curves: dict[str, dict[str, list[list[float]]]]) -> list[str]:
    """Per metric searched (`best_so_far_curves`), per strategy: runs, evaluations and the final
    best-so-far (mean ± std over runs)."""
    lines = []
    for metric, by_strategy in curves.items():
        name = "accuracy" if metric == "accuracy" else metric.replace("_", " ")
        lower = ", lower is better" if metric in LOWER_IS_BETTER else ""
        lines += [
            "",
            f"## Search strategies (best-so-far validation {name}{lower})",
            "",
            "| strategy | runs | evaluations | final best (mean ± std) |",
            "|---|---|---|---|",
        ]
        for strategy, runs in sorted(by_strategy.items()):
            n = min(len(c) for c in runs)
            finals = [c[-1] for c in runs]
            spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
            digits = ".4f" if metric in ACCURACIES else ".4g"  # NaN (never feasible) as "nan", as always
            lines.append(
                f"| {strategy} | {len(runs)} | {n} | {statistics.fmean(finals):{digits}} ± {spread:{digits}} |"
            )
    return lines
