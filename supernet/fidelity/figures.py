"""The figures of `supernet-report` (matplotlib's `Figure`, no pyplot): each job's winner, tau per
configuration, and the search strategies' best-so-far curves."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path

from supernet.core.metrics import LOWER_IS_BETTER, short_name
from supernet.fidelity.tables import tau_names


def metric_words(metric: str) -> str:
    """A metric in an axis label: ``accuracy``, ``rmse``, ``balanced accuracy``..."""
    return metric.replace("_", " ")


def winner_figure(rows: list[dict], path: Path, metrics: list[str] = ("accuracy",)) -> None:
    """Each job's winner: its parameters against its test figure (retrained), or its validation
    figure (inherited) where no job has one, in the first of `metrics` (`row_metrics`); jobs of
    another metric are left out, and the title says so."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    metric, name = metrics[0], short_name(metrics[0])
    mine = [r for r in rows if r.get("metric", "accuracy") == metric]
    column = f"test_{name}" if any(r.get(f"test_{name}") is not None for r in mine) else f"val_{name}"
    by_config: dict[str, list[dict]] = defaultdict(list)
    for r in mine:
        if r["status"] == "ok" and r.get("params") and r.get(column) is not None:
            by_config[r["config"]].append(r)
    for config, members in by_config.items():
        ax.scatter([m["params"] for m in members], [m[column] for m in members], label=config, s=30)
    ax.set_xscale("log")
    ax.set_xlabel("winner's parameters")
    split = "test" if column.startswith("test_") else "validation"
    ax.set_ylabel(f"{split} {metric_words(metric)} ({'retrained' if split == 'test' else 'inherited'})")
    others = [metric_words(m) for m in metrics[1:]]
    ax.set_title(
        "Winner of each job" + (f" ({metric_words(metric)}; not shown: {', '.join(others)})" if others else "")
    )
    ax.grid(alpha=0.3)
    if by_config:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def rank_figure(groups: list[dict], taus: list[str], path: Path, metric: str = "accuracy") -> None:
    """Tau per configuration (mean, bars: std over seeds), overall and per band; the dashed line is
    parameter count alone. `metric`: what the jobs ranked by (its name, or names)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(7.5, 1.6 * len(groups) + 3), 4.5))
    ax = fig.subplots()
    shown = taus[:-1]
    width = 0.8 / len(shown)
    for k, (tau, name) in enumerate(zip(shown, tau_names(taus), strict=False)):
        xs = [i + (k - (len(shown) - 1) / 2) * width for i in range(len(groups))]
        means = [g[f"{tau}_mean"] if g[f"{tau}_mean"] is not None else math.nan for g in groups]
        stds = [g[f"{tau}_std"] or 0.0 for g in groups]
        ax.errorbar(xs, means, yerr=stds, fmt="o", capsize=3, label=name)
    for i, g in enumerate(groups):
        if g["tau_params_mean"] is not None:
            ax.hlines(g["tau_params_mean"], i - 0.45, i + 0.45, colors="grey", linestyles="dashed")
    ax.plot([], [], color="grey", linestyle="dashed", label="parameter count alone")
    ax.set_xticks(range(len(groups)), [g["config"] for g in groups], fontsize=7, rotation=10)
    ax.set_ylabel(f"Kendall tau vs stand-alone {metric}")
    sizes = {g["n"] for g in groups}
    ax.set_title("Ranking fidelity" + (f" ({sizes.pop()} supernets each)" if len(sizes) == 1 else ""))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the bars use the whole range
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def search_figure(curves: dict[str, dict[str, list[list[float]]]], path: Path) -> None:
    """Best-so-far validation metric against evaluations, the mean over runs per strategy: one
    panel per metric searched (`best_so_far_curves`), so that no curve mixes two."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5 * len(curves), 4.5))
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (metric, by_strategy) in zip(axes, curves.items(), strict=True):
        for strategy, runs in sorted(by_strategy.items()):
            n = min(len(c) for c in runs)
            mean = [statistics.fmean(c[i] for c in runs) for i in range(n)]
            ax.plot(range(1, n + 1), mean, label=f"{strategy} (n={len(runs)})")
        ax.set_xscale("log")
        ax.set_xlabel("evaluations")
        lower = ", lower is better" if metric in LOWER_IS_BETTER else ""
        ax.set_ylabel(f"best validation {metric_words(metric)} so far (inherited{lower})")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
