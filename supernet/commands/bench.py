"""``supernet-bench``: what makes supernet fast, measured as ratios in one process.

    supernet-bench quick=true     # digits: under a minute on a 2-core CPU
    supernet-bench                # Fashion-MNIST with the 16-1024 space

Writes ``bench.json`` in its run dir and prints a table:

- ``supernet_epoch_over_plain``: one supernet epoch (uniform sampling) / one epoch of the plain
  largest MLP of the space, same batch, both through Lightning with device-resident data;
- ``sandwich_epoch_over_uniform``: the sandwich rule's epoch (4 paths a step) / uniform's;
- ``ema_epoch_over_sandwich``: the sandwich epoch with the jobs' default weight average
  (``train.ema_decay``) / without it;
- ``norm_epoch_over_ema``: that epoch with the jobs' default ``model.norm=batch`` / without it
  (``sandwich_ema_norm_epoch_s`` is the default training step's epoch);
- ``step_overhead_over_plain``: the same ratio per step for a tiny space (widths 8-32, batch 32),
  where compute is next to nothing: the per-step framework/launch overhead, which is what decides
  a GPU step of MNIST-scale MLPs;
- ``bf16_ops_over_fp32``: kernel-launching operations of one sandwich step under bf16 autocast /
  in float32 (counted on the CPU: `supernet.train.op_count`), and where the GPU has bf16,
  ``bf16_epoch_over_fp32``: the sandwich epoch timed both ways. Why ``trainer.precision=auto`` is
  float32 (with TF32 matmuls) rather than bf16;
- ``evals_per_s_batched`` / ``evals_per_s_naive``: inherited-weight scoring of random archs on the
  validation split, prefix-tree batched vs one extracted model at a time; ``norm_scoring_over_plain``:
  the batched scorer's time with ``model.norm=batch`` (each node's statistics measured on the
  calibration images first) / without;
- ``naive_candidate_s``: one candidate scored the naive way (trained one epoch from scratch
  through a torchvision-style DataLoader with per-sample ToTensor, batch 64, then a pass over the
  training set), timed on ``naive_batches`` batches and scaled to the epoch;
- ``pipeline_s``, ``pipeline_test_acc`` and per-phase times of the full ``supernet`` job;
- peak memory (process RSS, GPU) and the device name.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from supernet.commands.common import entry_point
from supernet.config import build_space
from supernet.core.device import pick_device
from supernet.core.optim import build_optimizer
from supernet.core.space import SearchSpace
from supernet.core.supermlp import SuperMLP
from supernet.data.datasets import load_data
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.io.files import to_plain, write_json
from supernet.train.callbacks import EMAWeights
from supernet.train.module import SupernetModule, TensorDataModule
from supernet.train.op_count import ops_per_step

log = logging.getLogger(__name__)

# Every model the bench trains uses this optimiser, so ratios compare the models, not optimisers.
BENCH_OPTIM = {"name": "adamw", "lr": 0.005, "schedule": "constant"}
# The sandwich rule as the jobs run it by default: the largest, the smallest and two random paths.
BENCH_SANDWICH = {"name": "sandwich", "n_random": 2}


class PlainModule(pl.LightningModule):
    """The comparator: a plain ``nn.Sequential`` MLP, same optimiser as the supernet."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def on_fit_start(self) -> None:
        self.trainer.datamodule.to_device(self.device)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.parameters(), BENCH_OPTIM)


class EpochTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def _sync(self, module: pl.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._sync(module)
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._sync(module)
        self.times.append(time.perf_counter() - self._t0)


def time_epoch(
    module: pl.LightningModule,
    datamodule: TensorDataModule,
    epochs: int,
    device: torch.device,
    limit_batches: int | None = None,
    precision: str = "32-true",
    callbacks: list[pl.Callback] | None = None,
) -> float:
    timer = EpochTimer()
    trainer = pl.Trainer(
        max_epochs=epochs,
        limit_train_batches=limit_batches,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer, *(callbacks or [])],
        precision=precision,
    )
    trainer.fit(module, datamodule=datamodule)
    return min(timer.times)


def tiny_space(space: SearchSpace) -> SearchSpace:
    """The space's depths with widths 8-32: the same operations per step, next to no arithmetic."""
    return SearchSpace(
        space.in_features,
        space.num_classes,
        depth_min=space.depth_min,
        depth_max=space.depth_max,
        width_min=8,
        width_max=32,
        width_step=8,
    )


def step_overhead(bundle, space, device: torch.device, epochs: int, seed: int, steps: int = 200) -> dict[str, Any]:
    """Per-step cost when there is next to no compute (widths 8-32, batch 32): the framework and
    launch overhead that decides a GPU step for MNIST-scale MLPs, measurable on any device."""
    tiny = tiny_space(space)
    dm = lambda: TensorDataModule(bundle, 32, 10_000, seed=seed)  # noqa: E731
    plain = time_epoch(PlainModule(SuperMLP(tiny).extract(tiny.largest())), dm(), epochs, device, steps)
    sn = time_epoch(
        SupernetModule(tiny.to_dict(), bundle.info(), {"name": "uniform"}, BENCH_OPTIM), dm(), epochs, device, steps
    )
    steps = min(steps, -(-len(bundle.train_y) // 32))
    return {
        "plain_step_us_tiny": round(plain / steps * 1e6, 1),
        "supernet_step_us_tiny": round(sn / steps * 1e6, 1),
        "step_overhead_over_plain": round(sn / plain, 3),
    }


def bf16_cost(
    bundle, space, device: torch.device, epochs: int, seed: int, batch: int, fp32_epoch_s: float
) -> dict[str, Any]:
    """What bf16 autocast does to a sandwich step: its operation count (every device) and, on a
    GPU with bf16, its epoch time. Autocast casts each sliced weight and input of every path, and
    their gradients back, so an MNIST-scale step launches more kernels for math it did not need."""

    def tiny_module() -> SupernetModule:
        return SupernetModule(tiny_space(space).to_dict(), bundle.info(), BENCH_SANDWICH, BENCH_OPTIM, seed=seed)

    counts = {
        precision: ops_per_step(tiny_module(), TensorDataModule(bundle, 32, 10_000, seed=seed), precision)
        for precision in ("32-true", "bf16-mixed")
    }
    figures: dict[str, Any] = {
        "sandwich_ops_per_step_fp32": counts["32-true"],
        "sandwich_ops_per_step_bf16": counts["bf16-mixed"],
        "bf16_ops_over_fp32": round(counts["bf16-mixed"] / counts["32-true"], 3),
    }
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        module = SupernetModule(space.to_dict(), bundle.info(), BENCH_SANDWICH, BENCH_OPTIM, seed=seed)
        bf16_s = time_epoch(
            module, TensorDataModule(bundle, batch, 10_000, seed=seed), epochs, device, None, "bf16-mixed"
        )
        figures.update(sandwich_bf16_epoch_s=round(bf16_s, 4), bf16_epoch_over_fp32=round(bf16_s / fp32_epoch_s, 3))
    return figures


def naive_candidate_s(bundle, space, arch, device: torch.device, batches: int) -> float:
    """The per-candidate cost of search-by-training: per-sample ToTensor through a DataLoader."""
    from torch.utils.data import DataLoader, Dataset

    side = int(round(bundle.in_features**0.5))
    images = (bundle.train_x.cpu().numpy().reshape(-1, side, side) * 255).clip(0, 255).astype(np.uint8)
    labels = bundle.train_y.cpu().numpy()

    class PerSample(Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            from torchvision.transforms.functional import to_tensor

            return to_tensor(images[i][:, :, None]).reshape(-1), int(labels[i])

    net = SuperMLP(space).extract(arch).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loader = DataLoader(PerSample(), batch_size=64, shuffle=True)
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i == batches:
            break
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    train_s = (time.perf_counter() - t0) * len(loader) / min(batches, len(loader))
    t0 = time.perf_counter()
    with torch.no_grad():
        for i, (x, _) in enumerate(DataLoader(PerSample(), batch_size=64)):
            if i == batches:
                break
            net(x.to(device))
    eval_s = (time.perf_counter() - t0) * len(loader) / min(batches, len(loader))
    return train_s + eval_s


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB


def run_bench(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from supernet.commands.common import CONF_DIR

    data_cfg = to_plain(cfg.data)
    if cfg.quick:
        data_cfg = to_plain(OmegaConf.load(CONF_DIR / "data" / "digits.yaml"))
    device = pick_device(str(cfg.device))
    torch.set_float32_matmul_precision("high")
    pl.seed_everything(int(cfg.seed), verbose=False)
    bundle = load_data(data_cfg)
    space = build_space(cfg.space if not cfg.quick else {}, data_cfg, bundle.in_features, bundle.num_classes)
    figures: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "data": bundle.summary(),
        "space": space.to_dict(),
        "batch_size": int(cfg.batch_size),
    }
    batch = int(cfg.batch_size)

    def datamodule() -> TensorDataModule:
        return TensorDataModule(bundle, batch, 10_000, seed=int(cfg.seed))

    def supernet(sampler: dict, norm: str = "none") -> SupernetModule:
        return SupernetModule(space.to_dict(), bundle.info(), sampler, BENCH_OPTIM, model={"norm": norm})

    plain_s = time_epoch(PlainModule(SuperMLP(space).extract(space.largest())), datamodule(), int(cfg.epochs), device)
    uniform_s = time_epoch(supernet({"name": "uniform"}), datamodule(), int(cfg.epochs), device)
    sandwich_s = time_epoch(supernet(BENCH_SANDWICH), datamodule(), int(cfg.epochs), device)
    # The jobs' default also keeps an EMA of the weights (train.ema_decay): one fused lerp per step.
    ema_s = time_epoch(supernet(BENCH_SANDWICH), datamodule(), int(cfg.epochs), device, callbacks=[EMAWeights(0.99)])
    # ... and normalises each path with its batch's statistics (model.norm=batch): the jobs' step.
    norm_s = time_epoch(
        supernet(BENCH_SANDWICH, "batch"), datamodule(), int(cfg.epochs), device, callbacks=[EMAWeights(0.99)]
    )
    figures.update(
        plain_epoch_s=round(plain_s, 4),
        uniform_epoch_s=round(uniform_s, 4),
        sandwich_epoch_s=round(sandwich_s, 4),
        supernet_epoch_over_plain=round(uniform_s / plain_s, 3),
        sandwich_epoch_over_uniform=round(sandwich_s / uniform_s, 3),
        sandwich_ema_epoch_s=round(ema_s, 4),
        ema_epoch_over_sandwich=round(ema_s / sandwich_s, 3),
        sandwich_ema_norm_epoch_s=round(norm_s, 4),
        norm_epoch_over_ema=round(norm_s / ema_s, 3),
    )

    figures.update(step_overhead(bundle, space, device, int(cfg.epochs), int(cfg.seed)))
    figures.update(bf16_cost(bundle, space, device, int(cfg.epochs), int(cfg.seed), batch, sandwich_s))

    rng = random.Random(int(cfg.seed))
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(int(cfg.n_archs))))
    model = SuperMLP(space)
    evaluator = InheritedEvaluator(model, space, bundle.val_x, bundle.val_y, device=device)
    evaluator.accuracies(archs[:5])  # warm-up (allocator, kernels)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    evaluator.accuracies(archs)
    sync()
    batched_s = time.perf_counter() - t0
    n_naive = min(len(archs), max(20, len(archs) // 5))
    t0 = time.perf_counter()
    evaluator.accuracies_naive(archs[:n_naive])
    sync()
    naive_s = time.perf_counter() - t0
    figures.update(
        n_archs=len(archs),
        val_samples=len(bundle.val_y),
        evals_per_s_batched=round(len(archs) / batched_s, 1),
        evals_per_s_naive=round(n_naive / naive_s, 1),
    )
    figures["batched_over_naive"] = round(figures["evals_per_s_batched"] / figures["evals_per_s_naive"], 2)
    # With model.norm=batch each prefix-tree node also measures its statistics on the calibration images.
    normed = SuperMLP(space, norm="batch").calibrate(bundle.train_x)
    norm_evaluator = InheritedEvaluator(normed, space, bundle.val_x, bundle.val_y, device=device)
    norm_evaluator.accuracies(archs[:5])
    sync()
    t0 = time.perf_counter()
    norm_evaluator.accuracies(archs)
    sync()
    figures["evals_per_s_batched_norm"] = round(len(archs) / (time.perf_counter() - t0), 1)
    figures["norm_scoring_over_plain"] = round(figures["evals_per_s_batched"] / figures["evals_per_s_batched_norm"], 3)

    if bundle.input_shape[0] == 1 and len(bundle.input_shape) == 3:
        cand_s = naive_candidate_s(bundle, space, space.middle(), device, int(cfg.naive_batches))
        per_eval_oneshot = 1.0 / figures["evals_per_s_batched"]
        figures.update(
            naive_candidate_s=round(cand_s, 3), naive_over_oneshot_per_candidate=round(cand_s / per_eval_oneshot, 1)
        )

    if cfg.pipeline:
        figures.update(run_pipeline(cfg, data_cfg, out_dir))
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if device.type == "cuda":
        figures["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    write_json(out_dir / "bench.json", figures)
    print(format_table(figures))
    return {"task": "bench", "status": "ok", **figures, "paths": {"bench": str(out_dir / "bench.json")}}


def run_pipeline(cfg: DictConfig, data_cfg: dict, out_dir: Path) -> dict[str, Any]:
    """The full `supernet` job as a user runs it (its own process: RSS measured on its own)."""
    run_dir = out_dir / "pipeline"
    overrides = [
        f"data={data_cfg['name']}",
        f"hydra.run.dir={run_dir}",
        f"seed={cfg.seed}",
        "trainer.enable_progress_bar=false",
    ]
    if cfg.quick:
        overrides += ["data=digits"]
    overrides += [str(o) for o in cfg.pipeline_overrides]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "supernet", *overrides], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"pipeline_error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    result = json.loads((run_dir / "result.json").read_text())
    return {
        "pipeline_s": round(wall, 2),
        "pipeline_test_acc": (result.get("winner") or {}).get("test_acc"),
        "pipeline_phases_s": {k: v.get("wall_s") for k, v in (result.get("phases") or {}).items()},
        "pipeline_peak_rss_mb": round(peak_rss_mb(resource.RUSAGE_CHILDREN), 1),
    }


def format_table(figures: dict[str, Any]) -> str:
    keys = [
        "device",
        "data",
        "supernet_epoch_over_plain",
        "sandwich_epoch_over_uniform",
        "ema_epoch_over_sandwich",
        "norm_epoch_over_ema",
        "step_overhead_over_plain",
        "plain_step_us_tiny",
        "supernet_step_us_tiny",
        "sandwich_ops_per_step_fp32",
        "sandwich_ops_per_step_bf16",
        "bf16_ops_over_fp32",
        "bf16_epoch_over_fp32",
        "plain_epoch_s",
        "uniform_epoch_s",
        "sandwich_epoch_s",
        "evals_per_s_batched",
        "evals_per_s_naive",
        "batched_over_naive",
        "norm_scoring_over_plain",
        "naive_candidate_s",
        "naive_over_oneshot_per_candidate",
        "pipeline_s",
        "pipeline_test_acc",
        "pipeline_phases_s",
        "pipeline_peak_rss_mb",
        "peak_rss_mb",
        "peak_gpu_mb",
        "pipeline_error",
    ]
    width = max(len(k) for k in keys)
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{k:<{width}}  {figures[k]}" for k in keys if k in figures]
    return "\n".join(lines)


main = entry_point("bench", run_bench)

if __name__ == "__main__":
    main()
