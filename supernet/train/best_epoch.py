"""Best-epoch selection and early stopping for retraining (``retrain.best_epoch``, ``retrain.patience``).

`BestEpoch` keeps a copy of the weights of the epoch with the best validation metric (accuracy,
or RMSE for a regression: what `SubnetModule` logs as ``val/acc`` / ``val/rmse``) and puts them
back when training ends, so a run that overfits late, common on small tables, exports its best
epoch rather than its last. ``patience`` stops a run after that many validation epochs without a
better value, through Lightning's own ``EarlyStopping``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping

from supernet.core.task import Task
from supernet.errors import UsageError


def monitored(task: Task) -> tuple[str, str]:
    """The logged validation metric retraining selects on, and its direction."""
    return task.monitor


class BestEpoch(pl.Callback):
    """Restore the best validation epoch's weights at the end of ``fit``; ``best_epoch`` is its
    number (1-based, as ``epochs`` counts) and ``best_value`` its metric."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._state: dict[str, Any] | None = None

    def _better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if self._better(value):
            self.best_value, self.best_epoch = value, trainer.current_epoch + 1
            self._state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._state is not None:
            pl_module.load_state_dict(self._state)


def check_selection(recipe: Mapping[str, Any]) -> None:
    """``retrain.best_epoch`` and ``retrain.patience``: one-line errors before any data is read."""
    if not isinstance(recipe.get("best_epoch", False), bool):
        raise UsageError(f"retrain.best_epoch={recipe.get('best_epoch')!r} must be true or false")
    patience = recipe.get("patience")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise UsageError(f"retrain.patience={patience!r} must be a whole number of epochs >= 1, or null (off)")


def selection_callbacks(recipe: Mapping[str, Any], task: Task) -> tuple[list[pl.Callback], BestEpoch | None]:
    """The callbacks ``retrain.best_epoch`` / ``retrain.patience`` ask for, and the `BestEpoch` among them."""
    monitor, mode = monitored(task)
    callbacks: list[pl.Callback] = []
    best = BestEpoch(monitor, mode) if recipe.get("best_epoch", False) else None
    if best is not None:
        callbacks.append(best)
    if recipe.get("patience") is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=int(recipe["patience"]), verbose=False))
    return callbacks, best
