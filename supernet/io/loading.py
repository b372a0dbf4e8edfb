"""A trained supernet ready to score: checkpoint, its own data, per-subnet statistics measured.

Every job that scores or extracts subnets (search, score, export, rank, the pipeline) starts
with the same four steps; `load_for_scoring` is them, once::

    supernet, bundle = load_for_scoring("outputs/train/runs/<stamp>", {"root": "/data"})
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from supernet.core.task import Task
from supernet.data.datasets import DataBundle, load_data
from supernet.errors import UsageError
from supernet.io.checkpoint import LoadedSupernet, data_config, load_supernet

CKPT_REQUIRED = "ckpt_path is required: a supernet .ckpt, a training run dir, or `last`"


def load_for_scoring(
    ckpt: str | Path | LoadedSupernet | None,
    data_overrides: Mapping[str, Any] | None = None,
    bundle: DataBundle | None = None,
    data_cfg: Mapping[str, Any] | None = None,
) -> tuple[LoadedSupernet, DataBundle]:
    """Load the supernet (unless given), its data (the config it was trained with, `data_overrides`
    on top, or `data_cfg` whole; unless `bundle` is given) and calibrate its statistics."""
    if ckpt is None:
        raise UsageError(CKPT_REQUIRED)
    supernet = ckpt if isinstance(ckpt, LoadedSupernet) else load_supernet(ckpt)
    if bundle is None:
        bundle = load_data(dict(data_cfg) if data_cfg is not None else data_config(supernet, data_overrides))
    # Its outputs are read in the units, and scored with the class weights, the supernet learned.
    bundle = bundle.adopt_task(Task.from_dict(supernet.data.get("task")), "the supernet")
    supernet.model.calibrate(bundle.train_x)
    return supernet, bundle
