"""Train the supernet: data -> SuperMLP -> Lightning fit -> checkpoints, TensorBoard, result.json.

    supernet-train                                   # digits, sandwich rule (conf/train.yaml)
    supernet-train ckpt_path=outputs/train/runs/<stamp>   # resume a killed run in place

A run dir holds one training: a fresh fit into a dir that already has checkpoints is refused
(resume it with ``ckpt_path=<dir>``), and the dir is locked while it trains.

`train_supernet` is the phase ``supernet-train`` and the pipeline call; `build_module` and
`build_trainer` are its two halves for a caller that drives Lightning itself.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from supernet.config import TrainingSettings, build_space, check_train_config, trainer_kwargs
from supernet.core.space import SearchSpace
from supernet.data.datasets import DataBundle, load_data
from supernet.errors import UsageError
from supernet.files import run_dir_lock, to_plain, write_json
from supernet.io.checkpoint import resume_target
from supernet.train.callbacks import StopOnSignal, fitting, observer_callbacks
from supernet.train.length import passes_for
from supernet.train.module import AtomicCheckpointIO, SupernetModule, TensorDataModule, plain_hparams

log = logging.getLogger(__name__)


def tau_callbacks(cfg: DictConfig) -> list:
    """``train.tau_reference=<rank.csv>``: log ``val/kendall_tau`` against those stand-alone
    accuracies every ``train.tau_every_n_epochs`` epochs."""
    reference = cfg.train.get("tau_reference")
    if not reference:
        return []
    from supernet.train.callbacks import tau_callback_from_csv

    return [tau_callback_from_csv(reference, int(cfg.train.get("tau_every_n_epochs", 1)))]


def ema_callbacks(cfg: DictConfig) -> list:
    """``train.ema_decay`` (0.99 by default, null: off): train on the raw weights but validate,
    checkpoint, search and export an exponential moving average of them (BigNAS). Listed after
    the tau callback so that its ``val/kendall_tau`` also reads the averaged weights."""
    decay = cfg.train.get("ema_decay")
    if decay is None:
        return []
    from supernet.train.callbacks import EMAWeights

    return [EMAWeights(decay)]


def train_supernet(
    cfg: DictConfig,
    out_dir: Path,
    bundle: DataBundle | None = None,
    resume: tuple[Path | None, Path | None] | None = None,
    settings: TrainingSettings | None = None,
) -> dict[str, Any]:
    """Train; `bundle` lets the pipeline load the data once for all its phases, `resume` is
    `resume_target`'s answer when the caller already checked the checkpoint (it is read once);
    `settings`: the training sections of `cfg` already checked (`TrainingSettings.build`), not
    checked again."""
    if settings is None:
        check_train_config(cfg)
    ckpt, resume_dir = resume or resume_target(cfg.get("ckpt_path"), cfg.get("model"))
    if resume_dir is not None:
        log.info("resuming %s in place from %s", resume_dir, ckpt)
        out_dir = resume_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    if not launching_process():  # a DDP rank Lightning started: the launcher holds the lock
        return _fit(cfg, out_dir, bundle, ckpt)
    with run_dir_lock(out_dir, "training"):
        check_fresh_run_dir(out_dir, ckpt)
        return _fit(cfg, out_dir, bundle, ckpt)


def launching_process() -> bool:
    """True in the process the user started; False in the DDP ranks Lightning re-launches (they
    run this script again with ``LOCAL_RANK`` set) and in ranks of other nodes, which all share
    the run dir."""
    return all(os.environ.get(var, "0") == "0" for var in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def check_fresh_run_dir(out_dir: Path, ckpt: Path | None) -> None:
    """A run dir that already holds checkpoints is only continued by resuming it: a fresh fit
    there would leave the old ``last.ckpt`` next to the new weights."""
    checkpoints = out_dir / "checkpoints"
    if ckpt is not None and Path(ckpt).resolve().parent == checkpoints.resolve():
        return  # resuming from one of this dir's own checkpoints
    if ckpt is None and "SLURM_JOB_ID" in os.environ and any(out_dir.glob("hpc_ckpt_*.ckpt")):
        return  # a job SLURM requeued: Lightning's auto-requeue resumes from its hpc_ckpt_<n>.ckpt
    held = sorted(checkpoints.glob("*.ckpt")) if checkpoints.is_dir() else []
    if held:
        name = "last.ckpt" if (checkpoints / "last.ckpt").is_file() else held[-1].name
        raise UsageError(
            f"hydra.run.dir={out_dir} already holds a training run (checkpoints/{name}): "
            f"resume it with ckpt_path={out_dir}, or pick a new hydra.run.dir"
        )


def _fit(cfg: DictConfig, out_dir: Path, bundle: DataBundle | None, ckpt: Path | None) -> dict[str, Any]:
    """Seed, load the data, fit (from `ckpt` when resuming) and write ``result.json``."""
    torch.set_float32_matmul_precision("high")  # TF32 on GPUs that have it
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)

    started = time.perf_counter()
    bundle = bundle if bundle is not None else load_data(cfg.data)
    bundle = replace(bundle, task=bundle.task.with_loss(cfg.get("loss")))  # the caller's bundle stays
    space = build_space(cfg.space, cfg.data, bundle.in_features, bundle.num_classes)
    module, datamodule = build_module(cfg, bundle, space)
    trainer = build_trainer(cfg, out_dir, bundle.task.headline)
    with fitting():  # SIGTERM/SIGINT: stop after the batch, keep the last whole checkpoint
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    result = {
        "task": "train",
        "status": "ok",
        "metrics": final_metrics(trainer, module, datamodule),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "nonfinite_skips": module.nonfinite_skips,
        "wall_s": round(time.perf_counter() - started, 2),
        "space": space.to_dict(),
        "space_size": space.size(),
        "data": bundle.summary(),
        "device": str(module.device),
        "paths": {
            "run_dir": str(out_dir),
            "checkpoint": str(out_dir / "checkpoints" / "last.ckpt"),
            "tensorboard": str(out_dir),
        },
    }
    if trainer.is_global_zero:
        write_json(out_dir / "result.json", result)
    return result


def build_module(cfg: DictConfig, bundle: DataBundle, space: SearchSpace) -> tuple[SupernetModule, TensorDataModule]:
    """The Lightning system and the data module of ``cfg`` (the supernet's weights are drawn here)."""
    module = SupernetModule(
        space=space.to_dict(),
        # The data config travels with the checkpoint: search, export, retrain and rank read
        # exactly the same split without the user repeating it.
        data_info={**bundle.info(), "config": to_plain(cfg.data)},
        sampler=to_plain(cfg.sampler),
        optim=to_plain(cfg.optim),
        seed=int(cfg.seed),
        skip_nonfinite=bool(cfg.train.skip_nonfinite),
        model=to_plain(cfg.get("model") or {}),
    )
    batch_size = int(cfg.data.batch_size)
    min_steps = (cfg.get("train") or {}).get("min_steps")
    datamodule = TensorDataModule(
        bundle,
        batch_size,
        int(cfg.data.eval_batch_size),
        int(cfg.seed),
        loader=cfg.data.loader,
        num_workers=int(cfg.data.get("num_workers", 0)),
        passes=passes_for(to_plain(cfg.trainer), min_steps, len(bundle.train_x), batch_size, "supernet training"),
    )
    return module, datamodule


class EpochCheckpoints(ModelCheckpoint):
    """Lightning's `ModelCheckpoint` keeping only what its policy keeps (the newest epoch and
    ``last.ckpt``) after a resume too: Lightning spares the file a fit resumed from, so resuming
    from ``epoch000.ckpt`` would leave it beside ``epoch002.ckpt``. A file outside this run's
    ``checkpoints/`` is spared as before."""

    def _should_remove_checkpoint(self, trainer: pl.Trainer, previous: str, current: str) -> bool:
        own = self.dirpath is not None and Path(previous).absolute().parent == Path(self.dirpath).absolute()
        if own and previous != current:
            return True  # this run's own superseded epoch file, even the one the fit resumed from
        return super()._should_remove_checkpoint(trainer, previous, current)


def build_trainer(cfg: DictConfig, out_dir: Path, metric: str = "acc") -> pl.Trainer:
    """``cfg.trainer`` with the run dir's checkpoints (atomic), TensorBoard and the callbacks;
    `metric` names the reference nets' validation figure (``hp/<metric>_max``...)."""
    checkpoint = EpochCheckpoints(
        dirpath=out_dir / "checkpoints",
        filename="epoch{epoch:03d}",
        save_last=True,
        # save_top_k=1 without a monitor keeps the newest epoch; Lightning refreshes last.ckpt only
        # when it saved a checkpoint in that epoch, so top_k=0 would write last.ckpt at the end only.
        save_top_k=1,
        every_n_epochs=1,
        auto_insert_metric_name=False,
        # A rerun writes over its own files: a `last-v1.ckpt` beside a stale `last.ckpt` would
        # leave result.json, the search and the export reading the old weights.
        enable_version_counter=False,
    )
    loggers = []
    if cfg.logger.name == "tensorboard":
        tb = TensorBoardLogger(save_dir=str(out_dir), name="", version="", default_hp_metric=False)
        hp = {f"hp/{metric}_{ref}": 0.0 for ref in ("min", "mid", "max")}
        tb.log_hyperparams(plain_hparams(to_plain(cfg)), hp)
        loggers.append(tb)
    return pl.Trainer(
        **trainer_kwargs(cfg.trainer),
        default_root_dir=str(out_dir),
        logger=loggers or False,
        callbacks=[checkpoint, *tau_callbacks(cfg), *ema_callbacks(cfg), *observer_callbacks("train"), StopOnSignal()],
        plugins=[AtomicCheckpointIO()],
        enable_model_summary=False,
    )


def final_metrics(trainer: pl.Trainer, module: SupernetModule, datamodule: TensorDataModule) -> dict[str, float]:
    """The last validation's figures (``hp/`` copies aside)."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if not k.startswith("hp/")}
    if not any(k.startswith("val/") for k in metrics):
        # Resumed from a checkpoint written after the last epoch: nothing ran, so validate the
        # finished weights (a straight or mid-way resumed run already validated its last epoch).
        final = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
        metrics.update({k: float(v) for k, v in final.items() if not k.startswith("hp/")})
    return metrics
