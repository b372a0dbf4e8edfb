"""The search driver every strategy shares: ask, score, tell, save, until the budget is spent.

    from supernet.search import run_search, validate_search_config
    cfg = validate_search_config(cfg.search, space)   # before loading data: fail fast
    result = run_search(space, evaluator, cfg, out_dir, seed=0, resume=True, writer=writer)

`evaluator.evaluate(archs) -> list[dict]` scores archs (``val_acc``, ``params``, ``flops`` and
``latency_ms`` when `needs_latency(cfg)`). The budget counts distinct archs scored: an arch the
search has already scored is answered from the history and costs nothing.

Written in `out_dir` (each generation, so a killed search leaves a usable record):
  search_state.json  everything needed to resume (history, strategy state with RNG states),
                     replaced atomically (tmp file + os.replace) after each generation
  history.csv        every scored arch in order: arch "256-128", depth, params, flops,
                     latency_ms (when measured), val_acc, generation, feasible
and at the end: pareto.json (non-dominated set over the objectives, feasible archs only),
best/arch.yaml (the chosen arch and its figures) and pareto.png.

Resume: `run_search(..., resume=True)` on the same `out_dir` reloads search_state.json and
replays the generation that was interrupted; the strategy state, the RNG states and the scores
come back exactly, so the run ends with the result an uninterrupted run gives.

TensorBoard (a `SummaryWriter`-like `writer`): search/best_val_acc and search/mean_val_acc of
each generation's batch, search/best_so_far against the number of evaluations,
search/hypervolume (multi-objective; objectives scaled to [0, 1], reference point 1.1), and the
Pareto figure (`search/pareto`).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from supernet.core.space import Arch, SearchSpace, arch_str, as_arch
from supernet.errors import UsageError
from supernet.search.base import (
    COMMON_DEFAULTS,
    Constraints,
    Strategy,
    check_objectives,
    check_range,
    fitness_key,
    minimised,
    plain,
)
from supernet.search.pareto import hypervolume, pareto_front
from supernet.search.rerank import check_finetune, finetune_csv, rerank

log = logging.getLogger(__name__)

# name -> "module:Class"; imported on use, so `search=evolution` never pays for optuna.
STRATEGIES: dict[str, str] = {
    "evolution": "supernet.search.evolution:EvolutionStrategy",
    "random": "supernet.search.random_search:RandomStrategy",
    "bayes": "supernet.search.bayes:BayesStrategy",
    "rl": "supernet.search.rl:RLStrategy",
}
STATE_FILE = "search_state.json"
STATE_VERSION = 1
# Stop when this many generations in a row bring no arch that was not scored before: the
# strategy has exhausted what it can find (tiny spaces, a converged policy).
MAX_STALL = 50
HV_REF = 1.1


class Evaluator(Protocol):
    def evaluate(self, archs: list[Arch]) -> list[dict]: ...


# ---------------------------------------------------------------------------- config
def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise UsageError(f"search.strategy={name!r} is unknown: use one of {sorted(STRATEGIES)}")
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def validate_search_config(cfg: Mapping, space: SearchSpace) -> dict:
    """Check the `search` config node against `space`; return it as a plain dict with the
    defaults of its strategy filled in. Raises `UsageError` naming the key, value and fix."""
    cfg = plain(cfg)
    cls = strategy_class(cfg.get("strategy", "evolution"))
    full = {**COMMON_DEFAULTS, **cls.defaults, **cfg, "strategy": cls.name}
    full["latency"] = {**COMMON_DEFAULTS["latency"], **(full.get("latency") or {})}
    full["finetune"] = {**COMMON_DEFAULTS["finetune"], **(full.get("finetune") or {})}
    check_range("budget", full["budget"], 1, integer=True)
    full["budget"] = int(full["budget"])
    if full["budget"] > space.size():
        raise UsageError(
            f"search.budget={full['budget']} is above the {space.size()} archs in the space: use at most {space.size()}"
        )
    if isinstance(full["objectives"], str):
        full["objectives"] = [full["objectives"]]
    full["objectives"] = check_objectives(full["objectives"])
    constraints = Constraints.from_cfg(full.get("constraints"))
    constraints.check_space(space)
    full["constraints"] = constraints.to_dict()
    check_range("latency.batch_size", full["latency"]["batch_size"], 1, integer=True)
    check_range("latency.repeats", full["latency"]["repeats"], 1, integer=True)
    check_range("latency.warmup", full["latency"]["warmup"], 0, integer=True)
    check_finetune(full["finetune"])
    cls.check_config(full, space)
    return full


def needs_latency(cfg: Mapping) -> bool:
    """Whether the evaluator must measure latency_ms (an objective or a constraint uses it)."""
    cfg = plain(cfg)
    return "latency_ms" in (cfg.get("objectives") or []) or (
        (cfg.get("constraints") or {}).get("max_latency_ms") is not None
    )


def make_strategy(space: SearchSpace, cfg: Mapping, seed: int) -> Strategy:
    cfg = validate_search_config(cfg, space)
    cls = strategy_class(cfg["strategy"])
    constraints = Constraints.from_cfg(cfg["constraints"])
    return cls(space, cfg, constraints, list(cfg["objectives"]), seed)


# ---------------------------------------------------------------------------- the loop
def run_search(
    space: SearchSpace,
    evaluator: Evaluator,
    cfg: Mapping,
    out_dir: Path | str,
    seed: int,
    resume: bool = False,
    logger: logging.Logger | None = None,
    writer: Any = None,
    on_generation: Callable[[int], None] | None = None,
    plot: bool = True,
    should_stop: Callable[[], str | None] | None = None,
    rescore: Callable[[list[Arch]], list[dict]] | None = None,
) -> dict:
    """Search until `cfg.budget` distinct archs are scored; write the outputs in `out_dir` and
    return the result (best arch and figures, Pareto set, evaluations, wall time).
    `on_generation(g)` is called after generation g is saved (tests stop a search there);
    `plot=False` skips pareto.png and the TensorBoard figure (half a second of matplotlib).
    `rescore(archs) -> [{"acc", "loss"}]` re-ranks the ``search.finetune.top`` finalists at the end
    (supernet/search/rerank.py); without it that setting is ignored."""
    logger = logger or log
    cfg = validate_search_config(cfg, space)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    constraints = Constraints.from_cfg(cfg["constraints"])
    objectives = list(cfg["objectives"])
    strategy = make_strategy(space, cfg, seed)
    # What the loop depends on; the final re-ranking (`finetune`) may change between resumes.
    loop_cfg = {k: v for k, v in cfg.items() if k != "finetune"}
    fingerprint = {"space": space.to_dict(), "search": loop_cfg, "seed": int(seed)}

    history: list[dict] = []
    runner = {"generation": 0, "stall": 0, "stopped": None, "wall_s": 0.0, "latency_scale": None}
    state_path = out_dir / STATE_FILE
    if resume and state_path.exists():
        saved = json.loads(state_path.read_text())
        _check_fingerprint(saved, fingerprint, state_path)
        history = saved["history"]
        runner.update(saved["runner"])
        strategy.load_state_dict(saved["strategy"])
        logger.info(
            "resuming %s search from %s: generation %d, %d/%d evaluated",
            cfg["strategy"],
            state_path,
            runner["generation"],
            len(history),
            cfg["budget"],
        )
        _write_history(out_dir / "history.csv", history)
    elif resume:
        logger.info("no %s in %s: starting a new search", STATE_FILE, out_dir)
    by_arch: dict[Arch, dict] = {as_arch(r["arch"]): r for r in history}

    started = time.perf_counter()
    wall_before = float(runner["wall_s"])
    budget = cfg["budget"]
    while len(history) < budget and runner["stopped"] is None:
        generation = int(runner["generation"])
        archs = [as_arch(a) for a in strategy.ask()]
        _check_candidates(space, constraints, archs, strategy.name)
        archs, new = _within_budget(archs, by_arch, budget - len(history))
        scored = evaluator.evaluate(new) if new else []
        if len(scored) != len(new):
            raise RuntimeError(f"the evaluator returned {len(scored)} records for {len(new)} archs")
        for arch, raw in zip(new, scored, strict=True):
            record = _record(space, constraints, arch, raw, generation, len(history) + 1)
            history.append(record)
            by_arch[arch] = record
        records = [by_arch[a] for a in archs]
        strategy.tell(archs, records)

        runner["generation"] = generation + 1
        runner["stall"] = 0 if new else runner["stall"] + 1
        if runner["stall"] >= MAX_STALL:
            runner["stopped"] = "stalled"
            logger.warning(
                "%s proposed no new arch for %d generations: stopping at %d/%d evaluations",
                strategy.name,
                MAX_STALL,
                len(history),
                budget,
            )
        if runner["latency_scale"] is None and "latency_ms" in objectives and history:
            # Fixed once, so hypervolumes of different generations stay comparable.
            runner["latency_scale"] = max(r["latency_ms"] for r in history)
        runner["wall_s"] = wall_before + time.perf_counter() - started
        state = {
            "version": STATE_VERSION,
            "fingerprint": fingerprint,
            "runner": runner,
            "history": history,
            "strategy": strategy.state_dict(),
        }
        _atomic_write(state_path, json.dumps(state))
        _write_history(out_dir / "history.csv", history)
        _log_generation(logger, writer, space, cfg, runner, records, history, generation)
        if on_generation is not None:
            on_generation(generation)
        if should_stop is not None and runner["stopped"] is None:
            # e.g. a wall-clock budget: checked after a generation is saved, so resume stays exact.
            reason = should_stop()
            if reason:
                runner["stopped"] = reason
                logger.info("stopping after generation %d: %s", generation, reason)

    if runner["stopped"] is None:
        runner["stopped"] = "budget"
    return _finish(space, cfg, out_dir, seed, history, runner, writer, logger, plot, rescore)


def _check_fingerprint(saved: dict, fingerprint: dict, path: Path) -> None:
    if saved.get("version") != STATE_VERSION:
        raise UsageError(f"{path} has state version {saved.get('version')}, expected {STATE_VERSION}")
    old = saved["fingerprint"]
    for key in ("seed", "space", "search"):
        if old[key] != fingerprint[key]:
            if isinstance(old[key], dict):
                diff = sorted(k for k in {**old[key], **fingerprint[key]} if old[key].get(k) != fingerprint[key].get(k))
                what = ", ".join(f"{key}.{k}={old[key].get(k)!r} there, {fingerprint[key].get(k)!r} here" for k in diff)
            else:
                what = f"{key}={old[key]!r} there, {fingerprint[key]!r} here"
            raise UsageError(
                f"cannot resume from {path}: it was written with {what}; "
                "resume with the same settings or use a new run dir"
            )


def _check_candidates(space: SearchSpace, constraints: Constraints, archs: list[Arch], name: str) -> None:
    """A strategy must never propose an arch outside the space or over a closed-form budget."""
    for arch in archs:
        problem = space.check(arch)
        if problem is None and not constraints.static_ok(space, arch):
            problem = f"arch {list(arch)} breaks {constraints.to_dict()}"
        if problem:
            raise RuntimeError(f"strategy {name} proposed an invalid candidate: {problem}")


def _within_budget(archs: list[Arch], known: Mapping[Arch, dict], remaining: int) -> tuple[list[Arch], list[Arch]]:
    """The batch cut where its new (never scored) archs would exceed the remaining budget, and
    those new archs, each once, in order."""
    new: list[Arch] = []
    for i, arch in enumerate(archs):
        if arch in known or arch in new:
            continue
        if len(new) == remaining:
            return archs[:i], new
        new.append(arch)
    return archs, new


def _record(
    space: SearchSpace,
    constraints: Constraints,
    arch: Arch,
    raw: Mapping,
    generation: int,
    evaluation: int,
) -> dict:
    record = {
        "evaluation": evaluation,
        "arch": list(arch),
        "depth": len(arch),
        "params": int(raw.get("params", space.params(arch))),
        "flops": int(raw.get("flops", space.flops(arch))),
        "val_acc": float(raw["val_acc"]),
        "generation": generation,
    }
    if raw.get("latency_ms") is not None:
        record["latency_ms"] = float(raw["latency_ms"])
    record["violation"] = constraints.violation(record)
    record["feasible"] = record["violation"] == 0.0
    return record


def _write_history(path: Path, history: list[dict]) -> None:
    with_latency = any("latency_ms" in r for r in history)
    columns = ["evaluation", "arch", "depth", "params", "flops"]
    columns += ["latency_ms"] if with_latency else []
    columns += ["val_acc", "generation", "feasible"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in history:
        row = {**r, "arch": arch_str(r["arch"])}
        w.writerow([row.get(c, "") for c in columns])
    _atomic_write(path, buf.getvalue())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- choosing
def choose_best(history: list[dict], objectives: list[str]) -> dict | None:
    """Single objective: the best feasible val_acc. Several: the highest-val_acc member of the
    feasible front (which is the same arch). No feasible arch: the one nearest the budgets."""
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
    feasible = [r for r in history if r["feasible"]]
    front = [feasible[i] for i in _front(feasible, objectives)]
    return sorted(front, key=fitness_key, reverse=True)


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
    for r in history:
        if r["feasible"]:
            points.append([1.0 - r["val_acc"] if o == "val_acc" else r[o] / scale[o] for o in objectives])
    return hypervolume(points, [HV_REF] * len(objectives))


# ---------------------------------------------------------------------------- reporting
def _public(record: Mapping) -> dict:
    keys = ("arch", "depth", "params", "flops", "latency_ms", "val_acc", "finetuned_acc", "finetuned_loss", "feasible")
    keys += ("generation",)
    return {k: record[k] for k in keys if k in record}


def _log_generation(logger, writer, space, cfg, runner, records, history, generation) -> None:
    best = choose_best(history, cfg["objectives"])
    feasible_acc = [r["val_acc"] for r in records if r["feasible"]]
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


def finalists(history: list[dict], objectives: list[str], top: int) -> list[dict]:
    """The `top` best feasible records by val_acc (several objectives: of the Pareto front)."""
    if len(objectives) > 1:
        return pareto_set(history, objectives)[:top]
    return sorted((r for r in history if r["feasible"]), key=fitness_key, reverse=True)[:top]


def _finish(space, cfg, out_dir, seed, history, runner, writer, logger, plot, rescore=None) -> dict:
    objectives = list(cfg["objectives"])
    best = choose_best(history, objectives)
    reranked = None
    top = int(cfg["finetune"]["top"])
    chosen = finalists(history, objectives, top) if rescore is not None and top > 0 else []
    if chosen:
        started = time.perf_counter()
        reranked = rerank(chosen, rescore, cfg["finetune"]["score"])
        reranked["wall_s"] = round(time.perf_counter() - started, 3)
        best = reranked["best"]
        _atomic_write(out_dir / "finetune.csv", finetune_csv(reranked["finalists"]))
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
    front = [_public(r) for r in pareto_set(history, objectives)]
    _atomic_write(out_dir / "pareto.json", json.dumps({"objectives": objectives, "front": front}, indent=1))
    if best is not None:
        _write_best(out_dir / "best" / "arch.yaml", space, cfg, seed, best)
    if plot and history:
        fig = pareto_figure(history, objectives, best, Constraints.from_cfg(cfg["constraints"]))
        fig.savefig(out_dir / "pareto.png", dpi=120)
        if writer is not None:
            writer.add_figure("search/pareto", fig, global_step=len(history), close=False)
    if writer is not None and hasattr(writer, "flush"):
        writer.flush()
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
        "best": _public(best) if best else None,
        "pareto": front,
    }
    if reranked is not None:
        result["finetune"] = {
            **cfg["finetune"],
            "changed": reranked["changed"],
            "wall_s": reranked["wall_s"],
            "finalists": [
                {**_public(r), **{k: r[k] for k in ("inherited_rank", "finetuned_rank")}} for r in reranked["finalists"]
            ],
        }
    if len(objectives) > 1:
        result["hypervolume"] = hypervolume_of(space, history, objectives, runner["latency_scale"])
    logger.info(
        "%s search done: %d evaluations in %.1f s; best %s",
        cfg["strategy"],
        len(history),
        runner["wall_s"],
        _public(best) if best else None,
    )
    return result


def _write_best(path: Path, space: SearchSpace, cfg, seed, best: dict) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        **_public(best),
        "strategy": cfg["strategy"],
        "seed": int(seed),
        "objectives": list(cfg["objectives"]),
        "constraints": cfg["constraints"],
        "space": space.to_dict(),
    }
    _atomic_write(path, yaml.safe_dump(doc, sort_keys=False))


def pareto_figure(
    history: list[dict],
    objectives: list[str],
    best: dict | None,
    constraints: Constraints | None = None,
):
    """Accuracy against each cost (params, FLOPs, latency when measured): every scored arch,
    the accuracy/cost front of the feasible ones highlighted, the chosen arch starred."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
    from matplotlib.ticker import NullFormatter

    costs = ["params", "flops"] + (["latency_ms"] if any("latency_ms" in r for r in history) else [])
    limits = (constraints or Constraints()).to_dict()
    fig = Figure(figsize=(4.2 * len(costs), 3.6), layout="constrained")
    axes = fig.subplots(1, len(costs), squeeze=False)[0]
    for ax, cost in zip(axes, costs, strict=True):
        ok = [r for r in history if r["feasible"]]
        bad = [r for r in history if not r["feasible"]]
        ax.scatter([r[cost] for r in ok], [r["val_acc"] for r in ok], s=8, c="0.6", label="feasible")
        if bad:
            ax.scatter(
                [r[cost] for r in bad],
                [r["val_acc"] for r in bad],
                s=8,
                c="tab:red",
                marker="x",
                label="over budget",
            )
        front = sorted((ok[i] for i in _front(ok, ["val_acc", cost])), key=lambda r: r[cost])
        ax.plot(
            [r[cost] for r in front],
            [r["val_acc"] for r in front],
            "o-",
            c="tab:blue",
            ms=4,
            label="front",
        )
        if best is not None:
            ax.scatter(
                [best[cost]],
                [best["val_acc"]],
                marker="*",
                s=160,
                c="tab:orange",
                zorder=5,
                label=f"chosen {arch_str(best['arch'])}",
            )
        limit = limits.get(f"max_{cost}")
        if limit is not None:
            ax.axvline(limit, ls="--", c="k", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
        ax.set_xlabel(cost)
        ax.set_ylabel("val_acc (inherited weights)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{len(history)} archs, objectives {objectives}", fontsize=9)
    return fig
