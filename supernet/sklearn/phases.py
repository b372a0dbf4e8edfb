"""How one fit runs the pipeline: its run dir, its wall-clock cap, its progress lines, its quiet,
and the caller's global random state, put back (`global_state_kept`).

**time_limit_s** caps the whole fit, from the call to ``fit`` (imports and data encoding included)
to its return. Each phase gets a share of the time still left when it starts, after a reserve
for the export and the reloading of the winner (`RESERVE_S`, at most a tenth of the limit): the
supernet's training 50%, the search 20%, the retraining 30%; time a phase leaves unused goes
to the phases after it. Training and retraining stop through Lightning's ``max_time`` (checked
after every step), the search through ``search.time_budget_s`` (checked after every generation).
The re-ranking fine-tune of the search's finalists has a fixed number of steps whose cost cannot
be capped: under a time limit it is off, unless ``overrides`` set ``search.finetune.top``
(then it runs uncapped, and the search loop gets half of the search's share). What a cap cannot
interrupt comes on top: one step or one generation past the deadline, each Trainer's start-up
and final validation (a fraction of a second) and the export; docs/experiments/sklearn.md has
the measured overrun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

from supernet import signals

SHARES = {"train": 0.5, "search": 0.2, "export": 0.0, "retrain": 0.3, "ensemble": 0.0}  # ensemble: uncapped
RESERVE_S = 1.0  # export + reloading the winner, taken off the limit first (at most limit / 10)
MIN_PHASE_S = 0.01  # a phase whose time is up still takes one step (one generation)
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
# Lightning's notes that say nothing to a scikit-learn user (the data is small on purpose).
LIGHTNING_NOTES = (
    r".*does not have many workers.*",
    r".*LeafSpec.*",
    r".*smaller than the logging interval.*",
    r".*GPU available but not used.*",
    r".*Checkpoint directory .* exists and is not empty.*",
)


class SearchWatch(logging.Handler):
    """The search's line per generation (``generation 3: 120/1000 evaluated, best ...``): when
    each came (`times`: the wall time of each generation, for ``search_history_``'s ``time_s``)
    and, with ``verbose=1``, shown as one line on stdout rewritten in place. Its warnings go on
    to the loggers above, as they would without it."""

    LOGGER = "supernet.search.runner"
    LINE = re.compile(r"^generation (\d+):")

    def __init__(self, show: bool) -> None:
        super().__init__(logging.INFO)
        self.show, self.shown = show, False
        self.started = time.time()
        self.times: dict[int, float] = {}  # generation -> when its line was logged (time.time())

    def emit(self, record: logging.LogRecord) -> None:
        match = self.LINE.match(record.getMessage())
        if match is None:
            if record.levelno >= logging.WARNING:
                logging.getLogger(self.LOGGER.rsplit(".", 1)[0]).handle(record)
            return
        self.times[int(match.group(1))] = record.created
        if self.show:
            sys.stdout.write(f"\r[supernet] search: {record.getMessage()}")
            sys.stdout.flush()
            self.shown = True

    def end(self) -> None:
        """A new line after the progress line, before the next line is printed."""
        if self.shown:
            sys.stdout.write("\n")
            self.shown = False

    def seconds(self) -> dict[int, float]:
        """Each generation's wall time, from the search's start (or the generation before)."""
        out, last = {}, self.started
        for generation in sorted(self.times):
            out[generation], last = self.times[generation] - last, self.times[generation]
        return out

    @contextlib.contextmanager
    def attached(self, propagate: bool) -> Iterator[None]:
        """The search logger at INFO into this handler (and, with `propagate`, the caller's)."""
        logger = logging.getLogger(self.LOGGER)
        saved = logger.level, logger.propagate
        logger.setLevel(logging.INFO)
        logger.propagate = propagate
        logger.addHandler(self)
        try:
            yield
        finally:
            logger.removeHandler(self)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]
            self.end()


class PhaseClock:
    """`supernet.commands.pipeline.PhaseHooks` for one fit: each phase's share of
    ``time_limit_s`` (module docstring) and, with ``verbose`` >= 1, one line per phase."""

    def __init__(self, limit_s: float | None, started: float, verbose: int, rerank: bool = False) -> None:
        """`rerank`: the re-ranking fine-tune was asked for (``search.finetune.top`` in overrides)."""
        if limit_s is not None and (isinstance(limit_s, bool) or not float(limit_s) > 0):
            raise ValueError(f"time_limit_s={limit_s!r} must be a positive number of seconds or None")
        self.limit_s = None if limit_s is None else float(limit_s)
        self.started, self.verbose, self.rerank = started, int(verbose), rerank
        self.progress = SearchWatch(show=self.verbose == 1)

    def watching(self) -> Any:
        """The search's generations timed, and shown as one line at ``verbose=1`` (2: its log)."""
        return self.progress.attached(propagate=self.verbose >= 2)

    def hooks(self) -> Any:
        from supernet.commands.pipeline import PhaseHooks

        return PhaseHooks(before=self.before, after=self.after)

    def seconds_for(self, phase: str) -> float:
        """The phase's share of the time left (what `before` gives it)."""
        reserve = min(RESERVE_S, self.limit_s / 10)
        left = self.limit_s - reserve - (time.perf_counter() - self.started)
        phases = list(SHARES)
        rest = sum(SHARES[p] for p in phases[phases.index(phase) :])
        return max(left * SHARES[phase] / rest, MIN_PHASE_S)

    def before(self, phase: str, settings: Any) -> Any:
        """The run's settings (`RunSettings`) phase `phase` runs with: a copy with its share of
        the time (the search's ``time_budget_s``, or the trainer's ``max_time``)."""
        if phase == "search":
            self.progress.started = time.time()
        if self.limit_s is None or SHARES[phase] == 0:
            return settings
        seconds = self.seconds_for(phase)
        if phase == "search":
            search = settings.search
            if not self.rerank:
                search = search.replace(finetune={**search["finetune"], "top": 0})
            finetune = int(search["finetune"]["top"]) > 0
            changed = {"search": search.replace(time_budget_s=round(seconds / 2 if finetune else seconds, 3))}
        else:
            changed = {"trainer": MappingProxyType({**settings.trainer, "max_time": {"seconds": round(seconds, 3)}})}
        if self.verbose:
            print(f"[supernet] {phase}: {seconds:.1f} s of time_limit_s={self.limit_s:g}")
        return dataclasses.replace(settings, **changed)

    def after(self, phase: str, summary: dict[str, Any]) -> None:
        self.progress.end()
        if self.verbose:
            print(f"[supernet] {phase} done in {summary.get('wall_s', 0):.1f} s{_details(phase, summary)}")


def _details(phase: str, summary: dict[str, Any]) -> str:
    if phase == "train":
        return f": {summary['epochs']} epochs"
    if phase == "search":
        best = summary.get("best") or {}
        arch = "-".join(str(w) for w in best.get("arch", []))
        return f": {summary['strategy']}, {summary['n_evaluations']} candidates scored, best {arch}"
    if phase == "retrain":
        return f": {summary['init']}, {summary['epochs']} epochs"
    return ""


# ---------------------------------------------------------------------------- quiet
class _DropNoTestSplit(logging.Filter):
    """The retraining's note that the data has no test split: a fit has none, by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "has no test split" not in record.getMessage()


@contextlib.contextmanager
def quiet(verbose: int) -> Iterator[None]:
    """Lightning's start-up lines and notes off (unless `verbose` is 2); supernet's warnings stay."""
    import pytorch_lightning  # noqa: F401 (its import sets its loggers' levels: before ours)

    note = _DropNoTestSplit()
    retrain_log = logging.getLogger("supernet.train.retrain")
    retrain_log.addFilter(note)
    saved = {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS}
    try:
        with warnings.catch_warnings():
            if verbose < 2:
                for name in LIGHTNING_LOGGERS:
                    logging.getLogger(name).setLevel(logging.WARNING)
                for pattern in LIGHTNING_NOTES:
                    warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        retrain_log.removeFilter(note)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# ---------------------------------------------------------------------------- global state
SEED_VARS = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")  # what pl.seed_everything leaves in os.environ


def threads_for(n_jobs: Any) -> int:
    """``n_jobs`` as torch threads, by joblib's rules: None is 1 (unless inside joblib's
    ``parallel_config``), -1 every core, -2 all but one."""
    from joblib import effective_n_jobs

    return max(1, int(effective_n_jobs(n_jobs)))


@contextlib.contextmanager
def torch_threads(n_jobs: Any) -> Iterator[None]:
    """torch's CPU threads set to `n_jobs` (`threads_for`) inside, the caller's count after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(threads_for(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def global_state_kept() -> Iterator[None]:
    """The caller's global state as it was before the fit: the training phases seed NumPy's,
    ``random``'s and torch's global generators (``pl.seed_everything``, as the commands, which own
    their process, do), set the ``PL_*`` seed variables and the float32 matmul precision; no
    scikit-learn estimator changes any of them, so all are put back when the fit ends."""
    import numpy as np
    import torch

    saved_np, saved_random, saved_torch = np.random.get_state(), random.getstate(), torch.get_rng_state()
    saved_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    saved_env = {var: os.environ.get(var) for var in SEED_VARS}
    precision = torch.get_float32_matmul_precision()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        np.random.set_state(saved_np)
        random.setstate(saved_random)
        torch.set_rng_state(saved_torch)
        if saved_cuda is not None:
            torch.cuda.set_rng_state_all(saved_cuda)
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        torch.set_float32_matmul_precision(precision)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


# ---------------------------------------------------------------------------- run dirs
@contextlib.contextmanager
def run_dir(output_dir: str | Path | None) -> Iterator[tuple[Path, bool]]:
    """(run dir, temporary): a temporary folder removed afterwards, or a new
    ``<output_dir>/<stamp>`` (the layout of ``outputs/pipeline/runs/<stamp>``)."""
    if output_dir is None:
        # SIGTERM unwinds like Ctrl-C (its default ends the process on the spot), so the folder goes too.
        with tempfile.TemporaryDirectory(prefix="supernet-fit-") as tmp, signals.handled((signal.SIGTERM,)):
            yield Path(tmp), True
        return
    parent = Path(output_dir)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for n in range(1000):
        path = parent / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        yield path, False
        return
    raise RuntimeError(f"could not make a new run dir under {parent}")
