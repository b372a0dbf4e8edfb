"""What a finished (or interrupted) pipeline run reports: ``result.json`` and ``summary.md``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from supernet import signals
from supernet.commands.pipeline_record import PipelineRun
from supernet.core.metrics import METRICS, Metric
from supernet.core.space import arch_str
from supernet.train.retrain import AUTO_KEYS


def metric_of(searched: dict[str, Any]) -> Metric:
    """The metric a search result ranked by (a search result without one ranked by accuracy)."""
    return METRICS[searched.get("metric") or "accuracy"]


def _winner(run: PipelineRun) -> dict[str, Any]:
    best, metrics = run.results["search"]["best"], run.results["retrain"]["metrics"]
    metric = metric_of(run.results["search"])
    name = metric.short
    winner = {
        "arch": list(best["arch"]),
        "params": best["params"],
        "flops": best["flops"],
        "metric": metric.name,
        metric.key: best[metric.key],  # inherited weights, what the search selected on
        f"test_{name}_inherited": run.results["export"].get(f"test_{name}_inherited"),
        f"val_{name}_retrained": metrics[f"val_{name}"],
        f"test_{name}": metrics[f"test_{name}"],  # retrained: the headline figure
    }
    # Measured; re-ranked (search.finetune.top).
    for key in ("latency_ms", f"finetuned_{name}", "finetuned_loss"):
        if key in best:
            winner[key] = best[key]
    return winner


def run_result(run: PipelineRun, wall_s: float) -> dict[str, Any]:
    retrained, metric = run.results["retrain"], metric_of(run.results["search"])
    result = {
        "task": "pipeline",
        "status": "ok",
        "data": run.bundle.summary(),
        "seed": int(run.cfg.seed),
        "winner": _winner(run),
        "constraints": run.results["search"].get("constraints"),
        "phases": run.phases,
        # A resume: the finished phases' own wall times (kept) and this invocation's ones, summed.
        "wall_s": round(sum(p["wall_s"] for p in run.phases.values()), 2) if run.resuming else wall_s,
        "resumed": run.resuming,
        "ran": run.ran,  # the phases this invocation ran (on a resume, the others were finished)
        "invocation_wall_s": wall_s,
        "metric": metric.name,
        "objective": retrained["metrics"][f"val_{metric.short}"],
        "paths": {
            "run_dir": str(run.out_dir),
            "checkpoint": str(run.supernet.path),
            "search": str(run.out_dir / "search"),
            "subnet": run.results["export"]["path"],
            "retrained_subnet": retrained["paths"]["subnet"],
        },
    }
    if retrained.get("compare"):
        result["compare"] = retrained["compare"]
    if "ensemble" in run.results:
        result["ensemble"] = run.results["ensemble"]["ensemble"]
        result["paths"]["ensemble"] = result["ensemble"]["path"]
    result["paths"]["model"] = result["paths"].get("ensemble", result["paths"]["retrained_subnet"])
    return result


def interrupted_result(run: PipelineRun, exc: signals.Interrupted, wall_s: float) -> dict[str, Any]:
    """``result.json`` of a run a signal stopped: where, and the phases finished so far (a resume
    keeps their wall times)."""
    return {
        "task": "pipeline",
        "status": "interrupted",
        "signal": exc.name,
        "phase": exc.phase,
        "phases": {**run.recorded, **run.phases},
        "ran": run.ran,
        "invocation_wall_s": wall_s,
        "resumed": run.resuming,
        "resume": f"supernet resume={run.out_dir}",
        "paths": {"run_dir": str(run.out_dir)},
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _figure(metric: Metric) -> Callable[[float | None], str]:
    """How summary.md writes the metric: accuracies as percentages, the others as numbers."""
    if metric.name in ("accuracy", "balanced_accuracy"):
        return _pct
    return lambda x: "n/a" if x is None else f"{x:.4g}"


def _retrain_recipe(phase: dict[str, Any]) -> str:
    """``inherited, 10 epochs, dropout 0.2`` / ``..., label smoothing 0.1``: the nonzero regularisers."""
    parts = [phase["init"], f"{phase['epochs']} epochs"]
    parts += [f"{k.replace('_', ' ')} {phase[k]:g}" for k in AUTO_KEYS if phase.get(k)]
    return ", ".join(parts)


def summary_md(r: dict[str, Any]) -> str:
    w, p = r["winner"], r["phases"]
    metric = METRICS[r.get("metric") or "accuracy"]
    name, fmt = metric.short, _figure(metric)
    arch = arch_str(w["arch"])
    tuned = f"finetuned_{name}"
    label = "" if metric.name == "accuracy" else f"{name} "  # "val 97.5%" or "val rmse 2.31"
    lines = [
        "# supernet run",
        "",
        f"- data: {r['data']}",
        f"- winner: **{arch}** ({w['params']:,} params, {w['flops']:,} FLOPs/sample)"
        + (f", constraints {r['constraints']}" if any((r.get("constraints") or {}).values()) else ""),
        f"- inherited weights: val {label}{fmt(w[metric.key])}, test {label}{fmt(w[f'test_{name}_inherited'])}"
        + (f"; after the re-ranking fine-tune: val {fmt(w[tuned])}" if tuned in w else ""),
        f"- retrained ({_retrain_recipe(p['retrain'])}): "
        f"val {label}{fmt(w[f'val_{name}_retrained'])}, **test {label}{fmt(w[f'test_{name}'])}**",
        *_ensemble_lines(r, fmt, label),
        f"- search: {p['search']['strategy']}, {p['search']['n_evaluations']} candidates scored",
        "",
        "| phase | wall s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {ph.get('wall_s', 0):.1f} |" for name, ph in p.items()]
    lines += [
        f"| total | {r['wall_s']:.1f} |",
        "",
        *_model_lines(r["paths"]),
        "",
    ]
    return "\n".join(lines)


def _model_lines(paths: dict[str, str]) -> list[str]:
    """Where the run's model is: the ensemble when it built one (``retrain.ensemble``; on a small
    table by default), the retrained winner otherwise."""
    load = "load with `supernet.load_subnet`"
    if "ensemble" not in paths:
        return [f"model: `{paths['retrained_subnet']}` ({load})"]
    return [
        f"model: `{paths['ensemble']}` (the members' average; {load})",
        "",
        f"winner alone: `{paths['retrained_subnet']}`",
    ]


def _ensemble_lines(r: dict[str, Any], fmt: Callable[[float | None], str], label: str) -> list[str]:
    """summary.md's ensemble line, beside the winner's (none without ``retrain.ensemble``)."""
    e = r.get("ensemble")
    if not e:
        return []
    name = METRICS[r.get("metric") or "accuracy"].short
    val = "out-of-fold val" if e["from"] == "folds" else "val"
    return [
        f"- ensemble of {e['k']} ({e['from']}): {len(e['members'])} members, {e['params']:,} params, "
        f"{val} {label}{fmt(e[f'val_{name}'])}, **test {label}{fmt(e[f'test_{name}'])}**"
    ]
