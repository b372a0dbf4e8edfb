"""A subnet's outputs on each split (float32, no TF32) and every metric of its task on them."""

from __future__ import annotations

from typing import Any

import torch

from supernet.core.metrics import task_metrics
from supernet.data.datasets import DataBundle
from supernet.io.subnet import Subnet


@torch.no_grad()
def outputs_of(model: Subnet, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``model.mlp`` on normalised inputs, in float32 (no TF32) on the tensors' device."""
    was_training = model.training
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32: the figures are the exported model's
    try:
        model.eval().to(x.device)
        return torch.cat([model.mlp(xb.float()) for xb in x.split(batch_size)])
    finally:
        torch.set_float32_matmul_precision(precision)
        model.train(was_training)


def top1(outputs: torch.Tensor, y: torch.Tensor) -> float:
    """The share of rows whose largest output is their class (counted exactly, no float mean)."""
    return int((outputs.argmax(-1) == y).sum()) / max(len(y), 1)


def eval_splits(model: Subnet, bundle: DataBundle, batch_size: int) -> dict[str, float | None]:
    """Every metric of the task on val and test (``val_acc``, ``test_acc``, ``val_rmse``...) of
    `model` in its training form (a regression's outputs standardised, like the bundle's targets)."""
    figures: dict[str, float | None] = {}
    for split in ("val", "test"):
        x, y = getattr(bundle, f"{split}_x"), getattr(bundle, f"{split}_y")
        outputs = None if x is None else outputs_of(model, x, batch_size)
        figures |= split_figures(split, outputs, y, bundle)
    return figures


def split_figures(split: str, outputs: torch.Tensor | None, y: torch.Tensor | None, bundle: DataBundle) -> dict:
    """Every metric of `bundle`'s task for `outputs` against `y`, named ``<split>_<metric>``
    (None when `outputs` is None: a split the data does not have)."""
    task = bundle.task
    figures: dict[str, Any] = {}
    for metric in task_metrics(task, bundle.num_classes):
        name = f"{split}_{metric.short}"
        if outputs is None:
            figures[name] = None
        elif metric.name == "accuracy":
            figures[name] = top1(outputs, y)
        else:
            figures[name] = metric(outputs, y, task)
    if not task.is_regression:
        figures[f"{split}_recall"] = None if outputs is None else class_recall(outputs, y, bundle.num_classes)
    return figures


def class_recall(outputs: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Each class's recall (the share of its rows predicted as it), in class order: what an
    imbalanced data set's minority class gets."""
    from sklearn.metrics import recall_score

    labels = list(range(num_classes))
    pred = outputs.argmax(-1).cpu().numpy()
    return [float(r) for r in recall_score(y.cpu().numpy(), pred, labels=labels, average=None, zero_division=0)]
