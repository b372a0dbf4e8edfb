"""DataBundle: the normalised splits a run trains on, and the Normalize layer from raw inputs to them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from supernet.core.task import Task, describe_rows
from supernet.data.table_recipe import Auto
from supernet.errors import UsageError

SPLIT_TENSORS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


@dataclass
class DataBundle:
    """Normalised, flattened splits (CPU tensors until `to` moves them) and their description.

    Regression targets are standardised with the training split's statistics (`task` holds them
    and maps outputs back to the targets' units)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    input_shape: list[int]
    class_names: list[str]
    mean: list[float]
    std: list[float]
    preprocess: dict[str, Any] = field(default_factory=dict)
    task: Task = field(default_factory=Task)
    autos: tuple[Auto, ...] = ()  # what the loader's autos became (supernet.data.table_recipe), for the run's line

    @property
    def in_features(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        """The net's outputs: one per class, or one per regression target."""
        return self.task.num_outputs(self.class_names)

    @property
    def out_features(self) -> int:
        return self.num_classes

    @property
    def nbytes(self) -> int:
        """The bytes of the splits' tensors."""
        return sum(int(t.nbytes) for t in (getattr(self, name) for name in SPLIT_TENSORS) if t is not None)

    def to(self, device: torch.device | str) -> DataBundle:
        """This data on `device` (a new bundle: the phases share the one they were given)."""
        moved = {name: getattr(self, name) for name in SPLIT_TENSORS}
        return replace(self, **{k: None if t is None else t.to(device, non_blocking=True) for k, t in moved.items()})

    def adopt_task(self, task: Task, model: str = "the model") -> DataBundle:
        """This data under a trained model's `task`: its loss and class weights, and a regression's
        targets standardised with the statistics the model learned them with (its outputs are read
        in those units; a data override such as ``data.limit_train`` would otherwise move them).
        A new bundle: the one given, which other phases read, is left as it is."""
        if not task.same_kind(self.task):
            raise UsageError(
                f"data={self.name} is a {self.task.kind} data set but {model} learned a {task.kind}: "
                "use the data it was trained on"
            )
        targets = {}
        if task != self.task:  # a classification's labels stay as they are
            for name in ("train_y", "val_y", "test_y"):
                y = getattr(self, name)
                targets[name] = None if y is None else task.standardise(self.task.to_units(y))
        return replace(self, task=task, **targets)

    def info(self) -> dict[str, Any]:
        """Everything a model needs to be rebuilt and fed raw inputs (saved in checkpoints/exports)."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "in_features": self.in_features,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
            "preprocess": dict(self.preprocess),
            "task": self.task.to_dict(),
        }

    def summary(self) -> str:
        n_test = 0 if self.test_y is None else len(self.test_y)
        sizes = f"data={self.name}: {len(self.train_y)} train / {len(self.val_y)} val / {n_test} test"
        return f"{sizes}, {self.in_features} features, {describe_rows(self.task, self.class_names, self.train_y)}"


class Normalize(torch.nn.Module):
    """Raw flattened input -> normalised input, one mean/std per channel (images) or feature."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x = x.reshape(n, len(self.mean), -1)
        return ((x - self.mean[:, None]) / self.std[:, None]).reshape(n, -1)


def per_feature(values: list[float] | torch.Tensor, in_features: int) -> torch.Tensor:
    """Per-channel (or per-feature) statistics repeated to ``(1, in_features)``, one per input."""
    v = torch.as_tensor(values, dtype=torch.float32)
    return v.repeat_interleave(in_features // len(v))[None, :]
