"""The measurements `supernet-bench` makes (supernet.commands.bench runs them and names the figures).

Each function times or counts one thing on a given bundle, space and device; the ratios and the
table are bench.py's business.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from supernet.core.optim import build_optimizer
from supernet.core.space import SearchSpace
from supernet.core.supermlp import SuperMLP
from supernet.train.module import SupernetModule, TensorDataModule
from supernet.train.op_count import ops_per_step

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
    """Wall time of each training epoch, the device synchronised at both ends."""

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
    """The fastest of `epochs` training epochs of `module` (the first pays for warm-up)."""
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
    """Peak resident memory of this process (or of its finished children) in MiB."""
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB
