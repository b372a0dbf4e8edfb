"""What the net predicts and how it learns it: the task.

A classification net outputs one logit per class and learns by cross-entropy, optionally with
class weights (``data.class_weight``). A regression net outputs one value per target column
(``data.target=[y1, y2]`` for several) and learns by mean squared error or Huber loss against
targets standardised with the training split's mean and std; `to_units` maps its outputs back to
the targets' own units, and an export folds that map into its last Linear layer.

The task travels with the data description (``DataBundle.info()["task"]``), so checkpoints,
exports and every command that reloads them read it back with `Task.from_dict`; a description
without one (older checkpoints) is a classification.

    task = Task.from_dict({"kind": "regression", "loss": "huber", "targets": ["y"],
                           "target_mean": [3.0], "target_std": [2.0]})
    loss = task.loss_fn(outputs, y_standardised)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from supernet.errors import UsageError

if TYPE_CHECKING:
    import torch

# torch is imported where a tensor is computed, not here: the metric registry
# (supernet.core.metrics) reads this module, and supernet-report reads the registry torch-free.

CLASSIFICATION, REGRESSION = "classification", "regression"
# The losses each task learns by; the first is its default (``train.loss=null``).
LOSSES: dict[str, tuple[str, ...]] = {CLASSIFICATION: ("cross_entropy",), REGRESSION: ("mse", "huber")}
# What each task is scored by when no metric is named (`supernet.core.metrics` holds the metrics).
DEFAULT_METRICS: dict[str, str] = {CLASSIFICATION: "accuracy", REGRESSION: "rmse"}


@dataclass(frozen=True)
class Task:
    """The task of a data set and of every model trained on it (see the module docstring)."""

    kind: str = CLASSIFICATION
    loss: str = "cross_entropy"
    class_weight: tuple[float, ...] | None = None  # one weight per class, or None: unweighted
    targets: tuple[str, ...] = ()  # regression: the target columns, in output order
    target_mean: tuple[float, ...] = ()  # regression: training-split statistics of each target
    target_std: tuple[float, ...] = field(default=())

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, node: Mapping[str, Any] | None) -> Task:
        node = dict(node or {})
        weight = node.get("class_weight")
        return cls(
            kind=str(node.get("kind", CLASSIFICATION)),
            loss=str(node.get("loss") or LOSSES[str(node.get("kind", CLASSIFICATION))][0]),
            class_weight=None if weight is None else tuple(float(w) for w in weight),
            targets=tuple(str(t) for t in node.get("targets", ())),
            target_mean=tuple(float(v) for v in node.get("target_mean", ())),
            target_std=tuple(float(v) for v in node.get("target_std", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class_weight"] = None if self.class_weight is None else list(self.class_weight)
        for key in ("targets", "target_mean", "target_std"):
            out[key] = list(out[key])
        return out

    @property
    def is_regression(self) -> bool:
        return self.kind == REGRESSION

    # ------------------------------------------------------------------ the task's decisions
    @property
    def default_metric(self) -> str:
        """The metric used where none is named (``search.metric=null``): accuracy or rmse."""
        return DEFAULT_METRICS[self.kind]

    @property
    def headline(self) -> str:
        """The default metric's name in result fields and logged tags: ``acc`` (``val_acc``,
        ``val/acc``, the names supernet has always written) or ``rmse``."""
        return "acc" if self.default_metric == "accuracy" else self.default_metric

    @property
    def monitor(self) -> tuple[str, str]:
        """The logged validation tag a best-epoch choice watches, and its direction."""
        return f"val/{self.headline}", "min" if self.is_regression else "max"

    def format_value(self, value: float) -> str:
        """A headline value for people: 4 significant digits (regression) or a percentage."""
        return f"{value:.4g}" if self.is_regression else f"{100 * value:.2f}%"

    def splitter(self, k: int, seed: int) -> Any:
        """scikit-learn's k-fold splitter for this task: stratified by class, or shuffled rows."""
        from sklearn.model_selection import KFold, StratifiedKFold

        return (KFold if self.is_regression else StratifiedKFold)(n_splits=k, shuffle=True, random_state=seed)

    def strata(self, y: Any) -> Any:
        """What a stratified split keeps in proportion: the classes, or nothing (one stratum)."""
        import numpy as np

        return np.zeros(len(y)) if self.is_regression else y

    def with_loss(self, loss: str | None, key: str = "loss") -> Task:
        """This task learning by `loss` (None: unchanged); a loss of the other task is an error."""
        if loss is None or loss == self.loss:
            return self
        if loss not in LOSSES[self.kind]:
            other = next(kind for kind, names in LOSSES.items() if loss in names) if is_loss(loss) else None
            why = f"applies to {other}, and the task is {self.kind}" if other else "is unknown"
            raise UsageError(f"{key}={loss} {why}: use one of {list(LOSSES[self.kind])}")
        return replace(self, loss=loss)

    # ------------------------------------------------------------------ learning
    def loss_fn(self, outputs: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """The training loss of `outputs` against `y` (class indices, or standardised targets);
        `label_smoothing` applies to a classification."""
        import torch.nn.functional as F

        if self.kind == REGRESSION:
            if self.loss == "huber":
                return F.huber_loss(outputs, y)
            return F.mse_loss(outputs, y)
        if self.class_weight is None:
            return F.cross_entropy(outputs, y, label_smoothing=label_smoothing)
        # Each row weighted by its class (the weighted mean F.cross_entropy(weight=) takes). Not
        # through `weight=`: with label smoothing torch also weights the smoothed mass of every
        # class by that class's weight, which pushes every row toward the heavy (minority) class.
        per_row = F.cross_entropy(outputs, y, reduction="none", label_smoothing=label_smoothing)
        w = self._weight(outputs)[y]
        return (per_row * w).sum() / w.sum()

    def teacher_targets(self, outputs: torch.Tensor, temperature: float) -> torch.Tensor:
        """In-place distillation's targets from the largest net's detached `outputs`: soft labels
        at `temperature` (classification), or the outputs themselves (regression)."""
        if self.kind == REGRESSION:
            return outputs
        return (outputs if temperature == 1 else outputs / temperature).softmax(-1)

    def distillation_loss(self, outputs: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
        """Regression: MSE to the teacher's outputs. Classification: soft-label cross-entropy,
        scaled by t^2 (Hinton et al.) so that its gradients keep their size whatever t is."""
        import torch.nn.functional as F

        if self.kind == REGRESSION:
            return F.mse_loss(outputs, targets)
        t = temperature
        loss = F.cross_entropy(outputs if t == 1 else outputs / t, targets)
        return loss if t == 1 else loss * (t * t)

    def summed_loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of a chunk of rows, summed; divided by `loss_denominator` of all the rows it is
        the split's mean (what scoring fine-tuned nets chunk by chunk needs)."""
        import torch.nn.functional as F

        if self.kind == REGRESSION:
            fn = F.huber_loss if self.loss == "huber" else F.mse_loss
            return fn(outputs, y, reduction="sum")
        weight = None if self.class_weight is None else self._weight(outputs)
        return F.cross_entropy(outputs, y, weight=weight, reduction="sum")

    def loss_denominator(self, y: torch.Tensor) -> float:
        """What the summed loss is divided by: the rows (classification), the rows' class weights
        (class-weighted, as ``cross_entropy(weight=)`` averages), or every target value (regression)."""
        import torch

        if self.kind == REGRESSION:
            return float(y.numel())
        if self.class_weight is None:
            return float(len(y))
        return float(torch.tensor(self.class_weight, dtype=torch.float64, device=y.device)[y].sum())

    def stacked_loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The sum over nets of each net's loss, for the outputs ``(nets, batch, outputs)`` of a
        stack of nets on one batch: what `loss_fn` gives each net, summed."""
        import torch.nn.functional as F

        n = outputs.shape[0]
        if self.kind == REGRESSION:
            fn = F.huber_loss if self.loss == "huber" else F.mse_loss
            return fn(outputs, y.expand_as(outputs), reduction="none").flatten(1).mean(1).sum()
        per_row = F.cross_entropy(outputs.flatten(0, 1), y.repeat(n), reduction="none").view(n, -1)
        if self.class_weight is None:
            return per_row.mean(1).sum()
        # cross_entropy(weight=) averages by the rows' class weights: sum(w_y * loss) / sum(w_y).
        weight = self._weight(outputs)[y]
        return ((per_row * weight).sum(1) / weight.sum()).sum()

    def _weight(self, outputs: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.tensor(self.class_weight, dtype=outputs.dtype, device=outputs.device)

    # ------------------------------------------------------------------ units
    def to_units(self, outputs: torch.Tensor) -> torch.Tensor:
        """Regression outputs (standardised) in the targets' own units; other outputs unchanged."""
        if self.kind != REGRESSION:
            return outputs
        mean, std = self.scale_tensors(outputs)
        return outputs * std + mean

    def standardise(self, y: torch.Tensor) -> torch.Tensor:
        """Targets in their own units -> what the net learns (the inverse of `to_units`)."""
        mean, std = self.scale_tensors(y)
        return (y - mean) / std

    def scale_tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        mean = torch.tensor(self.target_mean, dtype=like.dtype, device=like.device)
        std = torch.tensor(self.target_std, dtype=like.dtype, device=like.device)
        return mean, std


def is_loss(name: str) -> bool:
    return any(name in names for names in LOSSES.values())


def balanced_weights(y: torch.Tensor, num_classes: int) -> list[float]:
    """scikit-learn's ``class_weight="balanced"``: ``n_rows / (n_classes * rows of the class)``,
    computed on the training split (a class with no training rows gets weight 1)."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    present = sorted(set(y.tolist()))
    weights = compute_class_weight("balanced", classes=np.asarray(present), y=y.numpy())
    out = [1.0] * num_classes
    for c, w in zip(present, weights, strict=True):
        out[c] = float(w)
    return out


def describe(task: Task, class_names: Sequence[str]) -> str:
    """One line for the log: what was chosen, and from what."""
    if task.kind == REGRESSION:
        return f"task=regression on {list(task.targets)} (loss {task.loss}, targets standardised on the training split)"
    weights = "" if task.class_weight is None else f", class weights {[round(w, 3) for w in task.class_weight]}"
    return f"task=classification of {len(class_names)} classes{weights}"
