"""A pipeline run dir's record: the settings a resume keeps (``pipeline_request.json``), which
phases finished (their ``result.json``), where ``resume=`` points, and `PipelineRun`, the state
the phases share while the run goes.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet.commands.overrides import (
    RESUME_FILES,
    differences,
    explicit_node,
    is_explicit,
    runs_dir,
    typed_overrides,
)
from supernet.commands.resume import newest_run
from supernet.data.datasets import DataBundle
from supernet.errors import UsageError
from supernet.files import read_json_object, to_plain, write_json
from supernet.io.checkpoint import LoadedSupernet

log = logging.getLogger("supernet.commands.pipeline")

PIPELINE_RUNS = runs_dir("pipeline")
REQUEST_FILE = RESUME_FILES["pipeline"]  # the marker the command line looks for too


# Keys a resume may change: they decide where files are read and how progress is shown, never a
# result. Any other difference from the saved request is refused.
RESUME_FREE = ("resume", "logger", "device", "figures", "data.root", "data.num_workers")


RESUME_FREE_TRAINER = ("enable_progress_bar", "log_every_n_steps")


ENSEMBLE_KEYS = ("retrain.ensemble", "retrain.ensemble_from")  # open to a resume until the ensemble is built


def resume_run_dir(resume: Any) -> Path | None:
    """``resume=true`` -> the newest pipeline run with a saved request; ``resume=<dir>`` -> that dir."""
    return newest_run(resume, "pipeline")


def request_of(cfg: DictConfig) -> dict[str, Any]:
    """The settings that decide the run's results (what a resume must keep)."""
    doc = {k: v for k, v in to_plain(cfg).items() if k not in RESUME_FREE and k != "hydra"}
    doc["trainer"] = {k: v for k, v in doc.get("trainer", {}).items() if k not in RESUME_FREE_TRAINER}
    doc["data"] = {k: v for k, v in doc.get("data", {}).items() if f"data.{k}" not in RESUME_FREE}
    return doc


def resumed_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The run's saved settings (``pipeline_request.json``), with this command line's
    `RESUME_FREE` keys on top; a setting given on the command line that differs is refused."""
    saved = read_json_object(run_dir / REQUEST_FILE, "resume")
    check_request(saved, request_of(cfg), run_dir)
    explicit = typed_overrides()
    # The ensemble's size and source are checked against the search's result; until the ensemble is
    # built a resume may change them (the fix of a refusal), and the request records the change.
    open_keys = () if finished(run_dir / "ensemble") else ENSEMBLE_KEYS
    changed = {}
    for key, old, new in differences(saved, request_of(cfg)):
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


def finished(phase_dir: Path) -> dict[str, Any] | None:
    """A phase's result.json when it says ``ok`` (the phase is then skipped on resume)."""
    path = phase_dir / "result.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("status") == "ok" else None


def recorded_phases(out_dir: Path) -> dict[str, dict]:
    """The phases of the run dir's last ``result.json`` (finished, or interrupted), if any."""
    try:
        phases = json.loads((out_dir / "result.json").read_text()).get("phases")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return {}
    return phases if isinstance(phases, dict) else {}


def used_run_dir(out_dir: Path) -> Path | None:
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
    write_json(out_dir / REQUEST_FILE, request_of(cfg))


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
    settings: Any = None  # the run's `RunSettings` (commands/run_settings.py), resolved once the data is read


def skip_finished(run: PipelineRun, name: str, phase_dir: Path) -> dict[str, Any] | None:
    """On a resume, phase `name`'s result when it finished (it is then skipped); its wall time as
    recorded (the run's last result.json, else the phase's own) goes to ``run.skipped``."""
    done = finished(phase_dir) if run.resuming else None
    if done is not None:
        recorded = run.recorded.get(name, {}).get("wall_s", done.get("wall_s"))
        run.skipped[name] = float(recorded or 0.0)
    return done
