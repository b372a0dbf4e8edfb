"""What every command shares: config location, error reporting, sweep-safe job wrapper.

Error policy: a `UsageError` (bad config, bad path, bad file) prints ``error: <one line>`` and
exits 2; any other failure prints a one-line summary, writes the traceback to ``error.txt`` in
the run dir and exits 1. ``HYDRA_FULL_ERROR=1`` shows full tracebacks instead. Inside a multirun
a failing job is recorded (``error.txt`` and a ``result.json`` with ``status: failed``) and the
sweep goes on with the next job. SIGTERM or SIGINT (`supernet.signals`) stops a job after the step
in progress: one line says how to continue, the exit code is 128 + signal (143, 130), and a sweep
stops too (its job's ``result.json`` says ``status: interrupted``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from supernet import signals
from supernet.commands.overrides import check_appended_keys, check_keys, check_writable, resume_run_dir_args
from supernet.errors import UsageError
from supernet.files import CONF_DIR, write_json

log = logging.getLogger("supernet")


Job = Callable[[DictConfig, Path], dict]


def _output_dir() -> Path:
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra (tests calling the job directly)
        return Path.cwd()


def _in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def run_job(job: Job, cfg: DictConfig) -> dict | None:
    """Run one job under the error policy above. Returns its result (None when a sweep job failed)."""
    out_dir = _output_dir()
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        with signals.handled():
            return job(cfg, out_dir)
    except signals.Interrupted as exc:
        _interrupted(exc, out_dir)
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        usage = isinstance(exc, UsageError)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not usage:
            message = f"{type(exc).__name__}: {message}"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "error.txt").write_text(f"{message}\n\n{traceback.format_exc()}")
        if _in_multirun():
            write_json(out_dir / "result.json", {"status": "failed", "error": message, "usage_error": usage})
            log.error("job failed (the sweep goes on): %s", message)
            return None
        if full:  # the traceback here, the exit code of the error policy all the same
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr)
        if not usage and not full:
            print(f"(traceback in {out_dir / 'error.txt'}; HYDRA_FULL_ERROR=1 shows it here)", file=sys.stderr)
        sys.exit(2 if usage else 1)


def _interrupted(exc: signals.Interrupted, out_dir: Path) -> None:
    """The one line of a job a signal stopped (and a sweep job's ``result.json`` when it wrote none)."""
    where = f" in the {exc.phase} phase" if exc.phase else ""
    advice = exc.advice or "nothing of it can be resumed: run the command again"
    if _in_multirun() and not (out_dir / "result.json").is_file():
        write_json(out_dir / "result.json", {"status": "interrupted", "signal": exc.name, "phase": exc.phase})
    print(f"interrupted by {exc.name}{where}: {advice}", file=sys.stderr)


def check_command_line(argv: list[str], task: str) -> None:
    """What can be checked before Hydra composes anything: keys that exist, a writable run dir."""
    check_keys(argv, CONF_DIR, task)
    check_appended_keys(argv, CONF_DIR, task)
    if not any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):  # --help, --cfg ...
        check_writable(argv, task)


def _usage_exit(exc: UsageError) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exc()
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def resolve_job(job: Job | str) -> Job:
    """A job, or ``"module:function"`` imported now (so ``--help`` never imports it)."""
    if not isinstance(job, str):
        return job
    module, function = job.split(":")
    return getattr(importlib.import_module(module), function)


def entry_point(config_name: str, job: Job | str) -> Callable[[], None]:
    """A console-script function running `job` under ``@hydra.main`` with ``conf/<config_name>``.

    The command line is checked first (`check_command_line`); Hydra itself exits 1 on a bad
    override it finds (a bad value) before our job starts: those are usage errors, so they exit 2.
    """
    started = {"job": False}

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def _main(cfg: DictConfig) -> Any:
        started["job"] = True
        result = run_job(resolve_job(job), cfg)
        return None if result is None else result.get("objective")

    @functools.wraps(_main)
    def main() -> None:
        # Lightning 2.6 warns about its own use of a deprecated torch pytree API: not the user's business.
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # Our launcher presets (conf/hydra/launcher/) share the plugins' names on purpose.
        warnings.filterwarnings("ignore", message=".*validated against ConfigStore schema.*")
        try:
            check_command_line(sys.argv[1:], config_name)
        except UsageError as exc:
            _usage_exit(exc)
        sys.argv += resume_run_dir_args(sys.argv[1:], config_name)  # a resume writes where it resumes
        try:
            _main()
        except SystemExit as exc:
            if exc.code == 1 and not started["job"]:
                sys.exit(2)
            raise
        except Exception:
            if started["job"]:
                raise
            traceback.print_exc()  # HYDRA_FULL_ERROR=1: Hydra raised instead of exiting
            sys.exit(2)

    return main
