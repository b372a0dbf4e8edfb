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
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet import signals
from supernet.commands import search as search_job
from supernet.commands.overrides import (
    RESUME_FILES,
    differences,
    explicit_node,
    is_explicit,
    resumed_dir,
    runs_dir,
    typed_overrides,
)
from supernet.config import build_space, check_train_config
from supernet.core.metrics import METRICS, Metric, resolve_metric
from supernet.core.space import arch_str
from supernet.data.datasets import DataBundle, load_data
from supernet.data.table_recipe import AUTO, RECIPES, resolve
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.files import conf_node, read_json_object, run_dir_lock, to_plain, write_json
from supernet.io.checkpoint import LoadedSupernet, resolve_checkpoint
from supernet.io.export import export_subnet
from supernet.io.loading import load_for_scoring
from supernet.search import validate_search_config
from supernet.train.ensemble import (
    EnsemblePlan,
    build_ensemble,
    check_ensemble_config,
    member_records,
    read_history,
)
from supernet.train.retrain import AUTO_KEYS, INITS, RetrainRequest, check_recipe, retrain_subnet

log = logging.getLogger(__name__)

PIPELINE_RUNS = runs_dir("pipeline")
REQUEST_FILE = RESUME_FILES["pipeline"]
PHASES = ("train", "search", "export", "retrain", "ensemble")  # ensemble: only with retrain.ensemble > 1
# Keys the tables' data configs may leave at auto, resolved once the training rows and classes are counted
# (the others, the retraining recipe's and the data's, are resolved where they are read).
DATA_AUTO = {
    "search.budget": "search_budget",
    "retrain.init": "retrain_init",
    "retrain.ensemble": "ensemble",
    "retrain.ensemble_from": "ensemble_from",
}
# Keys a resume may change: they decide where files are read and how progress is shown, never a
# result. Any other difference from the saved request is refused.
RESUME_FREE = ("resume", "logger", "device", "figures", "data.root", "data.num_workers")
RESUME_FREE_TRAINER = ("enable_progress_bar", "log_every_n_steps")
ENSEMBLE_KEYS = ("retrain.ensemble", "retrain.ensemble_from")  # open to a resume until the ensemble is built


def _recipe(cfg: DictConfig) -> dict[str, Any]:
    """The retraining recipe out of ``retrain.*``: the optimiser and the keys of the shared recipe
    block (conf/blocks/retrain.yaml), not the pipeline's own (init, max_epochs, ensemble...)."""
    r = to_plain(cfg.retrain)
    return {k: r[k] for k in ("optim", *conf_node("blocks/retrain"))}


def _with(cfg: DictConfig, **keys: Any) -> DictConfig:
    """A phase's config: the pipeline's, resolved, with a few keys set (not in struct mode)."""
    return OmegaConf.create({**to_plain(cfg), **keys})


def check_pipeline_config(cfg: DictConfig) -> None:
    """Everything that can be checked before the first phase starts."""
    if cfg.ckpt_path is None:
        check_train_config(cfg)
    elif not cfg.get("resume"):  # a resume keeps the run's own ckpt_path, accepted when it started
        check_finished_training(cfg.ckpt_path)
    space = build_space(cfg.space, cfg.data)
    validate_search_config(_early_search(cfg), space)
    check_recipe(_recipe(cfg), optim_key="retrain.optim")
    if int(cfg.retrain.max_epochs) < 1:
        raise UsageError(f"retrain.max_epochs={cfg.retrain.max_epochs} must be >= 1")
    if cfg.retrain.init not in (*INITS, AUTO):
        raise UsageError(f"retrain.init={cfg.retrain.init!r} must be inherited, scratch or auto")
    check_ensemble_config(cfg.retrain.ensemble, cfg.retrain.ensemble_from, auto=True)
    check_ensemble_budget(cfg, space.size())


def check_ensemble_budget(cfg: DictConfig, space_size: int) -> None:
    """``retrain.ensemble=K`` from the search's top K: refused before training when the search
    cannot score K distinct archs (its budget, the space's size); the feasible count waits for the
    search, and a resume accepts a lower K then (`ENSEMBLE_KEYS`)."""
    k, budget = cfg.retrain.ensemble, cfg.search.budget
    if cfg.retrain.ensemble_from != "top" or not isinstance(k, int) or k <= 1:
        return
    by_budget = isinstance(budget, int) and budget <= space_size
    most = budget if by_budget else space_size
    if k > most:
        scored = f"search.budget={budget} scores" if by_budget else "the space has"
        raise UsageError(
            f"retrain.ensemble={k} with retrain.ensemble_from=top but {scored} at most {most} distinct archs; "
            "lower retrain.ensemble, use retrain.ensemble_from=seeds, or raise search.budget"
        )


def check_ensemble_data(cfg: DictConfig, bundle: DataBundle) -> None:
    """``retrain.ensemble_from=folds``: the K folds must fit the training rows (checked once the
    data is read, before training)."""
    if cfg.retrain.ensemble_from == "folds" and ensemble_size(cfg) > 1:
        from supernet.train.folds import make_folds

        make_folds(bundle, ensemble_size(cfg), int(cfg.seed))


def check_finished_training(ckpt_path: Any) -> None:
    """``ckpt_path=`` hands the search a supernet: one whose training ended (its run dir's
    result.json says ok), not a killed run's first epochs."""
    ckpt = resolve_checkpoint(str(ckpt_path))
    run_dir = ckpt.parent.parent
    if ckpt.parent.name != "checkpoints" or _finished(run_dir) is not None:
        return
    pipeline_dir = run_dir.parent if (run_dir.parent / REQUEST_FILE).is_file() else None
    fix = f"supernet resume={pipeline_dir}" if pipeline_dir else f"supernet-train ckpt_path={run_dir}"
    raise UsageError(
        f"ckpt_path={ckpt_path} is an unfinished training run ({run_dir} has no result.json): "
        f"finish it with {fix}, or pass a finished one"
    )


def _early_search(cfg: DictConfig) -> dict[str, Any]:
    """The search block as checked before the data is read: an ``auto`` budget, which waits for
    the number of training rows, is checked as the smallest value it can become."""
    search = to_plain(cfg.search)
    if search.get("budget") == AUTO:
        search["budget"] = min(r["search_budget"] for r in RECIPES)
    return search


def resolved_for_data(cfg: DictConfig, bundle: DataBundle) -> DictConfig:
    """`cfg` with each ``auto`` of `DATA_AUTO` (``search.budget``, ``retrain.init``,
    ``retrain.ensemble``, ``retrain.ensemble_from``) replaced by what it stands for on `bundle`'s
    training rows and classes (`supernet.data.table_recipe`), logged in one line; checked again
    once resolved."""
    rows, regression = len(bundle.train_x), bundle.task.is_regression
    chosen = {
        key: resolve(name, AUTO, rows, regression, bundle.num_classes)
        for key, name in DATA_AUTO.items()
        if OmegaConf.select(cfg, key) == AUTO
    }
    if not chosen:
        check_ensemble_data(cfg, bundle)
        return cfg
    cfg = OmegaConf.create(to_plain(cfg))
    for key, value in chosen.items():
        OmegaConf.update(cfg, key, value)
    counted = f"{rows} training rows" + ("" if regression else f", {bundle.num_classes} classes")
    log.info("%s (%s)", ", ".join(f"{k}=auto -> {v}" for k, v in chosen.items()), counted)
    check_ensemble_config(cfg.retrain.ensemble, cfg.retrain.ensemble_from)
    check_ensemble_budget(cfg, build_space(cfg.space, cfg.data, bundle.in_features, bundle.num_classes).size())
    check_ensemble_data(cfg, bundle)
    return cfg


def ensemble_size(cfg: DictConfig) -> int:
    """``retrain.ensemble`` (a run saved before ensembles existed has none: the winner alone)."""
    k = cfg.retrain.get("ensemble")
    return 1 if k is None else int(k)


# ---------------------------------------------------------------------------- resume
def resume_run_dir(resume: Any) -> Path | None:
    """``resume=true`` -> the newest pipeline run with a saved request; ``resume=<dir>`` -> that dir."""
    if resume in (False, None, "false"):
        return None
    found = resumed_dir(resume, "pipeline")
    if found is None and resume in (True, "true"):
        raise UsageError(f"resume=true: no pipeline run with {REQUEST_FILE} under {PIPELINE_RUNS}/")
    if found is None:
        raise UsageError(
            f"resume={resume}: {Path(str(resume))} has no {REQUEST_FILE}; pass a pipeline run dir or resume=true"
        )
    return found


def _request(cfg: DictConfig) -> dict[str, Any]:
    """The settings that decide the run's results (what a resume must keep)."""
    doc = {k: v for k, v in to_plain(cfg).items() if k not in RESUME_FREE and k != "hydra"}
    doc["trainer"] = {k: v for k, v in doc.get("trainer", {}).items() if k not in RESUME_FREE_TRAINER}
    doc["data"] = {k: v for k, v in doc.get("data", {}).items() if f"data.{k}" not in RESUME_FREE}
    return doc


def resumed_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The run's saved settings (``pipeline_request.json``), with this command line's
    `RESUME_FREE` keys on top; a setting given on the command line that differs is refused."""
    saved = read_json_object(run_dir / REQUEST_FILE, "resume")
    check_request(saved, _request(cfg), run_dir)
    explicit = typed_overrides()
    # The ensemble's size and source are checked against the search's result; until the ensemble is
    # built a resume may change them (the fix of a refusal), and the request records the change.
    open_keys = () if _finished(run_dir / "ensemble") else ENSEMBLE_KEYS
    changed = {}
    for key, old, new in differences(saved, _request(cfg)):
        if key in open_keys and is_explicit(key, explicit):
            changed[key.split(".", 1)[1]] = new
            continue
        if is_explicit(key, explicit):
            raise UsageError(
                f"resume={run_dir}: {_changed(key, old, new, saved, explicit)}; a resume keeps the run's settings "
                f"(only {', '.join(RESUME_FREE[1:])}, trainer.{'/'.join(RESUME_FREE_TRAINER)} may change): "
                "drop the override or start a new run"
            )
    asked = to_plain(cfg)
    merged = {**asked, **saved}
    merged["trainer"] = {**saved["trainer"], **{k: asked["trainer"].get(k) for k in RESUME_FREE_TRAINER}}
    free_data = [key.split(".", 1)[1] for key in RESUME_FREE if key.startswith("data.")]
    merged["data"] = {**saved["data"], **{k: asked["data"][k] for k in free_data if k in asked["data"]}}
    if changed:
        merged["retrain"] = {**saved["retrain"], **changed}
        log.info("resume: %s", ", ".join(f"retrain.{k}={v}" for k, v in changed.items()))
        write_request(OmegaConf.create(merged), run_dir)
    return OmegaConf.create(merged)


def _changed(key: str, old: Any, new: Any, saved: dict[str, Any], typed: dict[str, str]) -> str:
    """The override a resume refuses, named as typed: ``data=friedman`` changed data.batch_size, but
    the override to drop is ``data=friedman`` (the run's option named by its ``name`` key)."""
    node = explicit_node(key, typed)
    if node is None or node == key:
        return f"{key}={json.dumps(new)} but the run has {json.dumps(old)}"
    section = saved.get(node) if "." not in node else None
    was = section.get("name") if isinstance(section, dict) else None
    if was is not None and str(was) != typed[node].split("=", 1)[1]:
        return f"{typed[node]} but the run has {node}={was}"
    return f"{typed[node]} sets {key}={json.dumps(new)} but the run has {json.dumps(old)}"


def check_request(saved: dict[str, Any], asked: dict[str, Any], run_dir: Path) -> None:
    """A ``pipeline_request.json`` that lacks a section the pipeline writes is not one (``{}``)."""
    missing = [k for k in asked if isinstance(asked[k], dict) and not isinstance(saved.get(k), dict)]
    if missing:
        raise UsageError(
            f"resume={run_dir}: {run_dir / REQUEST_FILE} lacks {', '.join(missing)}; it is no request the pipeline "
            "wrote: start a new run"
        )


def _finished(phase_dir: Path) -> dict[str, Any] | None:
    """A phase's result.json when it says ``ok`` (the phase is then skipped on resume)."""
    path = phase_dir / "result.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("status") == "ok" else None


def _skip(run: PipelineRun, name: str, phase_dir: Path) -> dict[str, Any] | None:
    """On a resume, phase `name`'s result when it finished (it is then skipped); its wall time as
    recorded (the run's last result.json, else the phase's own) goes to ``run.skipped``."""
    done = _finished(phase_dir) if run.resuming else None
    if done is not None:
        recorded = run.recorded.get(name, {}).get("wall_s", done.get("wall_s"))
        run.skipped[name] = float(recorded or 0.0)
    return done


def _recorded_phases(out_dir: Path) -> dict[str, dict]:
    """The phases of the run dir's last ``result.json`` (finished, or interrupted), if any."""
    try:
        phases = json.loads((out_dir / "result.json").read_text()).get("phases")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return {}
    return phases if isinstance(phases, dict) else {}


# ---------------------------------------------------------------------------- phases
@dataclass
class PipelineRun:
    """What the phases share: the config, the run dir, the data, and each phase's result."""

    cfg: DictConfig
    out_dir: Path
    resuming: bool
    bundle: DataBundle | None = None
    supernet: LoadedSupernet | None = None
    results: dict[str, dict] = field(default_factory=dict)
    phases: dict[str, dict] = field(default_factory=dict)
    current: str = "data"  # the phase in progress (what an interrupted run's result.json names)
    ran: list[str] = field(default_factory=list)  # the phases this invocation ran (not skipped)
    skipped: dict[str, float] = field(default_factory=dict)  # finished phase -> its recorded wall_s
    recorded: dict[str, dict] = field(default_factory=dict)  # the phases of the last result.json


def _train(run: PipelineRun) -> dict[str, Any]:
    cfg, train_dir = run.cfg, run.out_dir / "train"
    if cfg.ckpt_path is not None:
        return {"skipped": f"ckpt_path={cfg.ckpt_path}", "paths": {"checkpoint": str(cfg.ckpt_path)}}
    done = _skip(run, "train", train_dir)
    if done is not None:
        return done
    from supernet.train.fit import train_supernet

    previous = train_dir if run.resuming and any((train_dir / "checkpoints").glob("*.ckpt")) else None
    resume_cfg = _with(cfg, ckpt_path=str(previous) if previous else None)
    return train_supernet(resume_cfg, train_dir, bundle=run.bundle)


def _search(run: PipelineRun) -> dict[str, Any]:
    search_dir = run.out_dir / "search"
    done = _skip(run, "search", search_dir)
    if done is not None:
        return done
    resume = run.resuming and (search_dir / search_job.STATE_FILE).is_file()
    search_cfg = _with(run.cfg, resume=str(search_dir) if resume else False, ckpt_path=str(run.supernet.path))
    searched = search_job.run(search_cfg, search_dir, supernet=run.supernet, bundle=run.bundle)
    if searched["best"] is None:
        raise UsageError("the search found no arch within the constraints")
    if ensemble_size(run.cfg) > 1:  # too few archs for the ensemble: said now, before any retraining
        _ensemble_records(run.cfg, searched, search_dir)
    return searched


def _ensemble_records(cfg: DictConfig, searched: dict[str, Any], search_dir: Path) -> list[dict]:
    source = str(cfg.retrain.ensemble_from)
    history = read_history(search_dir) if source == "top" else []
    return member_records(searched, history, ensemble_size(cfg), source)


def _export(run: PipelineRun) -> dict[str, Any]:
    best, bundle = run.results["search"]["best"], run.bundle
    arch = tuple(best["arch"])
    exported = export_subnet(
        run.supernet,
        arch,
        run.out_dir / "subnet",
        overwrite=True,
        search_figures=best,
        budget=run.results["search"].get("constraints"),
        verify_x=bundle.val_x[: int(run.cfg.export.verify_samples)].cpu(),
        onnx=bool(run.cfg.export.onnx),
    )
    if bundle.test_x is not None:
        # The arch is already chosen: the test split only reports how good it is.
        metric = search_metric(run)
        model, space = run.supernet.model, run.supernet.space
        scorer = InheritedEvaluator(model, space, bundle.test_x, bundle.test_y, metric=metric, task=bundle.task)
        exported[f"test_{metric.short}_inherited"] = scorer.scores([arch])[0]
    return exported


def search_metric(run: PipelineRun) -> Metric:
    """The metric the search ranked by (a search result without one ranked by accuracy)."""
    return METRICS[run.results["search"].get("metric") or "accuracy"]


def _retrain_request(cfg: DictConfig, out_dir: Path) -> RetrainRequest:
    """The winner's retraining (the ensemble's members are retrained the same way)."""
    trainer_cfg = {**to_plain(cfg.trainer), "max_epochs": int(cfg.retrain.max_epochs)}
    return RetrainRequest(
        out_dir / "subnet",
        _recipe(cfg),
        None,
        trainer_cfg,
        out_dir / "retrain",
        init=str(cfg.retrain.init),
        seed=int(cfg.seed),
        compare=bool(cfg.retrain.compare),
        tensorboard=cfg.logger.name == "tensorboard",
    )


def _retrain(run: PipelineRun) -> dict[str, Any]:
    done = _skip(run, "retrain", run.out_dir / "retrain")
    if done is not None:
        return done
    # The export's data config is the pipeline's own: no second read.
    return retrain_subnet(_retrain_request(run.cfg, run.out_dir), bundle=run.bundle)


def _ensemble(run: PipelineRun) -> dict[str, Any]:
    """``retrain.ensemble=K``: the K members retrained like the winner, averaged (supernet/train/ensemble.py)."""
    cfg, ensemble_dir = run.cfg, run.out_dir / "ensemble"
    done = _skip(run, "ensemble", ensemble_dir)
    if done is not None:
        return done
    plan = EnsemblePlan(
        records=_ensemble_records(cfg, run.results["search"], run.out_dir / "search"),
        source=str(cfg.retrain.ensemble_from),
        template=_retrain_request(cfg, run.out_dir),
        winner=run.results["retrain"],
        out_dir=ensemble_dir,
        metric=search_metric(run),
        budget=run.results["search"].get("constraints"),
        verify_samples=int(cfg.export.verify_samples),
    )
    return build_ensemble(plan, run.supernet, run.bundle)


def _phase_summary(name: str, result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    if name == "train":
        if "skipped" in result:
            return {"wall_s": 0.0, "skipped": result["skipped"]}
        return {"wall_s": wall_s, "metrics": result["metrics"], "epochs": result["epochs"]}
    if name == "search":
        keys = ("strategy", "n_evaluations", "best")
        return {"wall_s": wall_s, **{k: result[k] for k in keys}}
    if name == "export":
        return {"wall_s": wall_s, "path": result["path"], "max_abs_diff": result["max_abs_diff"]}
    if name == "ensemble":
        doc = result["ensemble"]
        return {"wall_s": wall_s, "k": doc["k"], "from": doc["from"], "path": doc["path"]}
    metrics = result["metrics"]
    recipe = {k: result[k] for k in AUTO_KEYS if k in result}  # what an auto became
    return {"wall_s": wall_s, "init": metrics["init"], "epochs": metrics["epochs"], **recipe}


PHASE_STEPS: dict[str, Callable[[PipelineRun], dict[str, Any]]] = {
    "train": _train,
    "search": _search,
    "export": _export,
    "retrain": _retrain,
    "ensemble": _ensemble,
}


@dataclass
class PhaseHooks:
    """What a caller of `run_pipeline` may plug in around each phase (both optional).

    `before(name, cfg) -> cfg`: the config phase `name` runs with (e.g. a share of a wall-clock
    cap; the scikit-learn estimators' ``time_limit_s``); `after(name, summary)`: called with the
    phase's summary (``wall_s``...) once it is done (their progress lines)."""

    before: Callable[[str, DictConfig], DictConfig] | None = None
    after: Callable[[str, dict[str, Any]], None] | None = None


def _run_phases(run: PipelineRun, hooks: PhaseHooks) -> None:
    base = run.cfg
    for name in PHASES:
        if name == "ensemble" and ensemble_size(base) == 1:
            continue
        run.cfg = hooks.before(name, base) if hooks.before is not None else base
        run.current = name
        t0 = time.perf_counter()
        run.results[name] = PHASE_STEPS[name](run)
        wall_s = round(time.perf_counter() - t0, 2)
        if name in run.skipped:
            wall_s = run.skipped[name]  # finished before: its own wall time, not this skip's
        elif "skipped" not in run.results[name]:
            run.ran.append(name)
        run.phases[name] = _phase_summary(name, run.results[name], wall_s)
        if name == "train":
            ckpt = run.results["train"]["paths"]["checkpoint"]
            run.supernet, _ = load_for_scoring(ckpt, bundle=run.bundle)
        if hooks.after is not None:
            hooks.after(name, run.phases[name])
        release_memory()
    run.cfg = base


def release_memory() -> None:
    """Free what a finished phase held before the next one allocates: its trainer and evaluators
    sit in reference cycles, and glibc keeps freed heap pages unless asked to return them (the
    Fashion-MNIST job's peak RSS: 3.1 GB without either, 2.9 GB with the collection alone)."""
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
) -> tuple[dict[str, Any], PipelineRun]:
    """The phases in `out_dir` (data, train, search, export, retrain, ensemble), then ``result.json`` and
    ``summary.md``: the job below and the scikit-learn estimators (`supernet.sklearn`, which pass
    their in-memory data as `bundle`). Returns the result and the run's state."""
    started = time.perf_counter()
    state = PipelineRun(cfg, out_dir, resuming=resuming)
    state.recorded = _recorded_phases(out_dir) if resuming else {}
    try:
        _data_phase(state, bundle)
        _run_phases(state, hooks or PhaseHooks())
    except signals.Interrupted as exc:
        exc.phase = state.current
        write_json(out_dir / "result.json", _interrupted_result(state, exc, round(time.perf_counter() - started, 2)))
        raise
    result = _result(state, round(time.perf_counter() - started, 2))
    write_json(out_dir / "result.json", result)
    (out_dir / "summary.md").write_text(summary_md(result))
    return result, state


def _data_phase(state: PipelineRun, bundle: DataBundle | None) -> None:
    """Read the data (unless given), check the metric against its task, resolve the ``auto`` keys."""
    t0 = time.perf_counter()
    state.bundle = bundle if bundle is not None else load_data(state.cfg.data)
    # A metric the task cannot use is refused before the supernet trains.
    resolve_metric(state.cfg.search.get("metric"), state.bundle.task, state.bundle.num_classes)
    state.phases["data"] = {"wall_s": round(time.perf_counter() - t0, 2), "summary": state.bundle.summary()}
    state.cfg = resolved_for_data(state.cfg, state.bundle)


def _interrupted_result(run: PipelineRun, exc: signals.Interrupted, wall_s: float) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------- the job
def _used_run_dir(out_dir: Path) -> Path | None:
    """A new run into a dir that holds one is refused (the advice: resume it), except where SLURM
    requeued this job (Lightning's auto-requeue, submitit): the rerun then continues the run."""
    if not (out_dir / REQUEST_FILE).is_file():
        return None
    if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0:
        log.info("SLURM requeued the job: resuming %s", out_dir)
        return out_dir
    raise UsageError(
        f"hydra.run.dir={out_dir} already holds a pipeline run: continue it with supernet resume={out_dir}, "
        "or pick a new hydra.run.dir"
    )


def write_request(cfg: DictConfig, out_dir: Path) -> None:
    """``pipeline_request.json``: the settings a ``resume=<out_dir>`` must keep."""
    write_json(out_dir / REQUEST_FILE, _request(cfg))


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    check_pipeline_config(cfg)
    previous = resume_run_dir(cfg.get("resume")) or _used_run_dir(out_dir)
    out_dir = previous or out_dir
    with run_dir_lock(out_dir, "pipeline"), signals.advice(f"continue with supernet resume={out_dir}"):
        if previous is not None:  # one job per run dir, locked before anything is read
            cfg = resumed_config(cfg, previous)
        else:
            write_request(cfg, out_dir)
        result, _ = run_pipeline(cfg, out_dir, resuming=previous is not None)
        (out_dir / "error.txt").unlink(missing_ok=True)  # a refused or failed earlier attempt's: resolved now
    print(summary_md(result))
    return result


def _winner(run: PipelineRun) -> dict[str, Any]:
    best, metrics = run.results["search"]["best"], run.results["retrain"]["metrics"]
    metric = search_metric(run)
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


def _result(run: PipelineRun, wall_s: float) -> dict[str, Any]:
    retrained = run.results["retrain"]
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
        "metric": search_metric(run).name,
        "objective": retrained["metrics"][f"val_{search_metric(run).short}"],
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
