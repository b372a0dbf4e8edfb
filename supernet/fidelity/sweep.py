"""The jobs of a sweep, read for `supernet-report`: one row per job and the mean per configuration.

A job is any directory holding a ``result.json`` (pipeline, search, train or rank runs). Its
configuration is read from Hydra's ``.hydra/overrides.yaml``; jobs that differ only in ``seed``
form one configuration. A rank job's configuration is that of the run that trained its supernet
(found above ``ckpt_path``) plus its own overrides, so the supernet's seed is the replicate.
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

from supernet.core.metrics import LOWER_IS_BETTER, short_name
from supernet.core.space import arch_str
from supernet.errors import UsageError

# report.csv's columns and the aggregated figures of an accuracy sweep; other metrics put their
# own fields in place of val_acc, test_acc (`sweep_columns`, `aggregated`).
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
        key=lambda p: (len(p.parts), _natural(p.name), str(p)),  # ties (a/0, b/0): by path, not by chance
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


def read_result(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A job's result.json as (object, None), or (None, why it is unreadable): not UTF-8, not
    JSON, or JSON that is not an object."""
    try:
        result = json.loads((path / "result.json").read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable result.json ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if not isinstance(result, dict):
        return None, f"unreadable result.json (JSON {type(result).__name__}, not an object)"
    return result, None


def load_job(path: Path) -> Job:
    result, unreadable = read_result(path)
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
        row["metric"] = result.get("metric") or "accuracy"  # what the job ranked by (before rank.metric: accuracy)
        low, high = result.get("params_gap_ci") or (None, None)
        row.update(size_gap=metrics.get("params_gap"), size_gap_low=low, size_gap_high=high)
        row["wall_s"] = (result.get("timing") or {}).get("total_s")
        return row
    return {**row, **winner_fields(result)}


def winner_fields(result: dict[str, Any]) -> dict[str, Any]:
    """A pipeline, search or train job's winner (its supernet's largest arch for a train job):
    its size, its metric, and the metric's figures as ``val_<short>`` (inherited weights) and
    ``test_<short>`` (retrained), ``<short>`` being `short_name` of the metric."""
    winner = result.get("winner") or result.get("best") or {}
    metrics = result.get("metrics") or {}
    # A train job names no metric: its supernet logged val/rmse_max under regression.
    metric = result.get("metric") or ("rmse" if "val/rmse_max" in metrics else "accuracy")
    name = short_name(metric)
    return {
        "arch": arch_str(winner.get("arch", [])) or None,
        "params": winner.get("params"),
        "flops": winner.get("flops"),
        "metric": metric,
        f"val_{name}": winner.get(f"val_{name}", metrics.get(f"val/{name}_max")),
        f"test_{name}": winner.get(f"test_{name}"),
        "wall_s": result.get("wall_s") or result.get("wall_time_s"),
    }


def metric_key(metric: str) -> str:
    """The field a search record and history.csv keep the metric under (``val_acc``, ``val_rmse``)."""
    return f"val_{short_name(metric)}"


def row_metrics(rows: list[dict]) -> list[str]:
    """The metrics of the sweep's pipeline, search and train jobs, in the order met; accuracy
    when there is none (rank jobs report tau, whatever they ranked by)."""
    met = dict.fromkeys(r["metric"] for r in rows if r["status"] == "ok" and "tau" not in r and r.get("metric"))
    return list(met) or ["accuracy"]


def value_columns(metrics: list[str]) -> list[str]:
    """``val_<short>``, ``test_<short>`` for each metric: ``val_acc``, ``test_acc`` for accuracy."""
    return [f"{split}_{short_name(m)}" for m in metrics for split in ("val", "test")]


def sweep_columns(metrics: list[str]) -> list[str]:
    """report.csv's job columns for `metrics` (`COLUMNS` for accuracy)."""
    return [*COLUMNS[:7], *value_columns(metrics), *COLUMNS[9:]]


def aggregated(metrics: list[str]) -> list[str]:
    """The figures whose mean and std each configuration gets (`METRICS` for accuracy)."""
    return [*value_columns(metrics), *METRICS[2:]]


def _first_line(path: Path) -> str | None:
    return path.read_text().splitlines()[0] if path.is_file() else None


def ranked_by(rows: list[dict]) -> str:
    """The metrics the rank jobs ranked by, for a heading: ``accuracy``, ``rmse``, ``accuracy, rmse``."""
    return ", ".join(sorted({r["metric"] for r in rows if r.get("metric")})) or "accuracy"


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


def best_so_far_curves(jobs: list[Path], rows: list[dict] | None = None) -> dict[str, dict[str, list[list[float]]]]:
    """metric -> strategy -> best-so-far curves (one per job) from each job's history.csv: the
    highest value of the job's search metric so far, the lowest where smaller is better
    (`LOWER_IS_BETTER`); NaN before the first feasible arch. `rows`: unused, kept for callers."""
    curves: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
    for job in jobs:
        for history in (job / "history.csv", job / "search" / "history.csv"):
            if not history.is_file():
                continue
            result = read_result(history.parent)[0] or {}
            metric = result.get("metric") or "accuracy"  # a search before search.metric: accuracy
            curve = best_so_far(history, metric_key(metric), metric in LOWER_IS_BETTER)
            if curve:
                curves[metric][result.get("strategy") or "search"].append(curve)
            break
    return {metric: dict(by_strategy) for metric, by_strategy in curves.items()}


def best_so_far(history: Path, key: str, lower_is_better: bool) -> list[float]:
    """The best feasible `key` of history.csv after each evaluation (NaN before the first)."""
    pick = min if lower_is_better else max
    best, curve = math.nan, []
    with open(history) as f:
        for rec in csv.DictReader(f):
            if rec.get("feasible", "True") in ("True", "true", "1") and rec.get(key):
                value = float(rec[key])
                best = value if math.isnan(best) else pick(best, value)
            curve.append(best)
    return curve
