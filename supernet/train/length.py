"""How long a training runs: ``trainer.max_epochs`` epochs of at least ``min_steps`` steps in all.

A table of 540 training rows is 5 batches an epoch: 10 epochs are 50 optimizer steps, too few for
the supernet or a retrained subnet to converge, where 10 epochs of a 12,800-row table are 1,000.
``train.min_steps`` (the supernet) and ``retrain.min_steps`` (the winner) size such runs by steps;
the tables' data configs set them (conf/data/csv.yaml, measured in docs/experiments/tabular.md).
An epoch then makes several passes over the rows (`passes_for`) rather than the run making more
epochs: the validation, checkpoint and logging done once an epoch would otherwise cost more than
the steps on such a table. The learning-rate schedule spans the trainer's estimated steps, so it follows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from supernet.config import check_min_steps  # noqa: F401 (importable from here, as before)

log = logging.getLogger(__name__)


def batches_per_epoch(rows: int, batch_size: int, trainer_cfg: Mapping[str, Any]) -> int:
    """Training batches in one epoch of `rows` rows on each of the trainer's devices (the tensor
    loader's split: rows // world, then whole or partial batches), capped by ``limit_train_batches``."""
    world = _whole(trainer_cfg.get("devices"), 1) * _whole(trainer_cfg.get("num_nodes"), 1)
    batches = max(1, math.ceil((rows // world) / batch_size))
    limit = trainer_cfg.get("limit_train_batches")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        batches = min(batches, limit)
    elif isinstance(limit, float) and 0 < limit < 1:
        batches = max(1, int(batches * limit))
    return batches


def passes_for(trainer_cfg: Mapping[str, Any], min_steps: int | None, rows: int, batch_size: int, what: str) -> int:
    """Passes over the training rows in each epoch: 1, or as many as ``trainer_cfg["max_epochs"]``
    epochs need to make at least `min_steps` optimizer steps on `rows` rows; `what` names the
    training in the log line. Epochs stay the unit of validation, checkpoints and resume."""
    if not min_steps:
        return 1
    epochs = int(trainer_cfg["max_epochs"])
    per_epoch = batches_per_epoch(rows, batch_size, trainer_cfg)
    passes = max(1, math.ceil(int(min_steps) / (epochs * per_epoch)))
    if passes > 1:
        log.info(
            "%s: %d passes over the training rows per epoch (%d steps in %d epochs), to reach min_steps=%d",
            what,
            passes,
            passes * per_epoch * epochs,
            epochs,
            min_steps,
        )
    return passes


def _whole(value: Any, default: int) -> int:
    """A device or node count as a number (``auto`` or a device list: `default`, or the list's length)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(1, value)
    if isinstance(value, (list, tuple)):
        return max(1, len(value))
    return default
