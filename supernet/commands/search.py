"""``supernet-search``: search sub-architectures of a trained supernet (conf/search.yaml).

supernet-search ckpt_path=outputs/train/runs/<stamp> search.constraints.max_params=100000
supernet-search ckpt_path=last search=random search.budget=2000
supernet-search resume=true

A supernet checkpoint + its validation split -> history, Pareto front, best arch. The test split
is never touched here: candidates are selected on the validation split only, by ``search.metric``
(null: accuracy, or rmse for a regression task; `supernet.core.metrics`):

supernet-search ckpt_path=last search.metric=balanced_accuracy
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig

from supernet import signals
from supernet.commands.overrides import (
    RESUME_FILES,
    differences,
    explicit_overrides,
    is_explicit,
    runs_dir,
)
from supernet.commands.resume import newest_run
from supernet.core.device import pick_device
from supernet.core.metrics import METRICS, Metric, resolve_metric
from supernet.core.task import Task
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.files import read_json_object, run_dir_lock, to_plain, write_json
from supernet.io.checkpoint import data_config, load_supernet
from supernet.io.loading import CKPT_REQUIRED, load_for_scoring
from supernet.search import SearchHooks, needs_latency, run_search, validate_search_config
from supernet.search.base import score_objectives
from supernet.search.rerank import recipe_node

log = logging.getLogger(__name__)

SEARCH_RUNS = runs_dir("search")
STATE_FILE = RESUME_FILES["search"]
REQUEST_FILE = "search_request.json"


class Scoring(NamedTuple):
    """How candidates are scored: the evaluator, its time budget (stand-alone only) and the
    fine-tuned re-ranking of the finalists (inherited only, with ``search.finetune.top``)."""

    kind: str
    evaluator: Any
    should_stop: Any = None
    rescore: Any = None


def resume_dir(resume: Any) -> Path | None:
    """``resume=true`` -> the newest search run with a saved state; ``resume=<dir>`` -> that dir."""
    return newest_run(resume, "search")


def run(cfg: DictConfig, out_dir: Path, supernet=None, bundle=None, settings=None) -> dict[str, Any]:
    """Run a search. The pipeline passes the already-loaded `supernet` and data `bundle`, and its
    `settings` (the `SearchSettings` of ``cfg.search``, checked for the space: taken as they are)."""
    previous = resume_dir(cfg.get("resume"))
    out_dir = previous or out_dir
    with run_dir_lock(out_dir, "search"):  # one search per run dir, before anything is read
        if supernet is None:
            ckpt_path = _ckpt_path(cfg, previous)
            if ckpt_path is None:
                raise UsageError(CKPT_REQUIRED)
            supernet = load_supernet(ckpt_path)
        # The search settings are checked (and recorded for a resume) before any data is read.
        search_cfg = validate_search_config(settings if settings is not None else to_plain(cfg.search), supernet.space)
        if previous is not None:
            search_cfg = resumed_settings(previous, search_cfg, explicit_overrides())
        # The metric against the checkpoint's task, and the objectives against the metric: fail fast.
        task = bundle.task if bundle is not None else Task.from_dict(supernet.data.get("task"))
        search_metric(search_cfg, task, bundle.num_classes if bundle is not None else supernet.space.num_classes)
        device = pick_device(str(cfg.get("device", "auto")))
        write_json(out_dir / REQUEST_FILE, {"ckpt_path": str(supernet.path), "search": search_cfg})
        with signals.advice(lambda: _resume_advice(out_dir)):
            return _scored(cfg, out_dir, supernet, bundle, search_cfg, device, previous)


def _resume_advice(out_dir: Path) -> str:
    """How an interrupted search continues: from its state once a generation was saved."""
    if (out_dir / STATE_FILE).is_file():
        return f"continue with supernet-search resume={out_dir}"
    return "no generation was saved yet: run the command again"


def _scored(cfg, out_dir, supernet, bundle, search_cfg, device, previous) -> dict[str, Any]:
    supernet, bundle = load_for_scoring(supernet, to_plain(cfg.get("data")) or {}, bundle=bundle)
    metric = search_metric(search_cfg, bundle.task, bundle.num_classes)
    torch.set_float32_matmul_precision("high")
    scoring = build_scoring(cfg, search_cfg, supernet, bundle, device, metric)
    started = time.perf_counter()
    result = _search(cfg, supernet, search_cfg, out_dir, scoring, resume=previous is not None)
    result.update(_run_fields(supernet, bundle, device, scoring, time.perf_counter() - started, out_dir, result))
    if result.get("best"):
        result["objective"] = result["best"].get(metric.key)  # the metric as it is (lower rmse is better)
    write_json(out_dir / "result.json", result)
    return result


def search_metric(search_cfg: dict, task: Task, num_classes: int) -> Metric:
    """``search.metric`` for the task (null: its default), its objectives checked against it."""
    metric = resolve_metric(search_cfg.get("metric"), task, num_classes)
    score_objectives(search_cfg["objectives"], metric)
    return metric


def resumed_settings(previous: Path, search_cfg: dict, explicit: set[str]) -> dict:
    """A resumed search keeps the settings it was started with (``search_request.json``); a
    setting given on the command line that differs from them is refused."""
    request = previous / REQUEST_FILE
    if not request.is_file():  # a state written before requests were recorded
        return search_cfg
    saved = read_json_object(request, "resume")["search"]
    for key, old, new in differences(saved, search_cfg, "search"):
        if is_explicit(key, explicit):
            raise UsageError(
                f"resume={previous}: {key}={json.dumps(new)} but the search was started with "
                f"{json.dumps(old)}; a resumed search keeps its settings: drop the override or start a new search"
            )
    return saved


def _ckpt_path(cfg: DictConfig, previous: Path | None) -> Any:
    """``ckpt_path``, or on a resume without one the checkpoint the resumed search recorded."""
    ckpt_path = cfg.get("ckpt_path")
    if previous is not None and ckpt_path is None and (previous / REQUEST_FILE).is_file():
        ckpt_path = json.loads((previous / REQUEST_FILE).read_text())["ckpt_path"]
    return ckpt_path


def build_scoring(
    cfg: DictConfig, search_cfg: dict, supernet, bundle, device: torch.device, metric: Metric | None = None
) -> Scoring:
    """The evaluator ``search.evaluator`` names: inherited weights, or stand-alone training; both
    score `metric` (accuracy when None)."""
    metric = metric or METRICS["accuracy"]
    latency = search_cfg["latency"] if needs_latency(search_cfg) else None
    kind = search_cfg.get("evaluator", "inherited")
    if kind == "standalone" and search_cfg["finetune"]["top"]:
        raise UsageError(
            "search.finetune.top re-ranks candidates scored with inherited weights; a stand-alone search's "
            "candidates are already trained: leave it at 0"
        )
    if kind == "standalone":
        return _standalone_scoring(search_cfg, supernet, bundle, int(cfg.seed), (device, latency), metric)
    if kind != "inherited":
        raise UsageError(f"search.evaluator={kind!r} must be inherited or standalone")
    evaluator = InheritedEvaluator(
        supernet.model,
        supernet.space,
        bundle.val_x,
        bundle.val_y,
        device=device,
        amp=bool(cfg.get("amp", False)),
        latency=latency,
        metric=metric,
        task=bundle.task,
    )
    rescore = None
    if search_cfg["finetune"]["top"]:
        rescore = _finetune_scorer(supernet, bundle, search_cfg["finetune"], int(cfg.seed), device, metric)
    return Scoring(kind, evaluator, should_stop=_time_budget(search_cfg), rescore=rescore)


def _time_budget(search_cfg: dict) -> Any:
    """``search.time_budget_s`` (a key of ``search=standalone``; the scikit-learn estimators set it
    from ``time_limit_s``): stop asking for candidates after that many seconds; None: no limit."""
    seconds = search_cfg.get("time_budget_s")
    if seconds is None:
        return None
    from supernet.evaluation.standalone_search import TimeBudget

    return TimeBudget(float(seconds)).start()


def _standalone_scoring(search_cfg: dict, supernet, bundle, seed: int, where: tuple, metric: Metric) -> Scoring:
    """The naive baseline: every candidate trained from scratch (the supernet gives only the space),
    scored by `metric`. `where`: (device, latency settings or None)."""
    from supernet.evaluation.standalone_cache import StandaloneCache
    from supernet.evaluation.standalone_search import StandaloneEvaluator, TimeBudget, check_standalone_config

    settings = check_standalone_config(search_cfg, data_config(supernet))
    should_stop = TimeBudget(settings.time_budget_s)
    device, latency = where
    evaluator = StandaloneEvaluator(
        supernet.space,
        bundle,
        settings.recipe,
        seed=seed,
        device=device,
        latency=latency,
        metric=metric,
        cache=StandaloneCache(settings.cache),
        time_budget=should_stop,
    )
    return Scoring("standalone", evaluator, should_stop=should_stop)


def _finetune_scorer(supernet, bundle, node: dict, seed: int, device: torch.device, metric: Metric):
    """``archs -> [{"loss", "acc" or the metric's name}]`` after the ``search.finetune`` recipe (the
    final re-ranking), trained by the task's loss."""
    from supernet.evaluation.finetune import FinetuneRecipe, finetuned_scores

    recipe = FinetuneRecipe.from_cfg(recipe_node(node), "search.finetune", other_keys=["top"])
    return lambda archs: finetuned_scores(
        supernet.model, archs, bundle, recipe, seed=seed, device=device, metric=metric
    )


def _search(cfg: DictConfig, supernet, search_cfg: dict, out_dir: Path, scoring: Scoring, resume: bool) -> dict:
    """The ask/tell loop, its TensorBoard writer (``logger=tensorboard``) closed whatever happens."""
    writer = None
    if cfg.logger.name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(out_dir))
    try:
        return run_search(
            supernet.space,
            scoring.evaluator,
            search_cfg,
            out_dir,
            seed=int(cfg.seed),
            resume=resume,
            hooks=SearchHooks(
                writer=writer,
                plot=bool(cfg.get("figures", True)),
                should_stop=scoring.should_stop,
                rescore=scoring.rescore,
            ),
        )
    finally:
        if writer is not None:
            writer.close()


def _run_fields(supernet, bundle, device, scoring: Scoring, wall_s: float, out_dir: Path, searched: dict) -> dict:
    """What result.json adds to the search's own figures: the run's inputs, cost and files."""
    evaluator = scoring.evaluator
    return {
        "task": "search",
        "status": "ok",
        "ckpt_path": str(supernet.path),
        "ckpt_sha256": supernet.sha256,
        "device": str(device),
        "evaluator": scoring.kind,
        "archs_scored_this_run": getattr(evaluator, "n_scored", getattr(evaluator, "n_trained", None)),
        "scoring_wall_s": round(wall_s, 2),
        "data": bundle.summary(),
        "paths": {
            "run_dir": str(out_dir),
            "history": str(out_dir / "history.csv"),
            "pareto": str(out_dir / "pareto.json"),
            "best": str(out_dir / "best" / "arch.yaml"),
            **({"finetune": str(out_dir / "finetune.csv")} if "finetune" in searched else {}),
        },
    }
