"""SIGTERM and SIGINT (a scheduler, `timeout`, systemd, Kubernetes, Ctrl-C) end a command cleanly.

`handled()` installs the handlers for a job: a signal raises `Interrupted` (a `SystemExit` with
code 128 + signal, what a shell reports for a process the signal killed) at once, except inside
`steps()`, where it is only recorded and `check()` raises it after the step in progress. The loops
that save as they go call `check()` after each saved step: the supernet's and the retraining's
Lightning fits after each batch (`supernet.train.callbacks.StopOnSignal`; their checkpoints are
written whole or not at all), the search after each saved generation. A second signal stops at once.

Lightning's own handlers stay: `Trainer.fit` installs its SIGTERM connector on top of ours and calls
ours from it, and under SLURM keeps its SIGUSR1 requeue handler (nothing here touches SIGUSR1); a
handler found installed (submitit's) is called before ours. An ignored signal stays ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_state: dict[str, Any] = {"signum": None, "steps": 0, "previous": {}}


class Interrupted(SystemExit):
    """A job stopped by a signal; `phase` names where (set by the pipeline), `advice` how to continue."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.phase: str | None = None
        self.advice: str | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _chained(previous: Any) -> bool:
    """Whether a handler found installed is someone's to call too (not a default, not Python's Ctrl-C)."""
    return callable(previous) and previous is not signal.default_int_handler


def _handler(signum: int, frame: FrameType | None) -> None:
    previous = _state["previous"].get(signum)
    if _chained(previous):
        previous(signum, frame)
    first = _state["signum"] is None
    _state["signum"] = signum
    if not first or _state["steps"] == 0:
        raise Interrupted(signum)


@contextlib.contextmanager
def handled(signums: tuple[int, ...] = SIGNALS) -> Iterator[None]:
    """`signums` raise `Interrupted` while inside (the main thread only: a worker thread cannot set
    handlers, and its process's main thread keeps them); the old handlers come back after. Inside
    an outer `handled()` (a command running estimators) the outer one stays in charge."""
    outer = all(signal.getsignal(s) is _handler for s in signums)
    if outer or threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in signums}
    _state.update(signum=None, steps=0, previous=saved)
    try:
        for s, old in saved.items():
            if old is not signal.SIG_IGN:  # e.g. SIGINT of a job started with `&` by a script
                signal.signal(s, _handler)
        yield
    finally:
        for s, old in saved.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
        _state.update(signum=None, steps=0, previous={})


@contextlib.contextmanager
def steps() -> Iterator[None]:
    """Inside, a first signal waits for the next `check()` (the end of the step in progress)."""
    _state["steps"] += 1
    try:
        yield
    finally:
        _state["steps"] -= 1
    check()


def check() -> None:
    """Raise `Interrupted` if a signal came (called between steps, after each save)."""
    if _state["signum"] is not None:
        raise Interrupted(_state["signum"])


@contextlib.contextmanager
def advice(text: str | Callable[[], str]) -> Iterator[None]:
    """Name how to continue (``supernet resume=<run dir>``) on an `Interrupted` that leaves here;
    the outermost says it (the pipeline's, not its search's); a callable is asked then (what was
    saved by then decides it)."""
    try:
        yield
    except Interrupted as exc:
        exc.advice = text() if callable(text) else text
        raise
