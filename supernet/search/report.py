"""What a search writes and returns: the chosen arch, the Pareto set, and the files in its run dir.

  history.csv     every scored arch in order: arch "256-128", depth, params, flops, latency_ms
                  (when measured), val_acc, val_acc_subset (``search.fidelity=subset``; val_acc
                  is empty for an arch never promoted to the full split), generation, feasible;
                  rewritten after each generation
  pareto.json     the non-dominated set over the objectives (feasible archs only)
  best/arch.yaml  the chosen arch, its figures, the search settings and the space
  pareto.png      accuracy against each cost, the front and the chosen arch (`pareto_figure`)
  finetune.csv    the re-ranked finalists, with ``search.finetune.top`` (supernet/search/rerank.py)

TensorBoard (a `SummaryWriter`-like `writer`): search/best_val_acc and search/mean_val_acc of each
generation's batch, search/best_so_far against the number of evaluations, search/hypervolume
(several objectives; objectives scaled to [0, 1], reference point 1.1) and the figure
(`search/pareto`). See docs/experiments/search.md.

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

from supernet.core.space import Arch, SearchSpace, arch_str
from supernet.files import atomic_write_text
from supernet.search.base import Constraints, fitness_key, minimised
from supernet.search.pareto import hypervolume, pareto_front
from supernet.search.rerank import rerank

HV_REF = 1.1
PUBLIC_KEYS = (
    "arch", "depth", "params", "flops", "latency_ms", "val_acc", "val_acc_subset", "finetuned_acc", "finetuned_loss",
    "feasible", "generation",
)  # fmt: skip


# ---------------------------------------------------------------------------- choosing
def full_scored(history: list[dict]) -> list[dict]:
    """The records with a full-split val_acc (all of them at ``search.fidelity=full``)."""
    return [r for r in history if r["val_acc"] is not None]


def choose_best(history: list[dict], objectives: list[str]) -> dict | None:
    """Single objective: the best feasible val_acc. Several: the highest-val_acc member of the
    feasible front (which is the same arch). No feasible arch: the one nearest the budgets."""
    history = full_scored(history)
    if not history:
        return None
    feasible = [r for r in history if r["feasible"]]
    if feasible and len(objectives) > 1:
        return max((feasible[i] for i in _front(feasible, objectives)), key=fitness_key)
    return max(history, key=fitness_key)


def _front(records: list[dict], objectives: list[str]) -> list[int]:
    return pareto_front([minimised(r, objectives) for r in records])


def pareto_set(history: list[dict], objectives: list[str]) -> list[dict]:
    """The non-dominated feasible records, best val_acc first."""
    feasible = [r for r in full_scored(history) if r["feasible"]]
    front = [feasible[i] for i in _front(feasible, objectives)]
    return sorted(front, key=fitness_key, reverse=True)


def finalists(history: list[dict], objectives: list[str], top: int) -> list[dict]:
    """The `top` best feasible records by val_acc (several objectives: of the Pareto front)."""
    if len(objectives) > 1:
        return pareto_set(history, objectives)[:top]
    return sorted((r for r in full_scored(history) if r["feasible"]), key=fitness_key, reverse=True)[:top]


def hypervolume_of(
    space: SearchSpace, history: list[dict], objectives: list[str], latency_scale: float | None
) -> float:
    """Hypervolume of the feasible front with every objective scaled to about [0, 1]:
    1 - val_acc, params and FLOPs over the largest arch's, latency over the first generation's
    slowest; reference point 1.1 in each."""
    scale = {
        "params": space.params(space.largest()),
        "flops": space.flops(space.largest()),
        "latency_ms": latency_scale or 1.0,
    }
    points = []
    for r in full_scored(history):
        if r["feasible"]:
            points.append([1.0 - r["val_acc"] if o == "val_acc" else r[o] / scale[o] for o in objectives])
    return hypervolume(points, [HV_REF] * len(objectives))


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


def write_history(path: Path, history: list[dict]) -> None:
    with_latency = any("latency_ms" in r for r in history)
    columns = ["evaluation", "arch", "depth", "params", "flops"]
    columns += ["latency_ms"] if with_latency else []
    columns += ["val_acc"] + (["val_acc_subset"] if any("val_acc_subset" in r for r in history) else [])
    columns += ["generation", "feasible"]
    rows = ({**r, "arch": arch_str(r["arch"])} for r in history)
    atomic_write_text(path, csv_text(columns, ([row.get(c, "") for c in columns] for row in rows)))


def write_finetune(path: Path, rows: Sequence[dict]) -> None:
    """finetune.csv: the re-ranked finalists, in their inherited order."""
    columns = [
        "arch", "params", "flops", "val_acc", "finetuned_acc", "finetuned_loss", "inherited_rank", "finetuned_rank",
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
    best = choose_best(history, cfg["objectives"])
    feasible_acc = [r["val_acc"] for r in full_scored(records) if r["feasible"]]
    logger.info(
        "generation %d: %d/%d evaluated, best %.4f %s",
        generation,
        len(history),
        cfg["budget"],
        best["val_acc"] if best else float("nan"),
        best["arch"] if best else None,
    )
    if writer is None:
        return
    if feasible_acc:
        writer.add_scalar("search/best_val_acc", max(feasible_acc), generation)
        writer.add_scalar("search/mean_val_acc", sum(feasible_acc) / len(feasible_acc), generation)
    if best is not None and best["feasible"]:
        writer.add_scalar("search/best_so_far", best["val_acc"], len(history))
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
    chosen = finalists(history, list(cfg["objectives"]), top) if rescore is not None and top > 0 else []
    if not chosen:
        return None
    started = time.perf_counter()
    reranked = rerank(chosen, rescore, cfg["finetune"]["score"])
    reranked["wall_s"] = round(time.perf_counter() - started, 3)
    best = reranked["best"]
    write_finetune(out_dir / "finetune.csv", reranked["finalists"])
    logger.info(
        "fine-tune re-ranking of the top %d in %.1f s: chose %s (val loss %.4f, acc %.4f after the fine-tune; "
        "#%d by inherited val_acc)",
        len(chosen),
        reranked["wall_s"],
        arch_str(best["arch"]),
        best["finetuned_loss"],
        best["finetuned_acc"],
        best["inherited_rank"],
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
    """The search's result (result.json's search fields)."""
    objectives = list(cfg["objectives"])
    result = {
        "strategy": cfg["strategy"],
        "seed": int(seed),
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
        result["fidelity"] = {"fidelity": "subset", **cfg["subset"], "promoted": len(full_scored(history))}
    return result


def pareto_figure(
    history: list[dict],
    objectives: list[str],
    best: dict | None,
    constraints: Constraints | None = None,
):
    """Accuracy against each cost (params, FLOPs, latency when measured): every scored arch,
    the accuracy/cost front of the feasible ones highlighted, the chosen arch starred."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    costs = ["params", "flops"] + (["latency_ms"] if any("latency_ms" in r for r in history) else [])
    limits = (constraints or Constraints()).to_dict()
    fig = Figure(figsize=(4.2 * len(costs), 3.6), layout="constrained")
    axes = fig.subplots(1, len(costs), squeeze=False)[0]
    for ax, cost in zip(axes, costs, strict=True):
        _cost_panel(ax, history, cost, best, limits.get(f"max_{cost}"))
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{len(history)} archs, objectives {objectives}", fontsize=9)
    return fig


def _cost_panel(ax, history: list[dict], cost: str, best: dict | None, limit: float | None) -> None:
    """One panel of `pareto_figure`: val_acc against `cost` (log scale), the budget dashed."""
    from matplotlib.ticker import NullFormatter

    ok = [r for r in history if r["feasible"]]
    bad = [r for r in history if not r["feasible"]]
    ax.scatter([r[cost] for r in ok], [r["val_acc"] for r in ok], s=8, c="0.6", label="feasible")
    if bad:
        ax.scatter(
            [r[cost] for r in bad], [r["val_acc"] for r in bad], s=8, c="tab:red", marker="x", label="over budget"
        )
    front = sorted((ok[i] for i in _front(ok, ["val_acc", cost])), key=lambda r: r[cost])
    ax.plot([r[cost] for r in front], [r["val_acc"] for r in front], "o-", c="tab:blue", ms=4, label="front")
    if best is not None:
        ax.scatter(
            [best[cost]], [best["val_acc"]], marker="*", s=160, c="tab:orange", zorder=5,
            label=f"chosen {arch_str(best['arch'])}",
        )  # fmt: skip
    if limit is not None:
        ax.axvline(limit, ls="--", c="k", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
    ax.set_xlabel(cost)
    ax.set_ylabel("val_acc (inherited weights)")
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
        fig = pareto_figure(full_scored(history), objectives, best, Constraints.from_cfg(cfg["constraints"]))
        fig.savefig(out_dir / "pareto.png", dpi=120)
        if writer is not None:
            writer.add_figure("search/pareto", fig, global_step=len(history), close=False)
    if writer is not None and hasattr(writer, "flush"):
        writer.flush()
