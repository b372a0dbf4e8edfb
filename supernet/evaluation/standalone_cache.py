"""The stand-alone results cache: one JSON file of trained nets' scores, shared across runs.

Keyed by arch, seed, recipe digest and data identity (`data_identity`: equal on every machine for
the same split and task), so a rerun, a second supernet on the same data or the
``search=standalone`` baseline reuse what was trained. An entry holds each metric it measured
under the metric's record key (``val_acc`` for accuracy, ``val_rmse``, ``val_mae``, ...): a lookup
names the key it needs (`StandaloneCache.get`) and an entry without it is a miss, so an accuracy is
never read as an RMSE. A regression's identity also holds its task (loss, targets, their scaling),
so classification and regression results of one data set never share a key. Saves merge with
what is on disk under a lock and replace the file atomically, so concurrent jobs (a joblib sweep)
can share one cache.

    cache = StandaloneCache("outputs/standalone_cache.json")
    entry = cache.get(cache_key(arch, recipe, seed, data_identity(bundle)), "val_rmse")   # None: train it
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from supernet.core.space import arch_str
from supernet.core.task import Task
from supernet.data.datasets import DataBundle
from supernet.errors import UsageError
from supernet.files import atomic_write_text

if TYPE_CHECKING:
    from supernet.evaluation.recipe import Recipe

CACHE_VERSION = 1
DEFAULT_CACHE = Path("outputs/standalone_cache.json")


def data_identity(bundle: DataBundle) -> str:
    """A key for the data that is equal on every machine and torch version for the same split.

    It hashes what is exact everywhere: the labels in split order (the split permutation shows up
    in them), the shapes, the sign pattern of the normalised inputs (a pixel never lands within
    float noise of its mean), the preprocessing, and the normalisation statistics to 4 significant
    digits. The normalised floats themselves differ in their last bits between CPU and GPU, which
    would make results trained on one machine useless on another.

    A task other than an unweighted classification (whose identity is what it always was) adds
    what changes a trained net: the loss, the class weights, the regression targets' names and
    scaling (to 4 significant digits), and for standardised regression targets their sign pattern
    in place of the labels."""
    h = hashlib.sha256(bundle.name.encode())
    h.update(json.dumps(_rounded({"mean": bundle.mean, "std": bundle.std, "pre": bundle.preprocess})).encode())
    task = getattr(bundle, "task", None)
    if task is not None and task != Task():  # not the plain, unweighted classification older entries hold
        h.update(json.dumps(_rounded({"task": task.to_dict()})).encode())
    for x, y in ((bundle.train_x, bundle.train_y), (bundle.val_x, bundle.val_y)):
        x, y = x.detach().cpu(), y.detach().cpu()
        h.update(str((tuple(x.shape), tuple(y.shape))).encode())
        if y.is_floating_point():  # regression targets: as the inputs, what float noise cannot move
            h.update(np.packbits((y > 0).contiguous().numpy()).tobytes())
        else:
            h.update(y.to(torch.int64).contiguous().numpy().tobytes())
        h.update(np.packbits((x > 0).contiguous().numpy()).tobytes())
    return f"{bundle.name}-{h.hexdigest()[:16]}"


def _rounded(node: Any) -> Any:
    if isinstance(node, float):
        return float(f"{node:.4g}") + 0.0  # + 0.0: no negative zero
    if isinstance(node, Mapping):
        return {str(k): _rounded(v) for k, v in sorted(node.items(), key=lambda kv: str(kv[0]))}
    if isinstance(node, (list, tuple)):
        return [_rounded(v) for v in node]
    return node if isinstance(node, (int, str, bool)) or node is None else str(node)


def cache_key(arch: Sequence[int], recipe: Recipe, seed: int, data_id: str) -> str:
    """One net's key: arch, seed, the recipe's digest and the data's identity."""
    return f"{arch_str(arch)}|seed={int(seed)}|recipe={recipe.digest()}|data={data_id}"


class StandaloneCache:
    """Stand-alone results in a JSON file, ``{"version": 1, "entries": {key: record}}``.

    ``path=None`` keeps results in memory only. `hits` / `misses` count lookups (a miss is a
    net that had to be trained)."""

    def __init__(self, path: str | Path | None = DEFAULT_CACHE, key: str = "rank.cache") -> None:
        self.path = None if path in (None, "", "null") else Path(path)
        self.key = key
        self.entries: dict[str, dict] = {}
        self.hits = 0
        self.misses = 0
        if self.path is not None and self.path.exists():
            self.entries = self._read()

    def _read(self) -> dict[str, dict]:
        try:
            doc = json.loads(self.path.read_text())
            entries = doc["entries"]
            if doc.get("version") != CACHE_VERSION or not isinstance(entries, dict):
                raise ValueError(f"version {doc.get('version')!r}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{self.key}={self.path} is not a stand-alone cache ({type(exc).__name__}: {exc}); "
                f"delete it or point {self.key} to another file"
            ) from None
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str, field: str | None = None) -> dict | None:
        """The entry of `key`; None (a miss) when there is none, or when it lacks `field` (the
        record key of the metric asked for, e.g. ``val_rmse``)."""
        entry = self.entries.get(key)
        if entry is not None and field is not None and entry.get(field) is None:
            entry = None
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry

    def save(self) -> None:
        """Merge with what another run may have written meanwhile, then replace atomically. A lock
        file serialises concurrent savers (e.g. the jobs of a joblib sweep sharing one cache)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            on_disk = self._read() if self.path.exists() else {}
            self.entries = {**on_disk, **self.entries}
            atomic_write_text(
                self.path, json.dumps({"version": CACHE_VERSION, "entries": self.entries}, indent=1) + "\n"
            )
