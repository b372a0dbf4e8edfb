"""The table encoder: raw table rows -> raw float features, fitted on the training rows only.

`TablePreprocessor.fit` learns the encoding, `spec()` saves it as plain data (``preprocess`` in
checkpoints and exports) and `TablePreprocessor.from_spec(spec).transform(df)` applies it to raw
rows, e.g. of a user's DataFrame at prediction time. The rules (see `supernet.data.tables`):

  * numeric columns pass through raw (``load_data`` standardises them); a missing value becomes
    the column's median over the training rows.
  * categorical columns (text, category, bool, or listed in ``data.categorical``) are one-hot
    encoded with the categories seen in the training rows. One-hot rather than learnt embeddings:
    the searched models are small MLPs and tabular categoricals are usually low-cardinality, so
    one-hot adds a few inputs and needs no trainable layer outside the searched network; a column
    of more than ``data.max_categories`` (50) distinct values is an error naming it. A missing
    value is a category of its own, ``__missing__`` (when the training rows have one); a value
    the training rows never showed encodes as all zeros.
  * a column that is constant over the training rows carries nothing and is left out (logged).
  * ``data.scaler`` (robust, quantile) and ``data.clip`` reshape each numeric column, fitted on
    the training rows and kept in its spec as ``scale`` (`supernet.data.scalers`);
    ``data.periodic=k`` adds 2k periodic inputs after it, kept as ``periodic``
    (`supernet.data.periodic`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from supernet.data.periodic import SEED, apply_periodic, fit_periodic, periodic_names
from supernet.data.scalers import apply_scale, fit_scale
from supernet.errors import UsageError

log = logging.getLogger(__name__)

MISSING = "__missing__"
# An object column whose values are at least this share numbers is a numeric column with typos.
MOSTLY_NUMERIC = 0.9


def as_category(value: Any) -> str:
    """One string per category value, so 3, 3.0 and np.int64(3) are the same category."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _category_strings(s: pd.Series) -> list[str]:
    return [MISSING if pd.isna(v) else as_category(v) for v in s.astype(object)]


def sorted_values(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types: order by their names
        return sorted(values, key=as_category)


class TablePreprocessor:
    """Raw table rows -> raw float features, with encodings fitted on the training rows.

    The spec (`spec()`, plain data saved as ``preprocess`` in exports)::

        kind: table
        target: label                      # the class column (not needed by transform); null: regression
        classes: [a, b]                    # class index i is named classes[i]; []: regression
        targets: [y1, y2]                  # regression only: the target columns, in output order
        columns:                           # the feature columns, in input order
          - {name: age, type: numeric, fill: 41.5}          # fill: training-rows median
          - {name: income, type: numeric, fill: 3e4, scale: {kind: robust, center: 3e4, scale: 2e4, clip: 3}}
          - {name: color, type: categorical, categories: [blue, red, __missing__]}
        feature_names: [age, color=blue, color=red, color=__missing__]   # one per model input
        dropped: [{name: id, reason: ...}]  # feature columns left out, and why
        missing: <the missing-value rule, in words>

    Numeric columns give one input each; a categorical column gives one 0/1 input per category.
    The model's own normalisation (mean/std per input) is applied after this, by the caller.
    """

    MISSING_RULE = (
        "numeric: the training-rows median; categorical: its own category __missing__ "
        "(all zeros if the training rows had no missing value); unseen categories: all zeros"
    )

    def __init__(
        self,
        columns: list[dict[str, Any]],
        target: str | None = None,
        classes: Sequence[str] = (),
        dropped: Sequence[dict[str, str]] = (),
        targets: Sequence[str] = (),
    ) -> None:
        self.columns = [dict(c) for c in columns]
        self.target = target
        self.classes = [str(c) for c in classes]
        self.dropped = [dict(d) for d in dropped]
        self.targets = [str(t) for t in targets]  # regression: the target columns (no classes)
        for col in self.columns:
            if col.get("type") not in ("numeric", "categorical"):
                raise UsageError(f"preprocess column {col.get('name')!r}: unknown type {col.get('type')!r}")

    # -- fitting
    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        features: Sequence[str],
        source: str,
        max_categories: int = 50,
        categorical: Sequence[str] = (),
        target: str | None = None,
        classes: Sequence[str] = (),
        targets: Sequence[str] = (),
    ) -> TablePreprocessor:
        """Learn fill values and category lists from `df` (the training rows only)."""
        columns: list[dict[str, Any]] = []
        dropped: list[dict[str, str]] = []
        for name in features:
            s = df[name]
            kind = "categorical" if name in categorical else _column_kind(s, name, source)
            if kind == "numeric":
                values = pd.to_numeric(s, errors="coerce")
                median = values.median()
                fill = 0.0 if pd.isna(median) else float(median)
                if values.fillna(fill).nunique() <= 1:
                    dropped.append({"name": name, "reason": "constant over the training rows"})
                    continue
                columns.append({"name": name, "type": "numeric", "fill": fill})
            else:
                values = sorted_values(list(s.dropna().unique()))
                cats = list(dict.fromkeys(as_category(v) for v in values))
                if len(cats) > max_categories:
                    raise UsageError(
                        f"{source}: column {name!r} has {len(cats)} distinct non-numeric values "
                        f"in the training rows, above data.max_categories={max_categories}; "
                        f"raise data.max_categories or leave it out with data.drop=[{name}]"
                    )
                if s.isna().any():
                    cats.append(MISSING)
                if len(cats) <= 1:
                    dropped.append({"name": name, "reason": "constant over the training rows"})
                    continue
                columns.append({"name": name, "type": "categorical", "categories": cats})
        for d in dropped:
            log.warning("%s: column %r is left out (%s)", source, d["name"], d["reason"])
        if not columns:
            raise UsageError(f"{source}: no usable feature column (all are constant or dropped)")
        return cls(columns, target, classes, dropped, targets)

    def fit_scales(
        self,
        df: pd.DataFrame,
        scaler: str = "standard",
        clip: float | None = None,
        periodic: tuple[int, float] | None = None,
    ) -> TablePreprocessor:
        """Learn each numeric column's ``data.scaler`` / ``data.clip`` scaling from `df` (the
        training rows `fit` saw) and, with `periodic` (k, sigma), its periodic features; returns self."""
        rng = np.random.default_rng(SEED)
        for col in self.columns:
            if col["type"] != "numeric":
                continue
            values = pd.to_numeric(df[col["name"]], errors="coerce").fillna(col["fill"]).to_numpy(dtype=np.float64)
            scale = fit_scale(values, scaler, clip)
            if scale is not None:
                col["scale"] = scale
            if periodic is not None:
                col["periodic"] = fit_periodic(apply_scale(values, scale), *periodic, rng)
        return self

    # -- spec
    def spec(self) -> dict[str, Any]:
        spec = {
            "kind": "table",
            "target": self.target,
            "classes": list(self.classes),
            "columns": [dict(c) for c in self.columns],
            "feature_names": self.feature_names,
            "dropped": [dict(d) for d in self.dropped],
            "missing": self.MISSING_RULE,
        }
        if self.targets:
            spec["targets"] = list(self.targets)
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> TablePreprocessor:
        if spec.get("kind") != "table":
            raise UsageError(f"preprocess kind {spec.get('kind')!r} is not 'table'")
        columns = [{k: (list(v) if k == "categories" else v) for k, v in dict(c).items()} for c in spec["columns"]]
        return cls(
            columns, spec.get("target"), spec.get("classes", ()), spec.get("dropped", ()), spec.get("targets", ())
        )

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.columns:
            if col["type"] == "numeric":
                names.append(col["name"])
                if "periodic" in col:
                    names.extend(periodic_names(col["name"], col["periodic"]))
            else:
                names.extend(f"{col['name']}={c}" for c in col["categories"])
        return names

    @property
    def in_features(self) -> int:
        return len(self.feature_names)

    # -- applying
    def transform(self, df: pd.DataFrame, source: str = "input") -> torch.Tensor:
        """Raw rows -> float32 ``(len(df), in_features)``; other columns (target...) are ignored."""
        missing = [c["name"] for c in self.columns if c["name"] not in df.columns]
        if missing:
            raise UsageError(f"{source}: missing feature column(s) {missing}; it has {list(df.columns)}")
        blocks: list[np.ndarray] = []
        for col in self.columns:
            s = df[col["name"]]
            if col["type"] == "numeric":
                values = pd.to_numeric(s, errors="coerce")
                bad = values.isna() & s.notna()
                if bad.any():
                    row = bad.idxmax()
                    raise UsageError(
                        f"{source}: column {col['name']!r} is numeric but row {row} holds "
                        f"{s[row]!r}; fix the value or list it in data.na_values"
                    )
                arr = values.fillna(col["fill"]).to_numpy(dtype=np.float64)
                if not np.isfinite(arr).all():
                    row = s.index[int(np.argmin(np.isfinite(arr)))]
                    raise UsageError(f"{source}: column {col['name']!r} row {row} is {s[row]}")
                scaled = apply_scale(arr, col.get("scale"))
                blocks.append(scaled[:, None])
                if "periodic" in col:
                    blocks.append(apply_periodic(scaled, col["periodic"]))
            else:
                index = {c: i for i, c in enumerate(col["categories"])}
                codes = np.array([index.get(v, -1) for v in _category_strings(s)], dtype=np.int64)
                onehot = np.zeros((len(s), len(index)), dtype=np.float64)
                known = codes >= 0
                onehot[np.nonzero(known)[0], codes[known]] = 1.0
                blocks.append(onehot)
        return torch.from_numpy(np.concatenate(blocks, axis=1)).float()

    def unseen_categories(self, df: pd.DataFrame) -> dict[str, dict[str, int]]:
        """Per categorical column of `df`, the values the training rows never had (they encode as
        all zeros) and how many rows hold each."""
        unseen: dict[str, dict[str, int]] = {}
        for col in self.columns:
            if col["type"] != "categorical" or col["name"] not in df.columns:
                continue
            known = set(col["categories"])
            counts = pd.Series([v for v in _category_strings(df[col["name"]]) if v not in known], dtype=object)
            if len(counts):
                unseen[col["name"]] = {str(k): int(n) for k, n in counts.value_counts().items()}
        return unseen

    def encode_target(self, df: pd.DataFrame, source: str = "input") -> torch.Tensor:
        """The target column as int64 class indices (into `classes`)."""
        if self.target not in df.columns:
            raise UsageError(f"{source}: target column {self.target!r} not found; columns: {list(df.columns)}")
        s = df[self.target]
        if s.isna().any():
            raise UsageError(
                f"{source}: target column {self.target!r} is empty in row {s.isna().idxmax()}; fill or remove that row"
            )
        index = {c: i for i, c in enumerate(self.classes)}
        labels = []
        for row, value in zip(s.index, _category_strings(s), strict=True):
            if value not in index:
                raise UsageError(
                    f"{source}: row {row} has class {value!r} that the training rows do not "
                    f"have ({', '.join(self.classes)})"
                )
            labels.append(index[value])
        return torch.tensor(labels, dtype=torch.int64)


def _column_kind(s: pd.Series, name: str, source: str) -> str:
    """numeric | categorical, or a UsageError for a column no rule covers."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype):
        return "numeric"
    if (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(s.dtype)
        or (pd.api.types.is_string_dtype(s.dtype))
    ):
        present = s.dropna()
        if isinstance(s.dtype, pd.CategoricalDtype) or len(present) == 0:
            return "categorical"
        if present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
            return "categorical"
        numbers = pd.to_numeric(present, errors="coerce")
        share = numbers.notna().mean()
        if share == 1.0:
            return "numeric"  # numbers stored as text (a Parquet string column...)
        if share >= MOSTLY_NUMERIC:
            row = numbers.isna().idxmax()
            raise UsageError(
                f"{source}: column {name!r} is mostly numbers but row {row} holds "
                f"{present[row]!r}; fix it, list it in data.na_values if it means missing, "
                f"or treat the column as categorical with data.categorical=[{name}]"
            )
        return "categorical"
    raise UsageError(
        f"{source}: column {name!r} has dtype {s.dtype}, which has no encoding rule; convert it "
        f"to numbers or text, or leave it out with data.drop=[{name}]"
    )
