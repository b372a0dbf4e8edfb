"""The metrics a search can optimise (``search.metric``), each with its direction.

Classification: ``accuracy`` (default), ``balanced_accuracy``, ``log_loss``, ``roc_auc`` and ``f1``
(the last two for two classes). Regression: ``rmse`` (default), ``mae`` and ``r2``, computed in
the targets' own units (several targets: the mean over them). scikit-learn computes each one.

A metric names the field every record, ``history.csv``, ``result.json`` and TensorBoard tag
carries: ``val_acc`` for accuracy (the name supernet has always written), ``val_<name>`` for the
others.

    metric = resolve_metric("balanced_accuracy", task, num_classes=2)
    metric.key, metric.higher_is_better      # 'val_balanced_accuracy', True
    metric(outputs, y, task)                 # a float
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from supernet.core.task import CLASSIFICATION, DEFAULT_METRICS, REGRESSION, Task
from supernet.errors import UsageError

if TYPE_CHECKING:  # outputs are tensors; the registry itself imports no torch (supernet-report reads it)
    import torch


def short_name(name: str) -> str:
    """A metric's name in result fields: ``acc`` for accuracy (``val_acc``, ``test_acc``, the
    fields supernet has always written), else the metric's own (``val_rmse``, ``test_rmse``)."""
    return "acc" if name == "accuracy" else name


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # the task it applies to
    higher_is_better: bool
    score: Callable[[np.ndarray, np.ndarray], float]  # (y_true, prediction) in the sense below
    needs: str = "labels"  # labels | probabilities (classification), values (regression)
    binary_only: bool = False

    @property
    def short(self) -> str:
        return short_name(self.name)

    @property
    def key(self) -> str:
        return f"val_{self.short}"

    @property
    def sign(self) -> int:
        """+1 when larger is better, -1 when smaller is (the search maximises ``sign * value``)."""
        return 1 if self.higher_is_better else -1

    def __call__(self, outputs: torch.Tensor, y: torch.Tensor, task: Task) -> float:
        """The metric of net `outputs` (logits, or standardised values) against `y` (class
        indices, or standardised targets), as a float."""
        return self.score(np.asarray(y_true(y, task)), prediction(outputs, task, self.needs))

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


def y_true(y: torch.Tensor, task: Task) -> np.ndarray:
    if task.is_regression:
        return task.to_units(y.detach().double()).cpu().numpy()
    return y.detach().cpu().numpy()


def prediction(outputs: torch.Tensor, task: Task, needs: str) -> np.ndarray:
    out = outputs.detach().double()
    if needs == "values":
        return task.to_units(out).cpu().numpy()
    if needs == "probabilities":
        return out.softmax(-1).cpu().numpy()
    return out.argmax(-1).cpu().numpy()


def _sk(name: str) -> Callable:
    """A scikit-learn metric, imported on first use (keeps ``import supernet`` light)."""

    def call(y: np.ndarray, p: np.ndarray) -> float:
        import sklearn.metrics as m

        if name == "log_loss":
            return float(m.log_loss(y, p, labels=list(range(p.shape[1]))))
        if name == "roc_auc":
            return float(m.roc_auc_score(y, p[:, 1])) if len(np.unique(y)) == 2 else float("nan")
        if name == "rmse":
            return float(m.root_mean_squared_error(y, p))
        return float(getattr(m, name)(y, p))

    return call


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", CLASSIFICATION, True, _sk("accuracy_score")),
        Metric("balanced_accuracy", CLASSIFICATION, True, _sk("balanced_accuracy_score")),
        Metric("log_loss", CLASSIFICATION, False, _sk("log_loss"), needs="probabilities"),
        Metric("roc_auc", CLASSIFICATION, True, _sk("roc_auc"), needs="probabilities", binary_only=True),
        Metric("f1", CLASSIFICATION, True, _sk("f1_score"), binary_only=True),
        Metric("rmse", REGRESSION, False, _sk("rmse"), needs="values"),
        Metric("mae", REGRESSION, False, _sk("mean_absolute_error"), needs="values"),
        Metric("r2", REGRESSION, True, _sk("r2_score"), needs="values"),
    )
}
DEFAULT_METRIC = DEFAULT_METRICS  # the older name
# Every record field a metric can fill, and its direction (the search's objectives read this).
METRIC_KEYS: dict[str, int] = {m.key: m.sign for m in METRICS.values()}
LOWER_IS_BETTER = frozenset(m.name for m in METRICS.values() if not m.higher_is_better)


def resolve_metric(name: str | None, task: Task, num_classes: int = 2, key: str = "search.metric") -> Metric:
    """The metric `name` (None: the task's default), checked against the task; a clear error
    naming `key` otherwise."""
    name = str(name) if name else task.default_metric
    if name not in METRICS:
        raise UsageError(f"{key}={name!r} is unknown; choose one of {sorted(METRICS)}")
    metric = METRICS[name]
    # Offer only what this data takes: f1 and roc_auc need two classes.
    usable = sorted(m.name for m in task_metrics(task, num_classes))
    if metric.kind != task.kind:
        raise UsageError(f"{key}={name} is a {metric.kind} metric but the task is {task.kind}: use one of {usable}")
    if metric.binary_only and num_classes != 2:
        raise UsageError(f"{key}={name} needs two classes but the data has {num_classes}: use one of {usable}")
    return metric


def task_metrics(task: Task, num_classes: int) -> list[Metric]:
    """Every metric that applies to the task (what retraining and the baselines report)."""
    return [m for m in METRICS.values() if m.kind == task.kind and (num_classes == 2 or not m.binary_only)]


def validation_metric(task: Task, num_outputs: int) -> torch.nn.Module:
    """What both Lightning modules log as ``val/<task.headline>``: the RMSE over every target in
    the targets' own units (update it with `Task.to_units` of outputs and targets), or micro
    accuracy (`to_units` leaves logits and labels as they are). A torchmetrics module."""
    from torchmetrics import MeanSquaredError
    from torchmetrics.classification import MulticlassAccuracy

    if task.is_regression:
        return MeanSquaredError(squared=False)
    return MulticlassAccuracy(num_outputs, average="micro")


def default_metric(task: Task | None = None) -> Metric:
    """The metric of `task` where none is named (no task: a classification, as older records are)."""
    return METRICS[(task or Task()).default_metric]
