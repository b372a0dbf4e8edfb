"""The exported MLP itself: `Subnet` (a plain MLP with its input normalisation), the export
format's names and constants, and what reading and writing an export share (the arch.yaml fields
checked, the labels' dtype, the shapes an arch needs, a regression's folded output scale).

Reading an export from disk is `supernet.io.subnet.load_subnet`; an ensemble of subnets is
`supernet.io.ensemble`. Both import this module, so neither imports the other's reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from supernet.core.task import Task
from supernet.data.datasets import Normalize
from supernet.errors import UsageError

FORMAT = "supernet-subnet"
FORMAT_VERSION = 1
ARCH_FILE = "arch.yaml"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
SUBNET_KIND, ENSEMBLE_KIND = "subnet", "ensemble"  # arch.yaml's kind (none: a subnet)


class Subnet(nn.Module):
    """A plain MLP with its input normalisation: raw inputs ``(N, ...)`` in, logits (or, for a
    regression, values in the targets' own units) out.

    ``forward(raw)`` flattens to ``(N, in_features)``, normalises with the saved mean/std and runs
    ``mlp``; ``mlp(x)`` takes already-normalised inputs (what `supernet.data.datasets.load_data` returns).
    ``preprocess(inputs)`` turns a DataFrame (tabular exports) or images (image-folder exports)
    into the raw features ``forward`` expects, using the saved preprocess spec; ``predict(inputs)``
    does both and returns values, or class labels (``predict_proba``: probabilities).

    A regression export's last Linear layer has the targets' de-standardisation folded in
    (`fold_output_scale`); training runs on the unfolded (standardised) form.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        dropout: float = 0.0,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.arch = tuple(int(w) for w in hidden)
        dims = [int(in_features), *self.arch, int(num_classes)]
        self.normalize = Normalize(list(mean), list(std))
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.dropout = float(dropout)
        self.in_features, self.num_classes = dims[0], dims[-1]
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], dropout: float = 0.0) -> Subnet:
        """A freshly initialised model of the shape described by an ``arch.yaml`` dict."""
        norm = meta["normalization"]
        return cls(meta["in_features"], meta["arch"], meta["num_classes"], norm["mean"], norm["std"], dropout, meta)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, in_features)`` -> logits."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
                if self.dropout and self.training:
                    x = F.dropout(x, self.dropout, training=True)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.normalize(x.reshape(x.shape[0], -1)))

    def preprocess(self, inputs: Any) -> torch.Tensor:
        """Raw user inputs (DataFrame rows, PIL images or paths, arrays) -> raw features."""
        from supernet.data.tables import raw_features

        return raw_features(self.meta.get("preprocess") or {}, inputs)

    @property
    def task(self) -> Task:
        return Task.from_dict(self.meta.get("task"))

    @torch.no_grad()
    def predict(self, inputs: Any) -> Any:
        """Values ``(N,)`` (one target) or ``(N, T)`` for a regression; class labels (the class
        names, as a numpy array) for a classification. `inputs`: a DataFrame (tabular exports),
        raw features as a tensor or array, or images (image-folder exports)."""
        outputs = self(self._raw(inputs)).cpu()
        return self.task.predictions(outputs, lambda: class_labels(self.meta, self.num_classes))

    @torch.no_grad()
    def predict_proba(self, inputs: Any) -> Any:
        """Class probabilities ``(N, classes)`` as a numpy array (classification only)."""
        if self.task.is_regression:
            raise UsageError("predict_proba: this subnet is a regression; use predict")
        return self(self._raw(inputs)).softmax(-1).cpu().numpy()

    def _raw(self, inputs: Any) -> torch.Tensor:
        """`inputs` as raw features, checked (`checked_inputs`): one line for what is wrong."""
        return checked_inputs(self.meta.get("preprocess") or {}, self.in_features, inputs, self.preprocess)

    def weights(self) -> dict[str, torch.Tensor]:
        """The tensors saved in ``model.safetensors`` (contiguous CPU copies)."""
        state = self.state_dict()
        return {k: v.detach().cpu().contiguous().clone() for k, v in state.items() if k.startswith("layers.")}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.layers.parameters())


def checked_inputs(spec: Mapping[str, Any], in_features: int, inputs: Any, preprocess: Any) -> torch.Tensor:
    """predict's `inputs` as raw features ``(N, ...)``, or a UsageError saying what is wrong: a
    dict or a Series (pass a DataFrame), no rows, an object array, a width other than the
    net's, NaN or inf (only a table export's DataFrame imputes missing values: by its spec).
    A table export takes a DataFrame of its columns, or the encoded features as numbers; one an
    estimator fitted on an array writes (``array_width`` in its spec) takes that array's rows."""
    import numpy as np

    columns = [c["name"] for c in spec.get("columns", [])] if spec.get("kind") == "table" else []
    kind = type(inputs).__name__
    if isinstance(inputs, Mapping) or kind == "Series":
        raise UsageError(
            f"predict: got a {kind}; pass a DataFrame (pandas.DataFrame(x); a Series as one row: x.to_frame().T)"
            + (f" with the columns {columns}" if columns else "")
        )
    if hasattr(inputs, "columns") and hasattr(inputs, "iloc"):  # a DataFrame
        if len(inputs) == 0:
            raise UsageError("predict: the DataFrame has no rows")
        if not columns or spec.get("array_width"):
            inputs = inputs.to_numpy()
        else:
            return preprocess(inputs)
    if spec.get("kind") == "image" and not isinstance(inputs, (torch.Tensor, np.ndarray)):
        return preprocess(inputs)
    if spec.get("kind") == "table" and spec.get("array_width"):  # an estimator fitted on an array
        return preprocess(_raw_rows(inputs, int(spec["array_width"])))
    if not isinstance(inputs, torch.Tensor):
        array = np.asarray(inputs)
        if array.dtype.kind not in "biuf":
            hint = f"; this export reads a DataFrame with the columns {columns}" if columns else ""
            raise UsageError(f"predict: X holds {array.dtype} values, not numbers{hint}")
        inputs = torch.as_tensor(array, dtype=torch.float32)
    x = inputs.float()
    if x.ndim == 0 or x.shape[0] == 0:
        raise UsageError(f"predict: X has no rows (shape {list(x.shape)})")
    width = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    if width != in_features:
        hint = f" (or a DataFrame with the columns {columns})" if columns else ""
        raise UsageError(f"predict: X has {width} features per row; this subnet takes {in_features}{hint}")
    if not torch.isfinite(x).all():
        row = int((~torch.isfinite(x.reshape(len(x), -1))).any(1).nonzero()[0])
        hint = "; a DataFrame of this export's columns imputes missing values" if columns else ""
        raise UsageError(f"predict: X row {row} holds NaN or inf; the subnet takes finite features{hint}")
    return x


def _raw_rows(inputs: Any, width: int) -> Any:
    """The rows of an estimator fitted on an array (its spec's ``array_width``): numbers, that
    width, finite, as its ``predict`` takes them; the spec's scaling comes after."""
    import numpy as np

    array = np.asarray(inputs.detach().cpu() if isinstance(inputs, torch.Tensor) else inputs)
    if array.dtype.kind not in "biuf":
        raise UsageError(f"predict: X holds {array.dtype} values, not numbers")
    if array.ndim == 0 or array.shape[0] == 0:
        raise UsageError(f"predict: X has no rows (shape {list(array.shape)})")
    got = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
    if array.ndim != 2 or got != width:
        raise UsageError(f"predict: X has {got} features per row; this subnet takes {width}")
    if not np.isfinite(array).all():
        row = int((~np.isfinite(array)).any(1).nonzero()[0][0])
        raise UsageError(f"predict: X row {row} holds NaN or inf; the subnet takes finite features")
    return array.astype(np.float64)


LABEL_KINDS = "biufUO"  # label dtypes an export keeps: bool, integers, floats, strings, Python objects


def label_fields(classes: Any) -> dict[str, Any]:
    """``class_labels`` and ``label_dtype`` for ``arch.yaml``: an estimator's ``classes_`` as plain
    YAML scalars and their NumPy dtype, so an export's `Subnet.predict` returns what the estimator's
    ``predict`` returns (0, not '0'). Other dtypes (dates...) are left to ``class_names``."""
    import numpy as np

    classes = np.asarray(classes)
    if classes.dtype.kind not in LABEL_KINDS:
        return {}
    return {"class_labels": classes.tolist(), "label_dtype": classes.dtype.str}


def class_labels(meta: Mapping[str, Any], num_classes: int) -> Any:
    """What `Subnet.predict` returns for each class index: ``class_labels`` in ``label_dtype``
    (`label_fields`), else the class names (strings, as the command-line exports hold them)."""
    import numpy as np

    if meta.get("class_labels") is not None:
        return np.asarray(meta["class_labels"], dtype=np.dtype(meta.get("label_dtype") or "O"))
    return np.asarray(list(meta.get("class_names") or range(num_classes)))


@torch.no_grad()
def fold_output_scale(model: Subnet, task: Task, inverse: bool = False) -> None:
    """Fold a regression's de-standardisation ``y = out * std + mean`` into `model`'s last Linear
    layer, in place (``inverse``: take it out again, back to the standardised form it trains in)."""
    task.fold_scale(model.layers[-1], inverse)


def expected_shapes(meta: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``layers.<i>.weight/bias`` -> shape, for the arch in ``meta``."""
    dims = [int(meta["in_features"]), *(int(w) for w in meta["arch"]), int(meta["num_classes"])]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        shapes[f"layers.{i}.weight"] = (b, a)
        shapes[f"layers.{i}.bias"] = (b,)
    return shapes


def with_tensors(model: Subnet, tensors: Mapping[str, torch.Tensor], prefix: str = "") -> Subnet:
    """`model` with its parameters copied from `tensors` (keys ``<prefix>layers.<i>...``), in eval mode."""
    with torch.no_grad():
        for name, param in model.state_dict().items():
            if prefix + name in tensors:
                param.copy_(tensors[prefix + name].float())
    return model.eval()


def checked_fields(meta: dict[str, Any], path: Path, key: str) -> dict[str, Any]:
    """One subnet's ``arch.yaml`` fields as numbers, checked (arch, shapes, normalisation)."""
    try:
        arch = [int(w) for w in meta["arch"]]
        in_features, num_classes = int(meta["in_features"]), int(meta["num_classes"])
        mean = [float(v) for v in meta["normalization"]["mean"]]
        std = [float(v) for v in meta["normalization"]["std"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{key}={path}: missing or malformed field ({type(exc).__name__}: {exc}); it needs arch, in_features, "
            "num_classes and normalization.mean/std"
        ) from None
    least = Task.from_dict(meta.get("task")).min_outputs
    if not arch or min(arch) < 1 or in_features < 1 or num_classes < least:
        raise UsageError(f"{key}={path}: arch={arch}, in_features={in_features}, num_classes={num_classes} are invalid")
    if not mean or len(mean) != len(std) or in_features % len(mean) or min(std) <= 0:
        raise UsageError(
            f"{key}={path}: normalization has {len(mean)} means and {len(std)} stds (all > 0 needed), which must "
            f"divide in_features={in_features}"
        )
    meta.update(arch=arch, in_features=in_features, num_classes=num_classes, normalization={"mean": mean, "std": std})
    return meta
