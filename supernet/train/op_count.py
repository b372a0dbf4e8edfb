"""Tensor operations a training step runs, counted on any device: what a GPU step costs when the
math is tiny.

An MNIST-scale MLP step on an H100/H200 does microseconds of arithmetic and milliseconds of kernel
launches, so its time follows the number of kernels it launches, not its FLOPs. Each aten
operation that is not a view (``t``, ``slice``, ``detach``... only reinterpret memory) is one
kernel on CUDA, so counting them on the CPU predicts what a change does to a launch-bound GPU step
without a GPU::

    from supernet.train.op_count import ops_per_step
    ops_per_step(module, datamodule, precision="bf16-mixed")   # median over a few steps

``supernet-bench`` reports it for the sandwich step in float32 and under bf16 autocast.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import pytorch_lightning as pl
from torch.utils._python_dispatch import TorchDispatchMode

# Reading a scalar back (`.item()`): in a step these are the optimizer's step counters, which live
# on the host on every device, so they launch nothing on a GPU either.
NOT_KERNELS = frozenset({"_local_scalar_dense"})


def _is_view(func: Any) -> bool:
    """Whether an operation only returns aliases of its inputs without writing them (``t``,
    ``slice``, ``detach``...), read from its schema: the same answer on every torch version."""
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


class OpCounter(TorchDispatchMode):
    """Counts the kernel-launching aten operations run inside it (views, scalar reads and profiler
    marks aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func.namespace == "aten" and not _is_view(func) and func.overloadpacket.__name__ not in NOT_KERNELS:
            self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


class _StepOps(pl.Callback):
    """Counts each training step from batch start to batch end: forward, backward, optimizer."""

    def __init__(self) -> None:
        self.per_step: list[Counter[str]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, idx: int) -> None:
        self._counter = OpCounter()
        self._counter.__enter__()

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, out: Any, batch: Any, idx: int
    ) -> None:
        self._counter.__exit__(None, None, None)
        self.per_step.append(self._counter.ops)


def ops_per_step(
    module: pl.LightningModule, datamodule: pl.LightningDataModule, precision: str = "32-true", steps: int = 8
) -> float:
    """Median number of kernel-launching operations per training step of `module`, run on the CPU.
    They are the operations a CUDA step launches as long as the module's optimizer is a fused or
    foreach one (`supernet.core.optim.build_optimizer` makes it so on every device; torch's own
    default on the CPU loops over the parameters, which would add operations a GPU does not run)."""
    probe = _StepOps()
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
    )
    trainer.fit(module, datamodule=datamodule)
    return statistics.median(sum(c.values()) for c in probe.per_step)
