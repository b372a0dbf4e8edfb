"""Lightning systems: `SupernetModule` trains the weight-sharing supernet; the data module serves
device-resident batches; `AtomicCheckpointIO` writes checkpoints crash-safely.

Run it through the CLI (``supernet-train``), or in a notebook:

    module = SupernetModule(space=space.to_dict(), data_info=bundle.info(), sampler={"name": "sandwich"},
                            optim={"name": "adamw", "lr": 2e-3}, seed=0)
    pl.Trainer(max_epochs=5).fit(module, datamodule=TensorDataModule(bundle, batch_size=128))
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from supernet.core.metrics import validation_metric  # lives in core; importable from here
from supernet.core.optim import build_optimizer, build_schedule
from supernet.core.sampling import ArchSampler
from supernet.core.space import SearchSpace
from supernet.core.supermlp import SuperMLP, configured_heads, configured_norm
from supernet.core.task import Task
from supernet.data.datasets import DataBundle, TensorLoader
from supernet.errors import NonFiniteLossError
from supernet.files import atomic_write_bytes

log = logging.getLogger(__name__)

REFERENCES = ("min", "mid", "max")


class TensorDataModule(pl.LightningDataModule):
    """Serves a `DataBundle`. With ``loader="tensor"`` (default) the tensors move to the training
    device once and batches are index slices; ``loader="dataloader"`` uses a torch DataLoader
    (for data too large for the device). An epoch makes `passes` passes over the training rows
    (``min_steps``, supernet/train/length.py)."""

    def __init__(
        self,
        bundle: DataBundle,
        batch_size: int = 128,
        eval_batch_size: int = 2048,
        seed: int = 0,
        loader: str = "tensor",
        num_workers: int = 0,
        passes: int = 1,
    ) -> None:
        super().__init__()
        self.bundle, self.batch_size, self.eval_batch_size = bundle, batch_size, eval_batch_size
        self.seed, self.loader, self.num_workers, self.passes = seed, loader, num_workers, passes

    def to_device(self, device: torch.device) -> None:
        if self.loader == "tensor":
            self.bundle = self.bundle.to(device)

    def _rank(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self) -> Any:
        b = self.bundle
        if self.loader == "dataloader":
            g = torch.Generator().manual_seed(self.seed)
            data = TensorDataset(b.train_x, b.train_y)
            if self.passes == 1:
                return DataLoader(
                    data, batch_size=self.batch_size, shuffle=True, generator=g, num_workers=self.num_workers
                )
            # `passes` permutations back to back (RandomSampler draws a new one every len(data) rows)
            sampler = RandomSampler(data, num_samples=self.passes * len(data), generator=g)
            return DataLoader(data, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers)
        return TensorLoader(
            lambda: (b.train_x, b.train_y),
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            epoch=self._epoch,
            rank=self._rank,
            passes=self.passes,
        )

    def val_dataloader(self) -> Any:
        b = self.bundle
        if self.loader == "dataloader":
            return DataLoader(TensorDataset(b.val_x, b.val_y), batch_size=self.eval_batch_size)
        return TensorLoader(lambda: (b.val_x, b.val_y), self.eval_batch_size, shuffle=False, rank=self._rank)


def soften(logits: torch.Tensor, t: float) -> torch.Tensor:
    """Logits at temperature `t`; at t = 1 no division (on a GPU each elementwise op is a kernel
    launch, and a launch costs more than the math of an MNIST-scale step)."""
    return logits if t == 1 else logits / t


def distillation_loss(logits: torch.Tensor, soft_targets: torch.Tensor, t: float) -> torch.Tensor:
    """Soft-label cross-entropy to the teacher's detached predictions (`Task.distillation_loss`
    of a classification)."""
    return Task().distillation_loss(logits, soft_targets, t)


class SupernetModule(pl.LightningModule):
    """Trains `SuperMLP` with one optimizer step per batch over the sampler's paths.

    Manual optimisation: the paths' losses are summed and back-propagated once, then one optimizer
    step; every path costs its own (sliced) compute, never the largest net's. A single backward
    keeps DDP's gradient reduction to one per step.
    """

    def __init__(
        self,
        space: dict,
        data_info: dict,
        sampler: dict,
        optim: dict,
        seed: int = 0,
        skip_nonfinite: bool = False,
        model: dict | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.space = SearchSpace.from_dict(space)
        self.model = SuperMLP(self.space, heads=configured_heads(model), norm=configured_norm(model))
        self.sampler = ArchSampler.from_config(self.space, sampler, seed)
        self.references = {"min": self.space.smallest(), "mid": self.space.middle(), "max": self.space.largest()}
        self.task = Task.from_dict(data_info.get("task"))
        self.val_metric = torch.nn.ModuleDict(
            {r: validation_metric(self.task, self.space.num_classes) for r in REFERENCES}
        )
        self.nonfinite_skips = 0
        self._watch = NonFiniteWatch()

    def forward(self, x: torch.Tensor, arch: Any = None) -> torch.Tensor:
        return self.model(x, arch)

    # ------------------------------------------------------------------ training
    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "to_device"):
            datamodule.to_device(self.device)
        if hasattr(datamodule, "bundle"):
            # Validation (and the tau callback) score subnets with their own normalisation
            # statistics, measured on the same training images on every rank.
            self.model.calibrate(datamodule.bundle.train_x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        if self.model.norm == "batch" and len(x) < 2:
            return  # an epoch's trailing batch of one row has no batch statistics
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        archs = self.sampler.archs(self.current_epoch, batch_idx)
        teacher = None
        losses = []
        t, task = self.sampler.temperature, self.task
        for i, arch in enumerate(archs):
            outputs = self.model(x, arch)
            if teacher is not None:
                loss = task.distillation_loss(outputs, teacher, t)
            else:
                loss = task.loss_fn(outputs, y)
            if i == 0 and self.sampler.teacher_first:
                teacher = task.teacher_targets(outputs.detach(), t)
            losses.append(loss)
        losses_t = torch.stack(losses)
        # One backward over the summed paths: under DDP a step must reduce gradients exactly once.
        self.manual_backward(losses_t.sum())
        total = losses_t.detach()
        if self.hparams.skip_nonfinite or not NonFiniteWatch.applies(self):
            # A host sync: where a skip must be decided before the optimizer step, where it is free
            # (CPU) or where every DDP rank must take the same decision; else the watch checks later.
            finite = bool(torch.isfinite(total).all())
            if self.trainer.world_size > 1:
                finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
            if not finite:
                self._nonfinite(batch_idx, archs, total)
                return
        else:
            self._watch.push(total, self.current_epoch, batch_idx, self.global_step, archs)
        opt.step()
        self.lr_schedulers().step()
        if logs_this_step(self.trainer):
            self.log("train/loss", total[0], prog_bar=True)
            if len(archs) > 1:
                self.log("train/loss_min", total[1])
            self.log("train/lr", opt.param_groups[0]["lr"])

    def _nonfinite(self, batch_idx: int, archs: list, losses: torch.Tensor) -> None:
        where = f"epoch {self.current_epoch}, batch {batch_idx}, global step {self.global_step}"
        bad_idx = (~torch.isfinite(losses)).nonzero()
        arch = archs[int(bad_idx[0])] if len(bad_idx) else archs[0]
        if not self.hparams.skip_nonfinite:
            raise NonFiniteLossError(nonfinite_message(losses.tolist(), where, arch))
        self.optimizers().zero_grad(set_to_none=True)
        self.nonfinite_skips += 1
        log.warning("skipped a non-finite step at %s (arch %s)", where, list(arch))
        self.log("train/nonfinite_skips", float(self.nonfinite_skips))

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        for ref, arch in self.references.items():
            self.val_metric[ref].update(self.task.to_units(self.model(x, arch)), self.task.to_units(y))

    def on_validation_epoch_end(self) -> None:
        name = self.task.headline
        for ref in REFERENCES:
            value = self.val_metric[ref].compute()
            self.log(f"val/{name}_{ref}", value, prog_bar=ref != "mid", sync_dist=False)
            self.log(f"hp/{name}_{ref}", value)
            self.val_metric[ref].reset()

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model.parameters(), self.hparams.optim)
        total = int(self.trainer.estimated_stepping_batches)
        schedule = build_schedule(optimizer, self.hparams.optim, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def configure_callbacks(self) -> list[pl.Callback]:
        return [self._watch]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["supernet"] = {
            "format": 1,
            "space": self.space.to_dict(),
            "data": self.hparams.data_info,
            "model": {"heads": self.model.heads_kind, "norm": self.model.norm},
        }
        checkpoint["nonfinite_skips"] = self.nonfinite_skips

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.nonfinite_skips = int(checkpoint.get("nonfinite_skips", 0))


def logs_this_step(trainer: pl.Trainer) -> bool:
    """Whether the logger writes this step (every ``trainer.log_every_n_steps``). Each `self.log`
    call costs host time, which a launch-bound GPU step feels, so steps that are not written skip
    it. Falls back to logging every step should Lightning's connector change."""
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))


def nonfinite_message(losses: list, where: str, arch: Any) -> str:
    return (
        f"non-finite loss {losses} at {where} for arch {list(arch)}; the last good checkpoint is kept "
        "(set train.skip_nonfinite=true to skip such steps)"
    )


class NonFiniteWatch(pl.Callback):
    """Checks step losses for NaN/inf without a per-step host sync on CUDA: each step's losses are
    copied to pinned host memory behind a CUDA event and read once the event has passed (a few
    steps later), or at once before a checkpoint is written and at the end of an epoch. A bad step
    is reported with its own epoch, batch, global step and arch.

    A module owns one, pushes to it from ``training_step`` where `applies`, checks synchronously
    elsewhere, and returns it from ``configure_callbacks`` so the checks run at those points."""

    def __init__(self, message: Any = None) -> None:
        self.message = message or nonfinite_message  # (losses, where, arch) -> the error's text
        self.pending: list[tuple[Any, torch.Tensor, str, Any]] = []

    @staticmethod
    def applies(module: pl.LightningModule) -> bool:
        """One CUDA process: check later instead of stalling the GPU with a host sync every step.
        Elsewhere the check is synchronous (free on CPU; under DDP every rank must agree first)."""
        return module.device.type == "cuda" and module.trainer.world_size == 1

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, idx: int) -> None:
        self.check(block=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.check(block=True)

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict) -> None:
        self.check(block=True)  # never save weights a non-finite step has touched

    def push(self, losses: torch.Tensor, epoch: int, batch: int, step: int, archs: list) -> None:
        # One non-blocking copy and one event per step; the finiteness test runs on the host copy.
        host = torch.empty(losses.shape, dtype=losses.dtype, pin_memory=True)
        host.copy_(losses, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self.pending.append((event, host, f"epoch {epoch}, batch {batch}, global step {step}", archs))

    def check(self, block: bool) -> None:
        while self.pending:
            event, losses, where, archs = self.pending[0]
            if block:
                event.synchronize()
            elif not event.query():
                return
            self.pending.pop(0)
            finite = torch.isfinite(losses)
            if not bool(finite.all()):
                bad = int((~finite).nonzero()[0])
                self.pending.clear()
                raise NonFiniteLossError(self.message(losses.tolist(), where, archs[bad]))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint through `supernet.files.atomic_write_bytes` (a hidden temporary
    sibling, fsync, rename), so a kill mid-write never leaves a truncated ``last.ckpt`` behind."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:  # Lightning's own TypeError for an option it does not support
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()  # the bytes Lightning writes too: torch.save into memory, then one write
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())


def plain_hparams(cfg: Mapping) -> dict:
    """Flatten a nested config to ``{"a/b": scalar}`` for TensorBoard's HParams tab."""
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(node, (list, tuple)):
            out[prefix] = str(list(node))
        elif node is None or isinstance(node, (bool, int, float, str)):
            out[prefix] = "null" if node is None else node
        else:
            out[prefix] = str(node)

    walk("", cfg)
    return out
