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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from supernet.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch

T = TypeVar("T")

# torch is imported where a tensor is computed, not here: the metric registry
# (supernet.core.metrics) reads this module, and supernet-report reads the registry torch-free.

CLASSIFICATION, REGRESSION = "classification", "regression"
KINDS = (CLASSIFICATION, REGRESSION)  # what ``data.task`` may name besides ``auto``
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

    @classmethod
    def for_training(
        cls, kind: str, train_y: torch.Tensor, targets: Sequence[str] = (), weights: tuple[float, ...] | None = None
    ) -> Task:
        """The task of `kind` learnt from `train_y`: a regression's target scaling measured on
        those rows (the std of one row: 1), a classification's class `weights`; the default loss."""
        if kind != REGRESSION:
            return cls(CLASSIFICATION, LOSSES[CLASSIFICATION][0], class_weight=weights)
        import torch

        y = train_y.double()
        std = y.std(dim=0) if len(y) > 1 else torch.ones(y.shape[1], dtype=torch.float64)
        return cls(
            REGRESSION,
            LOSSES[REGRESSION][0],
            targets=tuple(targets),
            target_mean=tuple(y.mean(dim=0).tolist()),
            target_std=tuple(std.clamp_min(1e-12).tolist()),
        )

    @property
    def is_regression(self) -> bool:
        return self.kind == REGRESSION

    def same_kind(self, other: Task | str) -> bool:
        """Whether `other` (a task, or a kind such as a metric's) is a task of this kind."""
        return self.kind == (other if isinstance(other, str) else other.kind)

    def choose(self, classification: T, regression: T) -> T:
        """Of two things, the one that goes with this task (an estimator class, a sampler...)."""
        return regression if self.is_regression else classification

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

    def num_outputs(self, class_names: Sequence[str]) -> int:
        """The net's outputs: one per class, or one per regression target."""
        return len(self.targets) if self.is_regression else len(class_names)

    @property
    def min_outputs(self) -> int:
        """The fewest outputs a net of this task can have: one target, or two classes."""
        return self.choose(2, 1)

    @property
    def multi_output(self) -> bool:
        """A regression of several target columns (what a one-output estimator fits one by one)."""
        return self.is_regression and len(self.targets) > 1

    @property
    def outputs_meaning(self) -> str:
        """What an export's outputs are (``arch.yaml``'s ``outputs``)."""
        return self.choose("logits", "values in the targets' units")

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
        """Targets in their own units -> what the net learns (the inverse of `to_units`); class
        labels unchanged."""
        if self.kind != REGRESSION:
            return y
        mean, std = self.scale_tensors(y)
        return (y - mean) / std

    def fold_scale(self, last: torch.nn.Linear, inverse: bool = False) -> None:
        """Fold `to_units` (``y = out * std + mean``) into the net's `last` Linear layer, in place
        (``inverse``: take it out again); a classification's logits have nothing to fold."""
        if self.kind != REGRESSION:
            return
        mean, std = self.scale_tensors(last.bias)
        if inverse:
            last.weight.div_(std[:, None])
            last.bias.sub_(mean).div_(std)
        else:
            last.weight.mul_(std[:, None])
            last.bias.mul_(std).add_(mean)

    def predictions(self, outputs: torch.Tensor, labels: Callable[[], np.ndarray]) -> np.ndarray:
        """What ``predict`` returns for `outputs` (in the targets' units): values ``(N,)`` (one
        target) or ``(N, T)``, or the class labels (`labels()`, the class names) of the largest logit."""
        if self.kind != REGRESSION:
            return labels()[outputs.argmax(-1).numpy()]
        values = outputs.numpy()
        return values[:, 0] if values.shape[1] == 1 else values

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


def check_class_weight(kind: str, weight: Any) -> None:
    """``data.class_weight`` weighs classes: set for a regression, a one-line error."""
    if kind == REGRESSION and weight is not None:
        raise UsageError(f"data.class_weight={weight} applies to classification; the task is regression")


def describe_rows(task: Task, class_names: Sequence[str], train_y: torch.Tensor) -> str:
    """The log's line on a data set's targets: the task (`describe`), and for a classification
    its classes and their balance in the training rows (class weights when set)."""
    if task.kind == REGRESSION:
        return describe(task, class_names)
    import torch

    counts = torch.bincount(train_y.cpu(), minlength=len(class_names))
    ratio = counts.max().item() / max(counts.min().item(), 1)
    weights = "" if task.class_weight is None else f", {describe(task, class_names)}"
    return f"{len(class_names)} classes (largest/smallest class in train: {ratio:.2f}){weights}"


def describe(task: Task, class_names: Sequence[str]) -> str:
    """One line for the log: what was chosen, and from what."""
    if task.kind == REGRESSION:
        return f"task=regression on {list(task.targets)} (loss {task.loss}, targets standardised on the training split)"
    weights = "" if task.class_weight is None else f", class weights {[round(w, 3) for w in task.class_weight]}"
    return f"task=classification of {len(class_names)} classes{weights}"
