"""The search driver every strategy shares: ask, score, tell, save, until the budget is spent.

    from supernet.search import SearchHooks, run_search, validate_search_config
    cfg = validate_search_config(cfg.search, space)   # before loading data: fail fast
    result = run_search(space, evaluator, cfg, out_dir, seed=0, resume=True, hooks=SearchHooks(writer=writer))

`evaluator.evaluate(archs) -> list[dict]` scores archs (the search metric's field, ``params``,
``flops`` and ``latency_ms`` when `needs_latency(cfg)`). The metric is the evaluator's ``metric``
attribute (a `supernet.core.metrics.Metric`; accuracy, field ``val_acc``, for an evaluator
without one); ``val_acc`` in ``search.objectives`` stands for it (`base.score_objectives`). The
budget counts distinct archs scored: an arch the search has already scored is answered from the
history and costs nothing.

After each generation the state (`supernet.search.state`) and history.csv are saved, so a killed
search leaves a usable record and `run_search(..., resume=True)` on the same `out_dir` replays the
interrupted generation and ends with the result an uninterrupted run gives. The files and the
TensorBoard tags are listed in `supernet.search.report`; see docs/experiments/search.md.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from supernet import signals
from supernet.core.metrics import METRICS, Metric, default_metric
from supernet.core.space import Arch, SearchSpace, as_arch
from supernet.errors import UsageError
from supernet.files import to_plain
from supernet.search.base import (
    COMMON_DEFAULTS,
    Constraints,
    Strategy,
    check_metric_name,
    check_objectives,
    check_range,
    score_objectives,
)
from supernet.search.report import (
    choose_best,
    log_generation,
    public,
    rerank_finalists,
    result_doc,
    write_history,
    write_outputs,
)
from supernet.search.rerank import check_finetune
from supernet.search.settings import SearchSettings
from supernet.search.state import STATE_FILE, LoopState, fingerprint, load_state, save_state
from supernet.search.subset import check_fidelity, fitness_view, promoted, random_rows, stratified_rows, subset_rows

log = logging.getLogger(__name__)

# name -> "module:Class"; imported on use, so `search=evolution` never pays for optuna.
STRATEGIES: dict[str, str] = {
    "evolution": "supernet.search.evolution:EvolutionStrategy",
    "random": "supernet.search.random_search:RandomStrategy",
    "bayes": "supernet.search.bayes:BayesStrategy",
    "rl": "supernet.search.rl:RLStrategy",
}
# Stop when this many generations in a row bring no arch that was not scored before: the
# strategy has exhausted what it can find (tiny spaces, a converged policy).
MAX_STALL = 50


class Evaluator(Protocol):
    """``evaluate`` is all a full-fidelity search needs (and, optionally, ``metric``: what its
    records score; accuracy when absent); ``search.fidelity=subset`` also calls ``labels()`` (the
    validation labels, for the stratified subset) and ``subset(rows)`` (an evaluator of the same
    model on those rows)."""

    def evaluate(self, archs: list[Arch]) -> list[dict]: ...


# ---------------------------------------------------------------------------- config
def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise UsageError(f"search.strategy={name!r} is unknown: use one of {sorted(STRATEGIES)}")
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def _exhaustive(cfg: dict, space: SearchSpace) -> dict:
    """A budget that covers the whole space scores every arch once: random draws without
    repeats, whatever the strategy (an evolution's population could be larger than the space)."""
    if int(cfg["budget"]) > space.size() or cfg.get("strategy", "evolution") != "random":
        log.warning(
            "search.budget=%s covers all %d archs in the space: scoring every one (search=random)",
            cfg["budget"],
            space.size(),
        )
    return {**cfg, "budget": space.size(), "strategy": "random"}


def validate_search_config(cfg: Mapping, space: SearchSpace) -> SearchSettings:
    """Check the `search` config node against `space`; return it as a plain dict with the
    defaults of its strategy filled in. Raises `UsageError` naming the key, value and fix.
    Settings this function returned for the same space come back as they are (`SearchSettings`)."""
    if isinstance(cfg, SearchSettings) and cfg.checked_for(space):
        return cfg
    cfg = to_plain(cfg)
    cls = strategy_class(cfg.get("strategy", "evolution"))
    budget = {**COMMON_DEFAULTS, **cls.defaults, **cfg}["budget"]
    check_range("budget", budget, 1, integer=True)
    if int(budget) >= space.size():  # e.g. a data set's default budget in a space narrowed on the command line
        cfg = _exhaustive({**cfg, "budget": budget}, space)
        cls = strategy_class("random")
    full = {**COMMON_DEFAULTS, **cls.defaults, **cfg, "strategy": cls.name}
    full["latency"] = {**COMMON_DEFAULTS["latency"], **(full.get("latency") or {})}
    full["finetune"] = {**COMMON_DEFAULTS["finetune"], **(full.get("finetune") or {})}
    full["budget"] = int(full["budget"])
    if isinstance(full["objectives"], str):
        full["objectives"] = [full["objectives"]]
    full["objectives"] = check_objectives(full["objectives"])
    check_metric_name(full.get("metric"))
    if full.get("metric") is not None:  # named: its objectives can be checked now; null waits for the task
        score_objectives(full["objectives"], METRICS[str(full["metric"])])
    constraints = Constraints.from_cfg(full.get("constraints"))
    constraints.check_space(space)
    full["constraints"] = constraints.to_dict()
    check_range("latency.batch_size", full["latency"]["batch_size"], 1, integer=True)
    check_range("latency.repeats", full["latency"]["repeats"], 1, integer=True)
    check_range("latency.warmup", full["latency"]["warmup"], 0, integer=True)
    check_finetune(full["finetune"])
    check_tolerance(full)
    check_fidelity(full)
    return SearchSettings(full, space, cls.settings_class.build(full, space))


def check_tolerance(cfg: Mapping) -> None:
    """``search.tolerance``: null, or a margin in (0, 1] with a single objective (several have a
    Pareto front, which already trades the score for size)."""
    value = cfg.get("tolerance")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise UsageError(f"search.tolerance={value!r} must be in (0, 1], or null (the best score wins)")
    if len(cfg["objectives"]) > 1:
        raise UsageError(
            f"search.tolerance={value} picks the smallest of the best archs of one objective, but "
            f"search.objectives={list(cfg['objectives'])}: drop one or the other "
            "(the Pareto front trades score for size)"
        )


def needs_latency(cfg: Mapping) -> bool:
    """Whether the evaluator must measure latency_ms (an objective or a constraint uses it)."""
    if isinstance(cfg, SearchSettings):
        return cfg.common.needs_latency
    cfg = to_plain(cfg)
    return "latency_ms" in (cfg.get("objectives") or []) or (
        (cfg.get("constraints") or {}).get("max_latency_ms") is not None
    )


def make_strategy(space: SearchSpace, cfg: Mapping, seed: int, metric: Metric | None = None) -> Strategy:
    """The strategy of `cfg`, optimising `metric` (accuracy when None) and the costs it names."""
    cfg = validate_search_config(cfg, space)
    common = cfg.common
    objectives = score_objectives(common.objectives, metric)
    return strategy_class(common.strategy)(space, cfg, common.constraints, objectives, seed)


def search_metric(evaluator: Evaluator, cfg: SearchSettings) -> Metric:
    """What the search optimises: the evaluator's metric, which a named ``search.metric`` must be."""
    metric = getattr(evaluator, "metric", None) or default_metric(getattr(evaluator, "task", None))
    named = cfg.common.metric
    if named is not None and str(named) != metric.name:
        raise UsageError(
            f"search.metric={named} but the evaluator scores {metric.name} ({type(evaluator).__name__}): "
            f"use search.metric={metric.name} or an evaluator that scores {named}"
        )
    return metric


# ---------------------------------------------------------------------------- the loop
@dataclass
class SearchHooks:
    """What a caller plugs into `run_search` besides the evaluator; every field is optional.

    `writer`: a `SummaryWriter`-like object for the search/* scalars and the Pareto figure;
    `plot=False` skips pareto.png and that figure (half a second of matplotlib);
    `on_generation(g)` is called after generation g is saved (tests stop a search there);
    `should_stop() -> reason | None` is checked after each saved generation (a wall-clock budget);
    `rescore(archs) -> [{"acc", "loss"}]` re-ranks the ``search.finetune.top`` finalists at the
    end (supernet/search/rerank.py); without it that setting is ignored."""

    logger: logging.Logger | None = None
    writer: Any = None
    plot: bool = True
    on_generation: Callable[[int], None] | None = None
    should_stop: Callable[[], str | None] | None = None
    rescore: Callable[[list[Arch]], list[dict]] | None = None


def run_search(
    space: SearchSpace,
    evaluator: Evaluator,
    cfg: Mapping,
    out_dir: Path | str,
    seed: int,
    resume: bool = False,
    hooks: SearchHooks | None = None,
) -> dict:
    """Search until `cfg.budget` distinct archs are scored; write the outputs in `out_dir` and
    return the result (best arch and figures, Pareto set, evaluations, wall time)."""
    search = _Search(space, evaluator, validate_search_config(cfg, space), Path(out_dir), seed, hooks or SearchHooks())
    search.start(resume)
    with signals.steps():  # SIGTERM/SIGINT: stop once the generation in progress is saved
        while len(search.loop.history) < search.budget and search.loop.runner["stopped"] is None:
            search.generation()
            signals.check()
    if search.loop.runner["stopped"] is None:
        search.loop.runner["stopped"] = "budget"
    return search.finish()


class _Search:
    """One run of the loop: the strategy, its history and counters, and where they are saved."""

    def __init__(
        self,
        space: SearchSpace,
        evaluator: Evaluator,
        cfg: SearchSettings,
        out_dir: Path,
        seed: int,
        hooks: SearchHooks,
    ) -> None:
        self.space, self.evaluator, self.cfg, self.out_dir, self.seed, self.hooks = (
            space, evaluator, cfg, out_dir, seed, hooks,
        )  # fmt: skip
        self.logger = hooks.logger or log
        self.metric = search_metric(evaluator, cfg)
        self.key = self.metric.key  # the score's record field: val_acc, val_rmse, ...
        self.fingerprint = fingerprint(space, cfg, seed)  # the settings as given ([val_acc] stays)
        # From here on the objectives name the metric's field: [val_acc, params] -> [val_rmse, params].
        self.cfg = cfg = cfg.replace(objectives=score_objectives(cfg.common.objectives, self.metric))
        self.settings = cfg.common
        out_dir.mkdir(parents=True, exist_ok=True)
        self.constraints = self.settings.constraints
        self.budget = self.settings.budget
        self.strategy = make_strategy(space, cfg, seed, self.metric)
        self.loop = LoopState()
        self.by_arch: dict[Arch, dict] = {}
        self.subset_evaluator: Evaluator | None = None

    def start(self, resume: bool) -> None:
        """A new search, or (with `resume` and a saved state) the saved one, exactly where it was."""
        state_path = self.out_dir / STATE_FILE
        if resume and state_path.exists():
            self.loop, strategy_state = load_state(state_path, self.fingerprint)
            self.strategy.load_state_dict(strategy_state)
            self.logger.info(
                "resuming %s search from %s: generation %d, %d/%d evaluated",
                self.settings.strategy,
                state_path,
                self.loop.runner["generation"],
                len(self.loop.history),
                self.budget,
            )
            write_history(self.out_dir / "history.csv", self.loop.history, self.key)
        elif resume:
            self.logger.info("no %s in %s: starting a new search", STATE_FILE, self.out_dir)
        self.by_arch = {as_arch(r["arch"]): r for r in self.loop.history}
        if self.settings.fidelity == "subset":
            self._start_subset()
        self.started = time.perf_counter()
        self.wall_before = float(self.loop.runner["wall_s"])

    def _start_subset(self) -> None:
        """The evaluator of the subset's rows: drawn from the seed in a new search, the saved ones on a resume."""
        if not (hasattr(self.evaluator, "subset") and hasattr(self.evaluator, "labels")):
            raise UsageError(
                "search.fidelity=subset needs an evaluator that scores a subset of the validation rows "
                "(the inherited one): use search.fidelity=full"
            )
        if self.loop.subset is None:
            labels = self.evaluator.labels()
            rows = subset_rows(self.settings.subset.size, len(labels))
            task = getattr(self.evaluator, "task", None)
            if task is not None and task.is_regression:  # targets, not classes: a plain seeded sample
                self.loop.subset = random_rows(len(labels), rows, self.seed)
            else:
                self.loop.subset = stratified_rows(labels, rows, self.seed)
        self.subset_evaluator = self.evaluator.subset(self.loop.subset)

    def generation(self) -> None:
        """Ask, score the new archs, tell; then save the state and the history."""
        history, runner = self.loop.history, self.loop.runner
        generation = int(runner["generation"])
        archs = [as_arch(a) for a in self.strategy.ask()]
        _check_candidates(self.space, self.constraints, archs, self.strategy.name)
        archs, new = _within_budget(archs, self.by_arch, self.budget - len(history))
        for arch, record in zip(new, self._score(new, generation), strict=True):
            history.append(record)
            self.by_arch[arch] = record
        records = [self.by_arch[a] for a in archs]
        self.strategy.tell(archs, [fitness_view(r, self.key) for r in records])
        self._count(generation, bool(new))
        save_state(self.out_dir / STATE_FILE, self.fingerprint, self.loop, self.strategy.state_dict())
        write_history(self.out_dir / "history.csv", history, self.key)
        log_generation(self.logger, self.hooks.writer, self.space, self.cfg, runner, records, history, generation)
        if self.hooks.on_generation is not None:
            self.hooks.on_generation(generation)
        if self.hooks.should_stop is not None and runner["stopped"] is None:
            # e.g. a wall-clock budget: checked after a generation is saved, so resume stays exact.
            reason = self.hooks.should_stop()
            if reason:
                runner["stopped"] = reason
                self.logger.info("stopping after generation %d: %s", generation, reason)

    def _score(self, new: list[Arch], generation: int) -> list[dict]:
        """The records of the new archs: scored on the full split, or (``fidelity=subset``) on the
        subset, then on the full split for those `promoted` (the others keep ``<key>: None``)."""
        first, key = self.subset_evaluator or self.evaluator, self.key
        raws = _evaluate(first, new, key)
        records = [
            _record(self.space, self.constraints, arch, raw, generation, len(self.loop.history) + 1 + i, key)
            for i, (arch, raw) in enumerate(zip(new, raws, strict=True))
        ]
        if self.subset_evaluator is None:
            return records
        for r in records:
            r[f"{key}_subset"], r[key] = r[key], None
        node = self.settings.subset
        keep = promoted(records, self.loop.history, list(self.settings.objectives), node.top, node.margin)
        chosen = [r for r, k in zip(records, keep, strict=True) if k]
        for r, raw in zip(chosen, _evaluate(self.evaluator, [as_arch(r["arch"]) for r in chosen], key), strict=True):
            r[key] = float(raw[key])
        return records

    def _count(self, generation: int, any_new: bool) -> None:
        """The counters after `generation`: stall (a stop after `MAX_STALL`), latency scale, wall time."""
        history, runner = self.loop.history, self.loop.runner
        runner["generation"] = generation + 1
        runner["stall"] = 0 if any_new else runner["stall"] + 1
        if runner["stall"] >= MAX_STALL:
            runner["stopped"] = "stalled"
            self.logger.warning(
                "%s proposed no new arch for %d generations: stopping at %d/%d evaluations",
                self.strategy.name,
                MAX_STALL,
                len(history),
                self.budget,
            )
        if runner["latency_scale"] is None and "latency_ms" in self.settings.objectives and history:
            # Fixed once, so hypervolumes of different generations stay comparable.
            runner["latency_scale"] = max(r["latency_ms"] for r in history)
        runner["wall_s"] = self.wall_before + time.perf_counter() - self.started

    def finish(self) -> dict:
        """Choose (and re-rank) the winner, write the outputs and return the result."""
        history, cfg = self.loop.history, self.cfg
        best = choose_best(history, list(self.settings.objectives), self.settings.tolerance)
        reranked = rerank_finalists(history, cfg, self.hooks.rescore, self.out_dir, self.logger)
        if reranked is not None:
            best = reranked["best"]
        write_outputs(self.space, cfg, self.seed, self.out_dir, history, best, self.hooks.writer, self.hooks.plot)
        result = result_doc(self.space, cfg, self.seed, history, self.loop.runner, best, reranked)
        if self.loop.subset is not None:
            result["fidelity"]["rows"] = len(self.loop.subset)
        self.logger.info(
            "%s search done: %d evaluations in %.1f s; best %s",
            self.settings.strategy,
            len(history),
            self.loop.runner["wall_s"],
            public(best) if best else None,
        )
        return result


def _check_candidates(space: SearchSpace, constraints: Constraints, archs: list[Arch], name: str) -> None:
    """A strategy must never propose an arch outside the space or over a closed-form budget."""
    for arch in archs:
        problem = space.check(arch)
        if problem is None and not constraints.static_ok(space, arch):
            problem = f"arch {list(arch)} breaks {constraints.to_dict()}"
        if problem:
            raise RuntimeError(f"strategy {name} proposed an invalid candidate: {problem}")


def _evaluate(evaluator: Evaluator, archs: list[Arch], key: str = "val_acc") -> list[dict]:
    scored = evaluator.evaluate(archs) if archs else []
    if len(scored) != len(archs):
        raise RuntimeError(f"the evaluator returned {len(scored)} records for {len(archs)} archs")
    if scored and key not in scored[0]:
        raise UsageError(
            f"the search scores {key} but the evaluator's records hold {sorted(scored[0])}: give the evaluator "
            "that metric (search.metric)"
        )
    return scored


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
    key: str = "val_acc",
) -> dict:
    record = {
        "evaluation": evaluation,
        "arch": list(arch),
        "depth": len(arch),
        "params": int(raw.get("params", space.params(arch))),
        "flops": int(raw.get("flops", space.flops(arch))),
        key: float(raw[key]),
        "generation": generation,
    }
    if raw.get("latency_ms") is not None:
        record["latency_ms"] = float(raw["latency_ms"])
    record["violation"] = constraints.violation(record)
    record["feasible"] = record["violation"] == 0.0
    return record
