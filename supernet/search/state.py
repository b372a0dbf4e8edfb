"""The search's resumable state: ``search_state.json`` in the run dir, replaced atomically after
each generation.

It holds everything a resume needs (the history of scored records, the loop's counters, the
strategy's own state with its RNG states, and with ``search.fidelity=subset`` the validation rows
of the subset) and a fingerprint of what the loop depends on (space,
search config without ``finetune``, seed), so a resume with other settings is refused instead of
silently mixing two searches. See docs/experiments/search.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernet.core.space import SearchSpace
from supernet.errors import UsageError
from supernet.files import atomic_write_text

STATE_FILE = "search_state.json"
STATE_VERSION = 1


def fingerprint(space: SearchSpace, cfg: Mapping, seed: int) -> dict:
    """What the loop depends on; the final choice (``finetune``, ``tolerance``) may change between resumes.
    A full-fidelity search leaves out ``fidelity`` and ``subset``, and ``metric: null`` (the
    task's default) is left out too: its fingerprint is the one a search written before those
    settings existed has, so such a state still resumes (as ``metric: null``)."""
    skip = {"finetune", "tolerance"} | ({"fidelity", "subset"} if cfg.get("fidelity", "full") == "full" else set())
    skip |= {"metric"} if cfg.get("metric") is None else set()
    loop_cfg = {k: v for k, v in cfg.items() if k not in skip}
    return {"space": space.to_dict(), "search": loop_cfg, "seed": int(seed)}


def _new_runner() -> dict[str, Any]:
    return {"generation": 0, "stall": 0, "stopped": None, "wall_s": 0.0, "latency_scale": None}


@dataclass
class LoopState:
    """The loop's own record: every scored arch in order (`history`) and its counters (`runner`:
    generation, stall, stopped, wall_s, latency_scale), both plain JSON; `subset`: the sorted
    validation rows of ``search.fidelity=subset`` (None: full fidelity)."""

    history: list[dict] = field(default_factory=list)
    runner: dict[str, Any] = field(default_factory=_new_runner)
    subset: list[int] | None = None


def check_fingerprint(saved: dict, expected: dict, path: Path) -> None:
    """Raise `UsageError` naming every setting that differs between `saved` and this run."""
    if saved.get("version") != STATE_VERSION:
        raise UsageError(f"{path} has state version {saved.get('version')}, expected {STATE_VERSION}")
    old = saved["fingerprint"]
    for key in ("seed", "space", "search"):
        if old[key] == expected[key]:
            continue
        if isinstance(old[key], dict):
            diff = sorted(k for k in {**old[key], **expected[key]} if old[key].get(k) != expected[key].get(k))
            what = ", ".join(f"{key}.{k}={old[key].get(k)!r} there, {expected[key].get(k)!r} here" for k in diff)
        else:
            what = f"{key}={old[key]!r} there, {expected[key]!r} here"
        raise UsageError(
            f"cannot resume from {path}: it was written with {what}; resume with the same settings or use a new run dir"
        )


def load_state(path: Path, expected: dict) -> tuple[LoopState, dict]:
    """The saved loop state and strategy state of `path`, checked against `expected`."""
    saved = json.loads(path.read_text())
    check_fingerprint(saved, expected, path)
    loop = LoopState(history=saved["history"], subset=saved.get("subset"))
    loop.runner.update(saved["runner"])
    return loop, saved["strategy"]


def save_state(path: Path, expected: dict, loop: LoopState, strategy_state: dict) -> None:
    state = {
        "version": STATE_VERSION,
        "fingerprint": expected,
        "runner": loop.runner,
        "history": loop.history,
        "strategy": strategy_state,
    }
    if loop.subset is not None:  # absent at full fidelity: the state file stays as it was
        state["subset"] = loop.subset
    atomic_write_text(path, json.dumps(state))
