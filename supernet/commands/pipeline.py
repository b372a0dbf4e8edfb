"""``supernet`` (also ``python -m supernet``): train -> search -> export -> retrain in one run.

supernet
supernet data=fashion_mnist search.constraints.max_params=100000
supernet -m seed=0,1,2 sampler=uniform,sandwich
supernet resume=true                  # continue the newest pipeline run (or resume=<run dir>)

<run_dir>/train/     checkpoints, TensorBoard, result.json of the supernet
<run_dir>/search/    history.csv, pareto.json/png, best/arch.yaml, search_state.json, result.json
<run_dir>/subnet/    the exported winner (arch.yaml, model.safetensors, model.onnx)
<run_dir>/retrain/   the retrained winner (subnet/, metrics.json, TensorBoard, result.json)
<run_dir>/ensemble/  with retrain.ensemble=K > 1: members/<i>/, the averaged export subnet/, result.json
<run_dir>/result.json, summary.md, pipeline_request.json (the settings a resume must keep)

Resume: a phase whose result.json says ``ok`` is skipped; training continues from its newest
checkpoint, the search from its state, an ensemble from its finished members; export and
retraining are redone.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet import signals
from supernet.commands import search as search_job
from supernet.commands.pipeline_record import (  # noqa: F401  (names this module has offered)
    ENSEMBLE_KEYS,
    PIPELINE_RUNS,
    REQUEST_FILE,
    RESUME_FREE,
    RESUME_FREE_TRAINER,
    PipelineRun,
    recorded_phases,
    resume_run_dir,
    resumed_config,
    skip_finished,
    used_run_dir,
    write_request,
)
from supernet.commands.pipeline_settings import (  # noqa: F401
    DATA_AUTO,
    check_ensemble_budget,
    check_ensemble_data,
    check_finished_training,
    check_pipeline_config,
    ensemble_size,
    recipe_of,
    resolved_for_data,
    resolved_settings,
)
from supernet.commands.pipeline_summary import interrupted_result, metric_of, run_result, summary_md
from supernet.commands.run_settings import RunSettings
from supernet.core.metrics import Metric, resolve_metric
from supernet.data.datasets import DataBundle, load_data
from supernet.data.table_recipe import reported_later
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.files import run_dir_lock, to_plain, write_json
from supernet.io.export import export_subnet
from supernet.io.loading import load_for_scoring
from supernet.train.ensemble import EnsemblePlan, build_ensemble, member_records, read_history
from supernet.train.retrain import AUTO_KEYS, RetrainRequest, retrain_subnet

log = logging.getLogger(__name__)


def _boundary(run: PipelineRun, **keys: Any) -> DictConfig:
    """The config a lower layer still reads (Lightning's Trainer in `train_supernet`, the search
    job), built once at that boundary: the run's, resolved, with the phase's `keys` from its
    settings (not in struct mode)."""
    return OmegaConf.create({**to_plain(run.cfg), **to_plain(keys)})


# ---------------------------------------------------------------------------- the phases
@dataclass(frozen=True)
class Phase:
    """One phase, the same contract for all: `step(run)` does the work with the run's typed
    settings (``run.settings``: a hook's copy for this phase) and returns its result (what later
    phases read); `summary(result, wall_s)` is its entry under result.json's ``phases``;
    `applies(settings)` says whether this run has it; a `resumable` phase whose dir's
    result.json says ``ok`` is skipped on a resume, its result read back (`skip_finished`);
    `then(run)` follows it, skipped or not."""

    name: str
    step: Callable[[PipelineRun], dict[str, Any]]
    summary: Callable[[dict[str, Any], float], dict[str, Any]]
    resumable: bool = True
    applies: Callable[[RunSettings], bool] = lambda settings: True
    then: Callable[[PipelineRun], None] | None = None

    def run(self, run: PipelineRun) -> dict[str, Any]:
        done = skip_finished(run, self.name, run.out_dir / self.name) if self.resumable else None
        return done if done is not None else self.step(run)


def _train(run: PipelineRun) -> dict[str, Any]:
    settings = run.settings
    if settings.ckpt_path is not None:
        return {"skipped": f"ckpt_path={settings.ckpt_path}", "paths": {"checkpoint": settings.ckpt_path}}
    from supernet.train.fit import train_supernet

    train_dir = run.out_dir / "train"
    previous = train_dir if run.resuming and any((train_dir / "checkpoints").glob("*.ckpt")) else None
    cfg = _boundary(run, ckpt_path=str(previous) if previous else None, trainer=settings.trainer)
    return train_supernet(cfg, train_dir, bundle=run.bundle, settings=settings.training)


def _load_supernet(run: PipelineRun) -> None:
    """The trained supernet, calibrated on the training rows: what the search and export read."""
    run.supernet, _ = load_for_scoring(run.results["train"]["paths"]["checkpoint"], bundle=run.bundle)


def _train_summary(result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    if "skipped" in result:
        return {"wall_s": 0.0, "skipped": result["skipped"]}
    return {"wall_s": wall_s, "metrics": result["metrics"], "epochs": result["epochs"]}


def _search(run: PipelineRun) -> dict[str, Any]:
    search_dir = run.out_dir / "search"
    resume = run.resuming and (search_dir / search_job.STATE_FILE).is_file()
    settings = run.settings.search  # checked once the data was read (a hook's copy: taken as it is too)
    cfg = _boundary(run, resume=str(search_dir) if resume else False, ckpt_path=str(run.supernet.path), search=settings)
    searched = search_job.run(cfg, search_dir, supernet=run.supernet, bundle=run.bundle, settings=settings)
    if searched["best"] is None:
        raise UsageError("the search found no arch within the constraints")
    if run.settings.retrain.ensemble.size > 1:  # too few archs for the ensemble: said now, before any retraining
        _ensemble_records(run, searched, search_dir)
    return searched


def _search_summary(result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    return {"wall_s": wall_s, **{k: result[k] for k in ("strategy", "n_evaluations", "best")}}


def _ensemble_records(run: PipelineRun, searched: dict[str, Any], search_dir: Path) -> list[dict]:
    ensemble = run.settings.retrain.ensemble
    history = read_history(search_dir) if ensemble.source == "top" else []
    return member_records(searched, history, ensemble.size, ensemble.source)


def _export(run: PipelineRun) -> dict[str, Any]:
    searched, bundle, settings = run.results["search"], run.bundle, run.settings.export
    arch = tuple(searched["best"]["arch"])
    exported = export_subnet(
        run.supernet,
        arch,
        run.out_dir / "subnet",
        overwrite=True,
        search_figures=searched["best"],
        budget=searched.get("constraints"),
        verify_x=bundle.val_x[: settings.verify_samples].cpu(),
        onnx=settings.onnx,
    )
    if bundle.test_x is not None:
        # The arch is already chosen: the test split only reports how good it is.
        metric = metric_of(searched)
        model, space = run.supernet.model, run.supernet.space
        scorer = InheritedEvaluator(model, space, bundle.test_x, bundle.test_y, metric=metric, task=bundle.task)
        exported[f"test_{metric.short}_inherited"] = scorer.scores([arch])[0]
    return exported


def _export_summary(result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    return {"wall_s": wall_s, "path": result["path"], "max_abs_diff": result["max_abs_diff"]}


def search_metric(run: PipelineRun) -> Metric:
    """The metric the search ranked by (a search result without one ranked by accuracy)."""
    return metric_of(run.results["search"])


def _retrain_request(run: PipelineRun) -> RetrainRequest:
    """The winner's retraining (the ensemble's members are retrained the same way), from the
    run's settings: the recipe resolved and the trainer (a hook may cap its time), both checked
    once a run."""
    settings = run.settings
    return settings.retrain.request(
        run.out_dir / "subnet", run.out_dir / "retrain", settings.trainer, settings.seed, settings.tensorboard
    )


def _retrain(run: PipelineRun) -> dict[str, Any]:
    # The export's data config is the pipeline's own: no second read.
    return retrain_subnet(_retrain_request(run), bundle=run.bundle)


def _retrain_summary(result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    metrics = result["metrics"]
    recipe = {k: result[k] for k in AUTO_KEYS if k in result}  # what an auto became
    return {"wall_s": wall_s, "init": metrics["init"], "epochs": metrics["epochs"], **recipe}


def _ensemble(run: PipelineRun) -> dict[str, Any]:
    """``retrain.ensemble=K``: the K members retrained like the winner, averaged (supernet/train/ensemble.py)."""
    plan = EnsemblePlan(
        records=_ensemble_records(run, run.results["search"], run.out_dir / "search"),
        source=run.settings.retrain.ensemble.source,
        template=_retrain_request(run),
        winner=run.results["retrain"],
        out_dir=run.out_dir / "ensemble",
        metric=search_metric(run),
        budget=run.results["search"].get("constraints"),
        verify_samples=run.settings.export.verify_samples,
    )
    return build_ensemble(plan, run.supernet, run.bundle)


def _ensemble_summary(result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    doc = result["ensemble"]
    return {"wall_s": wall_s, "k": doc["k"], "from": doc["from"], "path": doc["path"]}


# In order; export is redone on a resume (it overwrites only its own export).
PIPELINE_PHASES = (
    Phase("train", _train, _train_summary, then=_load_supernet),
    Phase("search", _search, _search_summary),
    Phase("export", _export, _export_summary, resumable=False),
    Phase("retrain", _retrain, _retrain_summary),
    Phase("ensemble", _ensemble, _ensemble_summary, applies=lambda settings: settings.retrain.ensemble.size > 1),
)
PHASES = tuple(p.name for p in PIPELINE_PHASES)


@dataclass
class PhaseHooks:
    """What a caller of `run_pipeline` may plug in around each phase (both optional).

    `before(name, settings) -> settings`: the run's settings phase `name` runs with, a changed
    copy (`dataclasses.replace`; e.g. a share of a wall-clock cap in ``trainer.max_time`` or the
    search's ``time_budget_s``: the scikit-learn estimators' ``time_limit_s``), for that phase
    only; `after(name, summary)`: called with the phase's summary (``wall_s``...) once it is done
    (their progress lines)."""

    before: Callable[[str, RunSettings], RunSettings] | None = None
    after: Callable[[str, dict[str, Any]], None] | None = None


def _run_phases(run: PipelineRun, hooks: PhaseHooks) -> None:
    settings = run.settings
    for phase in PIPELINE_PHASES:
        if not phase.applies(settings):
            continue
        run.settings = hooks.before(phase.name, settings) if hooks.before is not None else settings
        run.current = phase.name
        t0 = time.perf_counter()
        try:
            result = run.results[phase.name] = phase.run(run)
        finally:
            run.settings = settings  # a hook's copy is for its phase only
        wall_s = round(time.perf_counter() - t0, 2)
        if phase.name in run.skipped:
            wall_s = run.skipped[phase.name]  # finished before: its own wall time, not this skip's
        elif "skipped" not in result:
            run.ran.append(phase.name)
        run.phases[phase.name] = phase.summary(result, wall_s)
        if phase.then is not None:
            phase.then(run)
        if hooks.after is not None:
            hooks.after(phase.name, run.phases[phase.name])
        if run.bundle is not None and run.bundle.nbytes >= RELEASE_FROM_BYTES:
            release_memory()


# A full collection costs about 0.15 s with torch and Lightning loaded: 8% of a 569-row table's
# job at one thread (5 phases), for nothing on data that small (docs/experiments/speed.md).
RELEASE_FROM_BYTES = 64 * 2**20


def release_memory() -> None:
    """Free what a finished phase held before the next one allocates: its trainer and evaluators
    sit in reference cycles, and glibc keeps freed heap pages unless asked to return them (the
    Fashion-MNIST job's peak RSS: 3.1 GB without either, 2.9 GB with the collection alone). The
    pipeline calls it after a phase on data of `RELEASE_FROM_BYTES` or more."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def run_pipeline(
    cfg: DictConfig,
    out_dir: Path,
    bundle: DataBundle | None = None,
    resuming: bool = False,
    hooks: PhaseHooks | None = None,
    settings: RunSettings | None = None,
) -> tuple[dict[str, Any], PipelineRun]:
    """The phases in `out_dir` (data, train, search, export, retrain, ensemble), then ``result.json`` and
    ``summary.md``: the job below and the scikit-learn estimators (`supernet.sklearn`, which pass
    their in-memory data as `bundle`). `settings`: those `check_pipeline_config` built from `cfg`
    (built here when not given). Returns the result and the run's state."""
    started = time.perf_counter()
    state = PipelineRun(cfg, out_dir, resuming=resuming)
    state.settings = settings if settings is not None else check_pipeline_config(cfg)
    state.recorded = recorded_phases(out_dir) if resuming else {}
    try:
        _data_phase(state, bundle)
        _run_phases(state, hooks or PhaseHooks())
    except signals.Interrupted as exc:
        exc.phase = state.current
        write_json(out_dir / "result.json", interrupted_result(state, exc, round(time.perf_counter() - started, 2)))
        raise
    result = run_result(state, round(time.perf_counter() - started, 2))
    write_json(out_dir / "result.json", result)
    (out_dir / "summary.md").write_text(summary_md(result))
    return result, state


def _data_phase(state: PipelineRun, bundle: DataBundle | None) -> None:
    """Read the data (unless given), check the metric against its task, resolve the ``auto`` keys
    (the loader's decisions are said in that step's one line, with the others)."""
    t0 = time.perf_counter()
    if bundle is None:
        with reported_later():
            bundle = load_data(state.cfg.data)
    state.bundle = bundle
    # A metric the task cannot use is refused before the supernet trains.
    resolve_metric(state.cfg.search.get("metric"), state.bundle.task, state.bundle.num_classes)
    state.phases["data"] = {"wall_s": round(time.perf_counter() - t0, 2), "summary": state.bundle.summary()}
    state.cfg, state.settings = resolved_settings(state.cfg, state.settings, state.bundle)


# ---------------------------------------------------------------------------- the job
def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    settings = check_pipeline_config(cfg)  # the run's settings, built once before anything is read
    previous = resume_run_dir(cfg.get("resume")) or used_run_dir(out_dir)
    out_dir = previous or out_dir
    with run_dir_lock(out_dir, "pipeline"), signals.advice(f"continue with supernet resume={out_dir}"):
        if previous is not None:  # one job per run dir, locked before anything is read
            cfg = resumed_config(cfg, previous)
            settings = check_pipeline_config(cfg)  # the run's own settings, as it was started with
        else:
            write_request(cfg, out_dir)
        result, _ = run_pipeline(cfg, out_dir, resuming=previous is not None, settings=settings)
        (out_dir / "error.txt").unlink(missing_ok=True)  # a refused or failed earlier attempt's: resolved now
    print(summary_md(result))
    return result
