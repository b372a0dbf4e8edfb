"""What a search writes and returns: the chosen arch, the Pareto set, and the files in its run dir.

Every score below is the search metric's record field, `key` (``val_acc`` for accuracy, the
name supernet has always written; ``val_<name>`` for the others: ``val_rmse``, ``val_log_loss``),
taken in its direction: "best" is the highest accuracy or the lowest RMSE.

  history.csv     every scored arch in order: arch "256-128", depth, params, flops, latency_ms
                  (when measured), <key>, <key>_subset (``search.fidelity=subset``; <key> is
                  empty for an arch never promoted to the full split), generation, feasible;
                  rewritten after each generation
  pareto.json     the non-dominated set over the objectives (feasible archs only)
  best/arch.yaml  the chosen arch, its figures, the search settings and the space
  pareto.png      the score against each cost, the front and the chosen arch (`pareto_figure`)
  finetune.csv    the re-ranked finalists, with ``search.finetune.top`` (supernet/search/rerank.py)

TensorBoard (a `SummaryWriter`-like `writer`): search/best_<key> and search/mean_<key> of each
generation's batch (search/best_val_acc for accuracy), search/best_so_far against the number of
evaluations, search/hypervolume (several objectives, scaled as `hypervolume_of` says, reference
point 1.1) and the figure (`search/pareto`). See docs/experiments/search.md.

Only full-split scores decide anything here (`full_scored`): an arch scored on the subset alone
is never chosen, never on the front, never a finalist and not in the hypervolume.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from supernet.core.metrics import METRIC_KEYS, METRICS
from supernet.core.space import Arch, SearchSpace, arch_str
from supernet.files import atomic_write_text
from supernet.search.base import METRIC_BY_KEY, SCORE_ALIAS, Constraints, fitness_key, minimised, score_key, signed
from supernet.search.pareto import hypervolume, pareto_front
from supernet.search.rerank import finetuned_key, rerank
from supernet.search.subset import within_margin

HV_REF = 1.1
# What a record shows, in this order; a record holds one metric's fields (accuracy's come first).
PUBLIC_KEYS = (
    "arch", "depth", "params", "flops", "latency_ms",
    *(k for key in METRIC_KEYS for k in (key, f"{key}_subset")),
    *(finetuned_key(m) for m in METRICS.values()), "finetuned_loss",
    "feasible", "generation",
)  # fmt: skip


# ---------------------------------------------------------------------------- choosing
def full_scored(history: list[dict], key: str = SCORE_ALIAS) -> list[dict]:
    """The records with a full-split score `key` (all of them at ``search.fidelity=full``)."""
    return [r for r in history if r[key] is not None]


def choose_best(history: list[dict], objectives: list[str], tolerance: float | None = None) -> dict | None:
    """Single objective: the best feasible score, or with a `tolerance` the fewest-params feasible
    arch within it of that score (`equals_of_best`). Several: the best-scoring member of the
    feasible front (which is the same arch). No feasible arch: the one nearest the budgets."""
    key = score_key(objectives)
    history = full_scored(history, key)
    if not history:
        return None
    feasible = [r for r in history if r["feasible"]]
    if feasible and len(objectives) > 1:
        return max((feasible[i] for i in _front(feasible, objectives)), key=lambda r: fitness_key(r, key))
    if feasible and tolerance:
        return equals_of_best(feasible, key, tolerance)[0]
    return max(history, key=lambda r: fitness_key(r, key))


def equals_of_best(feasible: list[dict], key: str, tolerance: float) -> list[dict]:
    """``search.tolerance``: the feasible records whose score `key` is within `tolerance` of the
    best one (an accuracy at most `tolerance` below it; a lower-is-better metric such as RMSE at
    most the fraction `tolerance` above it), fewest params first, then best score. Within one
    standard error of the best is the one-standard-error rule: those nets are equals on this
    validation split, and the smallest of them is the cheapest to retrain and to run."""
    top = max(feasible, key=lambda r: fitness_key(r, key))
    sign = METRIC_KEYS[key]
    bound = within_margin(float(top[key]), key, -tolerance)  # the best score worsened by the tolerance
    equal = [r for r in feasible if sign * (float(r[key]) - bound) >= 0]
    return sorted(equal, key=lambda r: (int(r["params"]), -signed(r, key)))


def _front(records: list[dict], objectives: list[str]) -> list[int]:
    return pareto_front([minimised(r, objectives) for r in records])


def pareto_set(history: list[dict], objectives: list[str]) -> list[dict]:
    """The non-dominated feasible records, best score first."""
    key = score_key(objectives)
    feasible = [r for r in full_scored(history, key) if r["feasible"]]
    front = [feasible[i] for i in _front(feasible, objectives)]
    return sorted(front, key=lambda r: fitness_key(r, key), reverse=True)


def finalists(history: list[dict], objectives: list[str], top: int, tolerance: float | None = None) -> list[dict]:
    """The `top` best feasible records by score (several objectives: of the Pareto front); with a
    `tolerance`, the `top` fewest-params records within it of the best (`equals_of_best`)."""
    if len(objectives) > 1:
        return pareto_set(history, objectives)[:top]
    key = score_key(objectives)
    feasible = [r for r in full_scored(history, key) if r["feasible"]]
    if feasible and tolerance:
        return equals_of_best(feasible, key, tolerance)[:top]
    return sorted(feasible, key=lambda r: fitness_key(r, key), reverse=True)[:top]


def hypervolume_of(
    space: SearchSpace, history: list[dict], objectives: list[str], latency_scale: float | None
) -> float:
    """Hypervolume of the feasible front with every objective scaled to about [0, 1], reference
    point 1.1 in each: params and FLOPs over the largest arch's, latency over the first
    generation's slowest. The score: ``1 - value`` for a higher-is-better metric (accuracy,
    balanced accuracy, ROC AUC, F1 in [0, 1]; for r2, 1 - r2 is the unexplained fraction of the
    variance); a lower-is-better one (RMSE, MAE, log loss) over the worst value of the first
    generation (generation 0's full-split scores, fixed once the search has started, so the
    hypervolumes of later generations stay comparable; archs worse than 1.1 times it add nothing)."""
    key = score_key(objectives)
    scale = {
        "params": space.params(space.largest()),
        "flops": space.flops(space.largest()),
        "latency_ms": latency_scale or 1.0,
        key: metric_scale(history, key),
    }
    points = []
    for r in full_scored(history, key):
        if r["feasible"]:
            points.append([1.0 - r[o] if o == key and METRIC_KEYS[key] > 0 else r[o] / scale[o] for o in objectives])
    return hypervolume(points, [HV_REF] * len(objectives))


def metric_scale(history: list[dict], key: str) -> float:
    """What a lower-is-better score is divided by in the hypervolume: the worst full-split value
    of generation 0 (1 when there is none, or it is not positive)."""
    first = [abs(float(r[key])) for r in full_scored(history, key) if r.get("generation", 0) == 0]
    worst = max(first, default=0.0)
    return worst if worst > 0 else 1.0


def public(record: Mapping) -> dict:
    """The fields of a record that the result, pareto.json and best/arch.yaml show."""
    return {k: record[k] for k in PUBLIC_KEYS if k in record}


# ---------------------------------------------------------------------------- files
def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV document (``\\n`` line ends) with a header row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue()


def write_history(path: Path, history: list[dict], key: str = SCORE_ALIAS) -> None:
    """history.csv; `key`: the search metric's field (``val_acc``, ``val_rmse``, ...)."""
    with_latency = any("latency_ms" in r for r in history)
    columns = ["evaluation", "arch", "depth", "params", "flops"]
    columns += ["latency_ms"] if with_latency else []
    columns += [key] + ([f"{key}_subset"] if any(f"{key}_subset" in r for r in history) else [])
    columns += ["generation", "feasible"]
    rows = ({**r, "arch": arch_str(r["arch"])} for r in history)
    atomic_write_text(path, csv_text(columns, ([row.get(c, "") for c in columns] for row in rows)))


def write_finetune(path: Path, rows: Sequence[dict], key: str = SCORE_ALIAS) -> None:
    """finetune.csv: the re-ranked finalists, in their inherited order (`key`: the search metric's field)."""
    tuned = finetuned_key(METRIC_BY_KEY[key])
    columns = [
        "arch", "params", "flops", key, tuned, "finetuned_loss", "inherited_rank", "finetuned_rank",
    ]  # fmt: skip
    lines = ([arch_str(r["arch"]) if c == "arch" else r[c] for c in columns] for r in rows)
    atomic_write_text(path, csv_text(columns, lines))


def write_best(path: Path, space: SearchSpace, cfg: Mapping, seed: int, best: dict) -> None:
    import yaml

    doc = {
        **public(best),
        "strategy": cfg["strategy"],
        "seed": int(seed),
        "objectives": list(cfg["objectives"]),
        "constraints": cfg["constraints"],
        "space": space.to_dict(),
    }
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False))


def log_generation(
    logger: logging.Logger,
    writer: Any,
    space: SearchSpace,
    cfg: Mapping,
    runner: Mapping,
    records: list[dict],
    history: list[dict],
    generation: int,
) -> None:
    """One log line per generation, and its TensorBoard scalars when there is a `writer`."""
    key = score_key(cfg["objectives"])
    best = choose_best(history, cfg["objectives"], cfg.get("tolerance"))
    feasible = [r for r in full_scored(records, key) if r["feasible"]]
    logger.info(
        "generation %d: %d/%d evaluated, best %s %.4f %s",
        generation,
        len(history),
        cfg["budget"],
        key,
        best[key] if best else float("nan"),
        best["arch"] if best else None,
    )
    if writer is None:
        return
    if feasible:
        values = [r[key] for r in feasible]
        writer.add_scalar(f"search/best_{key}", max(feasible, key=lambda r: signed(r, key))[key], generation)
        writer.add_scalar(f"search/mean_{key}", sum(values) / len(values), generation)
    if best is not None and best["feasible"]:
        writer.add_scalar("search/best_so_far", best[key], len(history))
    if len(cfg["objectives"]) > 1:
        hv = hypervolume_of(space, history, cfg["objectives"], runner["latency_scale"])
        writer.add_scalar("search/hypervolume", hv, generation)


# ---------------------------------------------------------------------------- the ending
def rerank_finalists(
    history: list[dict],
    cfg: Mapping,
    rescore: Callable[[list[Arch]], list[dict]] | None,
    out_dir: Path,
    logger: logging.Logger,
) -> dict | None:
    """With a `rescore` and ``finetune.top > 0``: re-rank the finalists, write finetune.csv and
    return the re-ranking (its ``best`` is the new winner); else None."""
    top = int(cfg["finetune"]["top"])
    objectives, tolerance = list(cfg["objectives"]), cfg.get("tolerance")
    chosen = finalists(history, objectives, top, tolerance) if rescore is not None and top > 0 else []
    if not chosen:
        return None
    key = score_key(cfg["objectives"])
    metric = METRIC_BY_KEY[key]
    started = time.perf_counter()
    reranked = rerank(chosen, rescore, cfg["finetune"]["score"], metric)
    reranked["wall_s"] = round(time.perf_counter() - started, 3)
    best = reranked["best"]
    write_finetune(out_dir / "finetune.csv", reranked["finalists"], key)
    logger.info(
        "fine-tune re-ranking of the top %d in %.1f s: chose %s (val loss %.4f, %s %.4f after the fine-tune; "
        "#%d by inherited %s)",
        len(chosen),
        reranked["wall_s"],
        arch_str(best["arch"]),
        best["finetuned_loss"],
        metric.short,
        best[finetuned_key(metric)],
        best["inherited_rank"],
        key,
    )
    return reranked


def result_doc(
    space: SearchSpace,
    cfg: Mapping,
    seed: int,
    history: list[dict],
    runner: Mapping,
    best: dict | None,
    reranked: dict | None,
) -> dict:
    """The search's result (result.json's search fields); `cfg` holds the resolved objectives."""
    objectives = list(cfg["objectives"])
    result = {
        "strategy": cfg["strategy"],
        "seed": int(seed),
        "metric": METRIC_BY_KEY[score_key(objectives)].name,
        "objectives": objectives,
        "constraints": cfg["constraints"],
        "budget": cfg["budget"],
        "n_evaluations": len(history),
        "generations": int(runner["generation"]),
        "stopped": runner["stopped"],
        "wall_time_s": round(float(runner["wall_s"]), 3),
        "best": public(best) if best else None,
        "pareto": [public(r) for r in pareto_set(history, objectives)],
    }
    if reranked is not None:
        ranks = ("inherited_rank", "finetuned_rank")
        result["finetune"] = {
            **cfg["finetune"],
            "changed": reranked["changed"],
            "wall_s": reranked["wall_s"],
            "finalists": [{**public(r), **{k: r[k] for k in ranks}} for r in reranked["finalists"]],
        }
    if len(objectives) > 1:
        result["hypervolume"] = hypervolume_of(space, history, objectives, runner["latency_scale"])
    if cfg.get("fidelity") == "subset":
        promoted = len(full_scored(history, score_key(objectives)))
        result["fidelity"] = {"fidelity": "subset", **cfg["subset"], "promoted": promoted}
    return result


def pareto_figure(
    history: list[dict],
    objectives: list[str],
    best: dict | None,
    constraints: Constraints | None = None,
):
    """The score (the search metric) against each cost (params, FLOPs, latency when measured):
    every scored arch, the score/cost front of the feasible ones highlighted, the chosen arch starred."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    costs = ["params", "flops"] + (["latency_ms"] if any("latency_ms" in r for r in history) else [])
    limits = (constraints or Constraints()).to_dict()
    fig = Figure(figsize=(4.2 * len(costs), 3.6), layout="constrained")
    axes = fig.subplots(1, len(costs), squeeze=False)[0]
    key = score_key(objectives)
    for ax, cost in zip(axes, costs, strict=True):
        _cost_panel(ax, history, (key, cost), best, limits.get(f"max_{cost}"))
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{len(history)} archs, objectives {objectives}", fontsize=9)
    return fig


def _cost_panel(ax, history: list[dict], axes: tuple[str, str], best: dict | None, limit: float | None) -> None:
    """One panel of `pareto_figure`: the score `key` against `cost` (log scale), the budget dashed."""
    from matplotlib.ticker import NullFormatter

    key, cost = axes
    ok = [r for r in history if r["feasible"]]
    bad = [r for r in history if not r["feasible"]]
    ax.scatter([r[cost] for r in ok], [r[key] for r in ok], s=8, c="0.6", label="feasible")
    if bad:
        ax.scatter([r[cost] for r in bad], [r[key] for r in bad], s=8, c="tab:red", marker="x", label="over budget")
    front = sorted((ok[i] for i in _front(ok, [key, cost])), key=lambda r: r[cost])
    ax.plot([r[cost] for r in front], [r[key] for r in front], "o-", c="tab:blue", ms=4, label="front")
    if best is not None:
        ax.scatter(
            [best[cost]], [best[key]], marker="*", s=160, c="tab:orange", zorder=5,
            label=f"chosen {arch_str(best['arch'])}",
        )  # fmt: skip
    if limit is not None:
        ax.axvline(limit, ls="--", c="k", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
    ax.set_xlabel(cost)
    ax.set_ylabel(f"{key} (inherited weights)")
    ax.grid(alpha=0.3)


def write_outputs(
    space: SearchSpace,
    cfg: Mapping,
    seed: int,
    out_dir: Path,
    history: list[dict],
    best: dict | None,
    writer: Any = None,
    plot: bool = True,
) -> None:
    """pareto.json, best/arch.yaml and (with `plot`) pareto.png and the TensorBoard figure."""
    objectives = list(cfg["objectives"])
    front = [public(r) for r in pareto_set(history, objectives)]
    atomic_write_text(out_dir / "pareto.json", json.dumps({"objectives": objectives, "front": front}, indent=1))
    if best is not None:
        write_best(out_dir / "best" / "arch.yaml", space, cfg, seed, best)
    if plot and history:
        scored = full_scored(history, score_key(objectives))
        fig = pareto_figure(scored, objectives, best, Constraints.from_cfg(cfg["constraints"]))
        fig.savefig(out_dir / "pareto.png", dpi=120)
        if writer is not None:
            writer.add_figure("search/pareto", fig, global_step=len(history), close=False)
    if writer is not None and hasattr(writer, "flush"):
        writer.flush()
