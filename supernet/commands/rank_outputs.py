"""What `supernet-rank` writes besides rank.json: rank.csv, rank.png and its TensorBoard run.

rank.csv's score columns are named after the metric (`score_column`): ``inherited_acc``,
``standalone_acc_seed0``, ``standalone_acc_mean`` for accuracy (what it always wrote),
``inherited_rmse``, ``standalone_rmse_seed0``, ``standalone_rmse_mean`` for RMSE, and so on; each
holds the metric's own values (an RMSE in the targets' units, lower is better).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from supernet.core.space import arch_str
from supernet.fidelity.metrics import band_names, band_of, metric_doc, score_column


def rank_rows(archs, params, inherited, by_seed, bands, finetuned=None, metric=None) -> list[dict]:
    """One row per arch: its size and band, and its scores in `metric`'s own values (default
    accuracy) under the metric's columns (see the module docstring)."""
    column = score_column(metric)
    rows = []
    for i, arch in enumerate(archs):
        values = {f"standalone_{column}_seed{s}": by_seed[s][i] for s in by_seed}
        rows.append(
            {
                "arch": arch_str(arch),
                "depth": len(arch),
                "params": params[i],
                "band": band_of(params[i], bands),
                f"inherited_{column}": inherited[i],
                **({f"finetuned_{k}": v for k, v in finetuned[i].items()} if finetuned is not None else {}),
                **values,
                f"standalone_{column}_mean": statistics.fmean(values.values()),
            }
        )
    return rows


def write_rank_csv(path: Path, rows: list[dict]) -> None:
    """rank.csv: the rows of `rank_rows`, their keys the columns (in their order)."""
    fields = list(rows[0])
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def rank_figure(rows: list[dict], report: dict, bands):
    """Inherited (x) vs mean stand-alone score (y) in the report's metric, one colour per band; a
    vertical bar spans the seeds' scores of each arch (the noise any ranking has to live with)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    a = report["all"]
    metric = metric_doc(report.get("metric"))
    column, key = score_column(metric), metric["key"]
    inherited, mean = f"inherited_{column}", f"standalone_{column}_mean"
    fig = Figure(figsize=(6.0, 4.8), layout="constrained")
    ax = fig.subplots()
    seed_cols = [k for k in rows[0] if k.startswith(f"standalone_{column}_seed")]
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for j, name in enumerate(band_names(bands)):
        sel = [r for r in rows if r["band"] == name]
        if not sel:
            continue
        b = report["bands"][name]
        c = colours[j % len(colours)]
        label = f"{name} {b['range']} (n={len(sel)}, tau {_fmt(b.get('kendall_tau'))})"
        ax.scatter([r[inherited] for r in sel], [r[mean] for r in sel], s=18, c=c, label=label)
        if len(seed_cols) > 1:
            ax.vlines(
                [r[inherited] for r in sel],
                [min(r[k] for k in seed_cols) for r in sel],
                [max(r[k] for k in seed_cols) for r in sel],
                colors=c, alpha=0.4, lw=1,
            )  # fmt: skip
    ax.set_xlabel(f"inherited-weight {key} (supernet)")
    ax.set_ylabel(f"stand-alone {key} (mean of {len(seed_cols)} seed{'s' * (len(seed_cols) > 1)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")  # the points run along the diagonal: this corner stays empty
    ci = a.get("kendall_tau_ci")
    ax.set_title(
        f"Kendall tau {_fmt(a['kendall_tau'])}"
        + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        + f" (params only {_fmt(a['params_tau'])}, "
        f"seed vs seed {_fmt(a['noise_tau'])}), n={a['n']}",
        fontsize=9,
    )
    return fig


def write_tensorboard(out_dir: Path, report: dict, fig, rankings: dict[str, dict]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(out_dir))
    try:
        keys = ("kendall_tau", "spearman_rho", "params_tau", "params_gap", "noise_tau", "regret", "reliability")
        for key in (*keys, *(k for k in report["all"] if k.startswith("top"))):
            value = report["all"].get(key)
            if value is not None:
                writer.add_scalar(f"rank/{key}", value, 0)
        for name, band in report["bands"].items():
            for key in ("kendall_tau", "params_tau", "noise_tau"):
                if band.get(key) is not None:
                    writer.add_scalar(f"rank/{key}_{name}", band[key], 0)
        for prefix, extra in rankings.items():
            for key in ("kendall_tau", "params_gap"):
                if extra["all"].get(key) is not None:
                    writer.add_scalar(f"rank/{prefix}_{key}", extra["all"][key], 0)
            for name, band in extra["bands"].items():
                if band.get("kendall_tau") is not None:
                    writer.add_scalar(f"rank/{prefix}_kendall_tau_{name}", band["kendall_tau"], 0)
        writer.add_text("rank/verdict", report["verdict"], 0)
        writer.add_figure("rank/scatter", fig, global_step=0, close=False)
    finally:
        writer.close()
