"""Aggregate a sweep: one row per job, mean and spread per configuration, and plots.

    supernet-report outputs/pipeline/multiruns/<stamp>      # -> report.md, report.csv, report.png

A job is any directory holding a ``result.json`` (pipeline, search, train or rank runs). Its
configuration is read from Hydra's ``.hydra/overrides.yaml``; jobs that differ only in ``seed``
form one configuration, whose mean and standard deviation are reported. Failed jobs are listed
with their error. When the jobs ran searches, ``report_search.png`` shows best-so-far validation
accuracy against the number of evaluations for each strategy (mean over seeds).

Rank jobs (``supernet-rank``) report Kendall tau, overall, per parameter band and by size alone.
Their configuration is the one of the run that trained their supernet (found above
``ckpt_path``) plus their own overrides, so the supernet's seed is the replicate: how much tau
moves with it is the spread to read before trusting one supernet's ranking::

    supernet-train -m data=fashion_mnist model.heads=per_depth,shared seed=0,1,2
    supernet-rank -m ckpt_path=<the six train job dirs, comma-separated> rank.cache=sa.json
    supernet-report outputs/rank/multiruns/<stamp>      # tau mean ± std per heads setting

Rank jobs of one supernet over several samples (``supernet-rank -m ckpt_path=<it> seed=0,1,2``)
are also pooled into one larger sample, for tighter intervals: a "Pooled over samples" table and
``pooled.json`` (``supernet/pooling.py``).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from supernet.core.space import arch_str
from supernet.errors import UsageError
from supernet.fidelity.fmt import signed
from supernet.fidelity.pooling import Pool, pool_doc, pool_rank_jobs
from supernet.io.files import write_json

COLUMNS = ["job", "config", "seed", "status", "arch", "params", "flops", "val_acc", "test_acc", "wall_s", "error"]
METRICS = ["val_acc", "test_acc", "params", "wall_s"]
# Rank jobs: tau minus the params-only tau, and its 95% bootstrap interval (None without one).
GAP_COLUMNS = ["size_gap", "size_gap_low", "size_gap_high"]


def find_jobs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise UsageError(f"supernet-report: {root} is not a directory")
    jobs = sorted(
        {
            p.parent
            for p in root.rglob("result.json")
            if ".hydra" not in p.parts and p.parent.name not in ("search", "retrain", "export", "train", "best")
        },
        key=lambda p: (len(p.parts), _natural(p.name)),
    )
    # A pipeline job keeps its phases in subdirectories: report the job, not its phases.
    jobs = [j for j in jobs if not any(parent in jobs for parent in j.parents)]
    if not jobs:
        raise UsageError(
            f"supernet-report: no job with a result.json under {root}; "
            "pass a multirun dir such as outputs/pipeline/multiruns/<stamp>"
        )
    return jobs


def _natural(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def job_overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(o) for o in (yaml.safe_load(path.read_text()) or [])]


@dataclass(frozen=True)
class Job:
    """One job of the sweep, read once: its result (None with `unreadable` saying why) and the
    overrides that define its configuration."""

    path: Path
    result: dict[str, Any] | None
    unreadable: str | None
    overrides: list[str]


def load_job(path: Path) -> Job:
    try:
        result, unreadable = json.loads((path / "result.json").read_text()), None
    except (OSError, json.JSONDecodeError) as exc:
        result, unreadable = None, f"unreadable result.json ({exc})"
    return Job(path, result, unreadable, effective_overrides(path, result))


def shared_overrides(jobs: list[Job]) -> list[str]:
    """Overrides every job has (the sweep's fixed settings): shown once, not in every row."""
    if not jobs:
        return []
    common = set.intersection(*(set(j.overrides) for j in jobs))
    return [o for o in jobs[0].overrides if o in common and not o.startswith("seed=")]


def effective_overrides(job: Path, result: dict[str, Any] | None) -> list[str]:
    """A job's overrides; for a rank job, its supernet's training overrides and its own, less the
    checkpoint path (see the module docstring)."""
    own = job_overrides(job)
    if not result or result.get("task") != "rank" or not result.get("ckpt_path"):
        return own
    trained = next(
        (job_overrides(d) for d in list(Path(result["ckpt_path"]).parents)[:3] if (d / ".hydra").is_dir()), []
    )
    own = [o for o in own if not o.startswith(("ckpt_path=", "seed="))]
    return trained + [o for o in own if o not in trained]


def summarize_job(job: Job, root: Path, shared: list[str] | None = None) -> dict[str, Any]:
    seed = next((o.split("=", 1)[1] for o in job.overrides if o.startswith("seed=")), None)
    varying = [o for o in job.overrides if not o.startswith("seed=") and o not in (shared or [])]
    config = " ".join(varying) or "(defaults)"
    row: dict[str, Any] = {"job": str(job.path.relative_to(root)) or ".", "config": config, "seed": seed}
    result = job.result
    if result is None:
        return {**row, "status": "failed", "error": job.unreadable}
    row["status"] = result.get("status", "ok")
    if row["status"] != "ok":
        row["error"] = result.get("error") or _first_line(job.path / "error.txt")
        return row
    if result.get("task") == "rank":
        metrics = result.get("metrics") or {}
        bands = {f"tau_{name}": tau for name, tau in (result.get("bands") or {}).items()}
        row.update(tau=result.get("objective"), tau_params=metrics.get("params_tau"), **bands)
        low, high = result.get("params_gap_ci") or (None, None)
        row.update(size_gap=metrics.get("params_gap"), size_gap_low=low, size_gap_high=high)
        row["wall_s"] = (result.get("timing") or {}).get("total_s")
        return row
    winner = result.get("winner") or result.get("best") or {}
    metrics = result.get("metrics") or {}
    row.update(
        arch=arch_str(winner.get("arch", [])) or None,
        params=winner.get("params"),
        flops=winner.get("flops"),
        val_acc=winner.get("val_acc", metrics.get("val/acc_max")),
        test_acc=winner.get("test_acc"),
        wall_s=result.get("wall_s") or result.get("wall_time_s"),
    )
    return row


def _first_line(path: Path) -> str | None:
    return path.read_text().splitlines()[0] if path.is_file() else None


def rank_metrics(rows: list[dict]) -> list[str]:
    """The tau columns of rank jobs: overall, each band in the order met, then size alone."""
    bands = dict.fromkeys(k for r in rows for k in r if k.startswith("tau_") and k != "tau_params")
    return ["tau", *bands, "tau_params"] if any("tau" in r for r in rows) else []


def aggregate(rows: list[dict], metrics: list[str] = METRICS) -> list[dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["status"] == "ok":
            groups[r["config"]].append(r)
    out = []
    for config, members in groups.items():
        agg: dict[str, Any] = {"config": config, "n": len(members)}
        for m in metrics:
            values = [float(r[m]) for r in members if r.get(m) is not None]
            agg[f"{m}_mean"] = statistics.fmean(values) if values else None
            agg[f"{m}_std"] = statistics.stdev(values) if len(values) > 1 else (0.0 if values else None)
        out.append(agg)
    return out


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def best_so_far_curves(jobs: list[Path], rows: list[dict]) -> dict[str, list[list[float]]]:
    """strategy -> list of best-so-far curves (one per job) from each job's history.csv."""
    curves: dict[str, list[list[float]]] = defaultdict(list)
    for job in jobs:
        for history in (job / "history.csv", job / "search" / "history.csv"):
            if not history.is_file():
                continue
            result = (
                json.loads((history.parent / "result.json").read_text())
                if (history.parent / "result.json").is_file()
                else {}
            )
            strategy = result.get("strategy") or "search"
            best, curve = -1.0, []
            with open(history) as f:
                for rec in csv.DictReader(f):
                    if rec.get("feasible", "True") in ("True", "true", "1") and rec.get("val_acc"):
                        best = max(best, float(rec["val_acc"]))
                    curve.append(best if best >= 0 else float("nan"))
            if curve:
                curves[strategy].append(curve)
            break
    return curves


def _mean_std(g: dict, m: str, d: int = 4) -> str:
    return f"{_fmt(g[f'{m}_mean'], d)} ± {_fmt(g[f'{m}_std'], d)}"


def _winner_tables(rows: list[dict], groups: list[dict]) -> list[str]:
    lines = [
        "## Per configuration (mean ± std over seeds)",
        "",
        "| config | n | val acc (inherited) | test acc (retrained) | params | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        lines.append(
            f"| {g['config']} | {g['n']} | {_mean_std(g, 'val_acc')} | {_mean_std(g, 'test_acc')} | "
            f"{_mean_std(g, 'params', 0)} | {_mean_std(g, 'wall_s', 1)} |"
        )
    lines += [
        "",
        "## Jobs",
        "",
        "| job | config | seed | status | arch | params | val acc | test acc | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['job']} | {r['config']} | {_fmt(r.get('seed'))} | {r['status']} | {_fmt(r.get('arch'))} | "
            f"{_fmt(r.get('params'))} | {_fmt(r.get('val_acc'))} | {_fmt(r.get('test_acc'))} | "
            f"{_fmt(r.get('wall_s'), 1)} |"
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


def _tau_names(taus: list[str]) -> list[str]:
    return ["all" if t == "tau" else t.removeprefix("tau_") for t in taus[:-1]] + ["by size alone"]


def _rank_tables(rows: list[dict], groups: list[dict], taus: list[str]) -> list[str]:
    names = _tau_names(taus)
    head = " | ".join(names)
    lines = [
        "## Ranking fidelity per configuration (Kendall tau, mean ± std over the supernets' seeds)",
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
        f"| {r['job']} | {r['config']} | {_fmt(r.get('seed'))} | "
        + " | ".join(_fmt(r.get(t), 3) for t in taus)
        + f" | {_gap(r)} | {_fmt(r.get('wall_s'), 1)} |"
        for r in rows
        if r["status"] == "ok"
    ]
    return lines


def _pooled_tables(pools: list[Pool]) -> list[str]:
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
            tau = _fmt(a["kendall_tau"], 3) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
            lines.append(
                f"| {pool.ckpt_path} | {','.join(map(str, pool.samples))} | {report['n']} | "
                f"{name} | {tau} | "
                f"{_fmt(a['params_tau'], 3)} | {_gap_text(a['params_gap'], a['params_gap_ci'])} | "
                + " | ".join(_fmt(report["bands"][b].get("kendall_tau"), 2) for b in bands)
                + f" | {_fmt(a['noise_tau'], 2)} |"
            )
    return lines


def _winner_figure(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    metric = "test_acc" if any(r.get("test_acc") is not None for r in rows) else "val_acc"
    by_config: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["status"] == "ok" and r.get("params") and r.get(metric) is not None:
            by_config[r["config"]].append(r)
    for config, members in by_config.items():
        ax.scatter([m["params"] for m in members], [m[metric] for m in members], label=config, s=30)
    ax.set_xscale("log")
    ax.set_xlabel("winner's parameters")
    ax.set_ylabel("test accuracy (retrained)" if metric == "test_acc" else "validation accuracy (inherited)")
    ax.set_title("Winner of each job")
    ax.grid(alpha=0.3)
    if by_config:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _rank_figure(groups: list[dict], taus: list[str], path: Path) -> None:
    """Tau per configuration (mean, bars: std over seeds), overall and per band; the dashed line is
    parameter count alone."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(7.5, 1.6 * len(groups) + 3), 4.5))
    ax = fig.subplots()
    shown = taus[:-1]
    width = 0.8 / len(shown)
    for k, (tau, name) in enumerate(zip(shown, _tau_names(taus), strict=False)):
        xs = [i + (k - (len(shown) - 1) / 2) * width for i in range(len(groups))]
        means = [g[f"{tau}_mean"] if g[f"{tau}_mean"] is not None else math.nan for g in groups]
        stds = [g[f"{tau}_std"] or 0.0 for g in groups]
        ax.errorbar(xs, means, yerr=stds, fmt="o", capsize=3, label=name)
    for i, g in enumerate(groups):
        if g["tau_params_mean"] is not None:
            ax.hlines(g["tau_params_mean"], i - 0.45, i + 0.45, colors="grey", linestyles="dashed")
    ax.plot([], [], color="grey", linestyle="dashed", label="parameter count alone")
    ax.set_xticks(range(len(groups)), [g["config"] for g in groups], fontsize=7, rotation=10)
    ax.set_ylabel("Kendall tau vs stand-alone accuracy")
    sizes = {g["n"] for g in groups}
    ax.set_title("Ranking fidelity" + (f" ({sizes.pop()} supernets each)" if len(sizes) == 1 else ""))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the bars use the whole range
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_report(root: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    jobs = [load_job(path) for path in find_jobs(root)]
    shared = shared_overrides(jobs)
    rows = [summarize_job(j, root, shared) for j in jobs]
    taus = rank_metrics(rows)
    metrics = [*taus, *METRICS] if taus else METRICS
    groups = aggregate(rows, metrics)
    paths = {"md": root / "report.md", "csv": root / "report.csv", "png": root / "report.png"}

    with open(paths["csv"], "w", newline="") as f:
        columns = COLUMNS[:-1] + taus + (GAP_COLUMNS if taus else []) + COLUMNS[-1:]
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k) for k in columns})
        f.write("\n")
        agg_cols = ["config", "n"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
        agg_writer = csv.DictWriter(f, fieldnames=agg_cols)
        agg_writer.writeheader()
        agg_writer.writerows(groups)

    failed = [r for r in rows if r["status"] != "ok"]
    lines = [
        f"# supernet report: {root}",
        "",
        f"{len(rows)} jobs, {len(rows) - len(failed)} ok, {len(failed)} failed.",
        "",
    ]
    if shared:
        lines += ["Shared by every job: `" + " ".join(shared) + "`", ""]
    if taus:  # a sweep of supernet-rank jobs
        lines += _rank_tables(rows, groups, taus)
        _rank_figure(groups, taus, paths["png"])
        pools = pool_rank_jobs([j.path for j in jobs])
        if pools:
            paths["pooled"] = root / "pooled.json"
            write_json(paths["pooled"], {"pools": [pool_doc(p, root) for p in pools]})
            lines += _pooled_tables(pools)
        image = "![tau per configuration](report.png)"
    else:
        lines += _winner_tables(rows, groups)
        _winner_figure(rows, paths["png"])
        image = "![winners](report.png)"
    if failed:
        lines += ["", "## Failed jobs", ""] + [f"- `{r['job']}` ({r['config']}): {r.get('error')}" for r in failed]

    curves = best_so_far_curves([j.path for j in jobs], rows)
    if curves:
        paths["search_png"] = root / "report_search.png"
        fig = Figure(figsize=(6.5, 4.5))
        ax = fig.subplots()
        lines += [
            "",
            "## Search strategies (best-so-far validation accuracy)",
            "",
            "| strategy | runs | evaluations | final best (mean ± std) |",
            "|---|---|---|---|",
        ]
        for strategy, runs in sorted(curves.items()):
            n = min(len(c) for c in runs)
            mean = [statistics.fmean(c[i] for c in runs) for i in range(n)]
            ax.plot(range(1, n + 1), mean, label=f"{strategy} (n={len(runs)})")
            finals = [c[-1] for c in runs]
            spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
            lines.append(f"| {strategy} | {len(runs)} | {n} | {statistics.fmean(finals):.4f} ± {spread:.4f} |")
        ax.set_xscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best validation accuracy so far (inherited)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(paths["search_png"], dpi=120)
        lines += ["", "![best so far](report_search.png)"]
    lines += ["", image, ""]
    paths["md"].write_text("\n".join(lines))
    return paths
