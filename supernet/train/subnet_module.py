"""`SubnetModule`: the Lightning system that trains one exported MLP (`supernet.io.subnet.Subnet`).

Optional dropout, label smoothing and random image shifts, AdamW + cosine from ``conf/optim``;
`supernet.train.retrain` drives it (``supernet-retrain``, the pipeline's last phase).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from supernet.core.optim import build_optimizer, build_schedule
from supernet.errors import NonFiniteLossError
from supernet.io.subnet import Subnet
from supernet.train.module import NonFiniteWatch, logs_this_step, validation_metric

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- augmentation
def random_shift(
    x: torch.Tensor, image_shape: tuple[int, int, int], max_shift: int, fill: torch.Tensor
) -> torch.Tensor:
    """Shift each flattened image ``(N, C*H*W)`` by its own random offset in ``[-max_shift, max_shift]``
    pixels along both axes; uncovered pixels take `fill` (per channel: the normalised value of a
    black pixel). All on the tensor's device, no per-sample Python.

    One ``gather`` of each sample's window out of its padded image: a third of the time of
    indexing with four broadcast index tensors on a CPU (about 0.3 s of a 2.4 s Fashion-MNIST epoch
    against 0.9 s, one thread, 2026-12-07)."""
    n = x.shape[0]
    c, h, w = image_shape
    s = max_shift
    hp, wp = h + 2 * s, w + 2 * s
    padded = fill[None, :, None, None].expand(n, c, hp, wp).clone()
    padded[:, :, s : s + h, s : s + w] = x.reshape(n, c, h, w)
    dy = torch.randint(0, 2 * s + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * s + 1, (n,), device=x.device)
    window = (torch.arange(h, device=x.device)[:, None] * wp + torch.arange(w, device=x.device)).reshape(-1)
    index = (dy * wp + dx)[:, None] + window  # (N, H*W): where each output pixel sits in the padded image
    out = padded.reshape(n, c, hp * wp).gather(2, index[:, None, :].expand(n, c, h * w))
    return out.reshape(n, -1)


def image_shape_of(meta: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """``(C, H, W)`` for image exports, None for tabular ones (no spatial structure to shift)."""
    shape = list(meta.get("input_shape") or [])
    if len(shape) != 3 or (meta.get("preprocess") or {}).get("kind") == "table":
        return None
    return int(shape[0]), int(shape[1]), int(shape[2])


# ---------------------------------------------------------------------------- the system
class SubnetModule(pl.LightningModule):
    """Trains one exported MLP (`supernet.io.subnet.Subnet`) on normalised inputs.

    ``init="scratch"`` weights come from ``seed`` (PyTorch's default Linear init); for
    ``init="inherited"`` load them afterwards:
    ``module.model.load_state_dict(training_form(load_subnet(d)).state_dict())``
    (`supernet.train.retrain.training_form`: a regression trains on standardised targets, its
    output scale taken out of the last layer).
    """

    def __init__(
        self,
        meta: dict,
        optim: dict,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        augment_shift: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = Subnet.from_meta(meta, dropout=dropout)
        self.image_shape = image_shape_of(meta)
        self.augment_shift = int(augment_shift) if self.image_shape else 0
        if augment_shift and not self.image_shape:
            log.warning("augment.shift=%s ignored: the inputs are not images", augment_shift)
        norm = self.model.normalize
        self.register_buffer("fill", -norm.mean / norm.std, persistent=False)  # a black pixel, normalised
        self.task = self.model.task
        self.val_metric = validation_metric(self.task, self.model.num_classes)
        self._watch = NonFiniteWatch(retrain_nonfinite_message)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.mlp(x)

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "to_device"):
            datamodule.to_device(self.device)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.augment_shift:
            x = random_shift(x, self.image_shape, self.augment_shift, self.fill)
        loss = self.task.loss_fn(self.model.mlp(x), y, label_smoothing=float(self.hparams.label_smoothing))
        if NonFiniteWatch.applies(self):
            self._watch.push(loss.detach()[None], self.current_epoch, batch_idx, self.global_step, [self.model.arch])
        elif not torch.isfinite(loss):
            raise NonFiniteLossError(retrain_nonfinite_message([loss.item()], self._where(batch_idx), self.model.arch))
        if logs_this_step(self.trainer):
            self.log("train/loss", loss, prog_bar=True)
            self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def _where(self, batch_idx: int) -> str:
        return f"epoch {self.current_epoch}, batch {batch_idx}, global step {self.global_step}"

    def configure_callbacks(self) -> list[pl.Callback]:
        return [self._watch]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.val_metric.update(self.task.to_units(self.model.mlp(x)), self.task.to_units(y))

    def on_validation_epoch_end(self) -> None:
        value = self.val_metric.compute()
        name = self.task.headline
        self.log(f"val/{name}", value, prog_bar=True)
        self.log(f"hp/val_{name}", value)
        self.val_metric.reset()

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model.parameters(), self.hparams.optim)
        schedule = build_schedule(optimizer, self.hparams.optim, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def retrain_nonfinite_message(losses: list, where: str, arch: Any) -> str:
    return f"non-finite loss {losses} at {where} retraining arch {list(arch)}; lower optim.lr"
