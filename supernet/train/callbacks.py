"""Lightning callbacks for supernet training.

`KendallTauCallback` logs ``val/kendall_tau`` every k epochs: Kendall's tau between the
inherited-weight validation accuracy of a fixed reference set of archs and their stand-alone
accuracy (measured once, e.g. by ``supernet-rank``). It shows whether longer supernet training
still improves the ranking, not only the accuracy. ``supernet-train`` turns it on with
``train.tau_every_n_epochs=2 train.tau_reference=outputs/rank/runs/<stamp>/rank.csv``, or:

    from supernet.train.callbacks import tau_callback_from_csv
    trainer = pl.Trainer(callbacks=[tau_callback_from_csv("rank.csv", every_n_epochs=2)], ...)

The reference archs are scored with the batched `InheritedEvaluator` on the data module's
validation split (a few milliseconds for 50 archs on digits); nothing is trained.

`EMAWeights` keeps an exponential moving average of the supernet's weights (``train.ema_decay``,
as in BigNAS): validation, checkpoints and everything that reads them (search, export, rank)
see the averaged weights, which rank subnets slightly better than the last step's
(docs/experiments/fidelity.md).

`EpochHistory` records each epoch's mean training loss, validation figures and wall time;
`observed(factory)` adds one (or any callback `factory(phase)` makes) to every Trainer the
training (``phase="train"``) and the retraining (``"retrain"``) build inside it: the
scikit-learn estimators' ``history_``, without a logger on disk.

`StopOnSignal` and `fitting()` end a fit after the batch in progress on SIGTERM or SIGINT
(`supernet.signals`): the checkpoints already written stay, the job exits 128 + signal.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import WeightAveraging
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.optim.swa_utils import get_ema_multi_avg_fn

from supernet import signals
from supernet.config import check_ema_decay
from supernet.core.space import Arch, as_arch, parse_arch
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.fidelity.metrics import kendall_tau


class StopOnSignal(pl.Callback):
    """After each training batch, stop the fit if SIGTERM or SIGINT came (`supernet.signals.check`)."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        signals.check()


@contextlib.contextmanager
def fitting() -> Iterator[None]:
    """Around ``trainer.fit``: a signal waits for the batch's end. Lightning's own SIGTERM stop (its
    `SIGTERMException`, a ``SystemExit(None)`` that would exit 0, raised in validation or at an
    epoch's end) becomes our `Interrupted` too."""
    with signals.steps():
        try:
            yield
        except SIGTERMException:
            signals.check()
            raise


class KendallTauCallback(pl.Callback):
    """Every `every_n_epochs` validation epochs, log ``val/kendall_tau`` of the supernet's
    inherited accuracies of `reference_archs` against `standalone_accs` (same order).

    Validation data: ``x, y`` if given, else the data module's ``bundle.val_x / val_y``."""

    def __init__(
        self,
        every_n_epochs: int,
        reference_archs: Sequence[Sequence[int]],
        standalone_accs: Sequence[float],
        x: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if int(every_n_epochs) < 1:
            raise UsageError(f"train.tau_every_n_epochs={every_n_epochs} must be >= 1")
        if len(reference_archs) != len(standalone_accs) or len(reference_archs) < 3:
            raise UsageError(
                f"the tau reference needs >= 3 archs with one stand-alone accuracy each, got "
                f"{len(reference_archs)} archs and {len(standalone_accs)} accuracies"
            )
        self.every_n_epochs = int(every_n_epochs)
        self.archs: list[Arch] = [as_arch(a) for a in reference_archs]
        self.targets = [float(a) for a in standalone_accs]
        self.x, self.y = x, y
        self.history: list[tuple[int, float | None]] = []  # (epoch, tau) of each measurement

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for arch in self.archs:
            problem = pl_module.space.check(arch)
            if problem:
                raise UsageError(f"tau reference: {problem} (was rank.csv written for another supernet?)")

    def _val_data(self, trainer: pl.Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x is not None and self.y is not None:
            return self.x, self.y
        bundle = getattr(getattr(trainer, "datamodule", None), "bundle", None)
        if bundle is None:
            raise RuntimeError("KendallTauCallback needs x, y or a data module with a `bundle` (TensorDataModule)")
        return bundle.val_x, bundle.val_y

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        x, y = self._val_data(trainer)
        was_training = pl_module.model.training
        evaluator = InheritedEvaluator(pl_module.model, pl_module.space, x, y, device=pl_module.device)
        accs = evaluator.accuracies(self.archs)
        pl_module.model.train(was_training)
        tau = kendall_tau(accs, self.targets)
        self.history.append((trainer.current_epoch, tau))
        if tau is not None:
            pl_module.log("val/kendall_tau", tau, sync_dist=False)


def read_reference(path: str | Path, column: str = "standalone_acc_mean") -> tuple[list[Arch], list[float]]:
    """(archs, stand-alone accuracies) from a ``rank.csv`` written by ``supernet-rank``."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"train.tau_reference={path} does not exist; pass a rank.csv written by supernet-rank")
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "arch" not in rows[0] or column not in rows[0]:
        raise UsageError(f"train.tau_reference={path} has no 'arch' and '{column}' columns (not a rank.csv?)")
    return [parse_arch(r["arch"]) for r in rows], [float(r[column]) for r in rows]


def tau_callback_from_csv(path: str | Path, every_n_epochs: int) -> KendallTauCallback:
    """The callback with the archs and mean stand-alone accuracies of a ``rank.csv``."""
    archs, accs = read_reference(path)
    return KendallTauCallback(every_n_epochs, archs, accs)


class EMAWeights(WeightAveraging):
    """An EMA of all weights, updated after every optimizer step with one fused (foreach) lerp.

    Lightning's `EMAWeightAveraging` averages parameter by parameter, a few kernel launches
    each: on a GPU, where a supernet step is launch-bound, that is a third more launches per
    step. Lightning swaps the average in for validation and writes it as the checkpoint's
    ``state_dict`` (the raw weights go to ``current_model_state``, so a resumed run continues
    both exactly)."""

    def __init__(self, decay: float) -> None:
        check_ema_decay(decay)
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(float(decay)))


# ---------------------------------------------------------------------------- observers
_OBSERVERS: contextvars.ContextVar[tuple[Callable[[str], pl.Callback], ...]] = contextvars.ContextVar(
    "supernet_observers", default=()
)


@contextlib.contextmanager
def observed(factory: Callable[[str], pl.Callback]) -> Iterator[None]:
    """Inside: every Trainer of the training and retraining phases also gets ``factory(phase)``."""
    token = _OBSERVERS.set((*_OBSERVERS.get(), factory))
    try:
        yield
    finally:
        _OBSERVERS.reset(token)


def observer_callbacks(phase: str) -> list[pl.Callback]:
    """The callbacks `observed` asks for, for a Trainer of `phase` (none outside it)."""
    return [factory(phase) for factory in _OBSERVERS.get()]


class EpochHistory(pl.Callback):
    """One row per training epoch into `rows`: the phase, the epoch, the mean of the logged
    ``train/loss`` over its steps, every ``val/*`` figure of the epoch's validation, and the
    seconds since the fit of this Trainer started."""

    def __init__(self, phase: str, rows: list[dict]) -> None:
        self.phase, self.rows = phase, rows
        self.losses: list[float] = []
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            self.losses.append(float(loss))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning validates before this hook: the metrics are this epoch's.
        row = {"phase": self.phase, "epoch": int(trainer.current_epoch)}
        row["loss"] = sum(self.losses) / len(self.losses) if self.losses else float("nan")
        for name, value in sorted(trainer.callback_metrics.items()):
            if name.startswith("val/") and value.numel() == 1:
                row[name.removeprefix("val/")] = float(value)
        row["wall_s"] = round(time.perf_counter() - self.started, 3)
        self.rows.append(row)
        self.losses = []
