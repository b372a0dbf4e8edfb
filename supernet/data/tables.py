"""Bring your own data: tables (CSV, Parquet), image folders, and an embedded tabular demo set.

    supernet data=csv data.path=measurements.csv data.target=label
    supernet data=csv data.path=train.parquet data.target=y data.test_path=test.parquet
    supernet data=image_folder data.path=my_images/ data.image_size=28
    supernet data=tabular_demo                       # scikit-learn's breast cancer set, offline

Each loader returns a `supernet.data.datasets.RawData` of *raw* features; `supernet.data.datasets.load_data` then
carves the validation split and standardises every feature with training-split statistics.

Tables (``data=csv``; the reader is picked by suffix: .csv/.tsv -> pandas, .parquet/.pq -> pyarrow)
  * target: ``data.target``; classes are its sorted distinct values, named as strings.
  * features: ``data.features`` (null: every other column) minus ``data.drop``.
  * numeric columns pass through raw (load_data standardises them); a missing value becomes the
    column's median over the training rows.
  * categorical columns (text, category, bool, or listed in ``data.categorical``) are one-hot
    encoded with the categories seen in the training rows. One-hot rather than learnt embeddings:
    the models searched here are small MLPs and tabular categoricals are usually low-cardinality,
    so one-hot adds a few inputs, needs no extra trainable layer outside the searched network,
    and a column of more than ``data.max_categories`` (50) distinct values is an error naming it.
    A missing value is a category of its own, ``__missing__`` (when the training rows have one);
    a value the training rows never showed encodes as all zeros.
  * a column that is constant over the training rows carries nothing and is left out (logged).
  * leak-free: the statistics above (medians, category lists) are fitted on exactly the rows
    load_data will train on. The loader first carves the test split (unless ``data.test_path``
    is given: same columns), then makes the same seeded validation split load_data makes
    (`stratified_split` over the same labels with ``data.val_size`` and ``data.split_seed``) and
    fits on the remaining rows only; validation and test rows are only transformed.

The fitted encoding is saved as ``RawData.preprocess`` (plain JSON/YAML data, exported with the
model); `TablePreprocessor.from_spec(spec).transform(df)` applies it to raw rows of a DataFrame.

Image folders (``data=image_folder``): torchvision's `ImageFolder` layout (one sub-folder per
class; hidden folders skipped), every image resized to ``data.image_size`` square, grayscale
(``data.grayscale``) or RGB, scaled to [0, 1] and flattened channel-first; read once into tensors.
`image_to_tensor` applies the same steps to one PIL image.

Both kinds: with no ``data.test_path`` a stratified ``data.test_size`` share is held out as the
test split (fixed seed); class counts and the largest/smallest ratio are logged at load time.
`raw_features(spec, inputs)` turns raw inputs (DataFrame rows, images) into model inputs for
any saved spec, before the model's own normalisation.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from supernet.data.datasets import RawData, stratified_split
from supernet.errors import UsageError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MISSING = "__missing__"
TEST_SEED = 12345  # the carved test split never moves (the same fixed seed as digits' test split)
DEMO_SETS = {"breast_cancer": "load_breast_cancer", "wine": "load_wine", "iris": "load_iris"}
# An object column whose values are at least this share numbers is a numeric column with typos.
MOSTLY_NUMERIC = 0.9


# ---------------------------------------------------------------------------- reading tables
def _input_path(cfg: Mapping, key: str, directory: bool = False) -> Path:
    value = cfg.get(key)
    if not value:
        raise UsageError(f"data.{key} is not set: pass data.{key}=<your file or folder>")
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise UsageError(f"data.{key}={value}: no such {'folder' if directory else 'file'}")
    if directory and not path.is_dir():
        raise UsageError(f"data.{key}={value} is a file; image_folder needs a folder of classes")
    if not directory and path.is_dir():
        raise UsageError(f"data.{key}={value} is a folder; data=csv reads one .csv/.parquet file")
    return path


def read_table(path: Path, source: str, sep: str | None = None, na_values: Any = None) -> pd.DataFrame:
    """Read a CSV/TSV or Parquet file (by suffix); rows are labelled 1, 2, ... for messages."""
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{source}: unsupported suffix {path.suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    if kind == "parquet":
        try:
            df = pd.read_parquet(path)
        except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError
            raise UsageError(f"{source}: cannot read as Parquet ({_first_line(exc)})") from exc
    else:
        sep = sep or ("\t" if path.suffix.lower() == ".tsv" else ",")
        df = _read_csv(path, source, sep, na_values)
    if len(df) == 0:
        raise UsageError(f"{source}: the table has no data rows")
    df.columns = [str(c) for c in df.columns]
    df.index = pd.RangeIndex(1, len(df) + 1)
    return df


def _read_csv(path: Path, source: str, sep: str, na_values: Any) -> pd.DataFrame:
    na = None if na_values is None else [str(v) for v in na_values]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # index_col=False: a first row with an extra field must not turn column 1 into an index.
            df = pd.read_csv(path, sep=sep, index_col=False, na_values=na)
    except pd.errors.EmptyDataError as exc:
        raise UsageError(f"{source}: the file is empty") from exc
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise UsageError(
                f"{source}: line {m[2]} has {m[3]} fields but the header has {m[1]}; fix or remove that row"
            ) from exc
        raise UsageError(f"{source}: cannot parse as CSV ({_first_line(exc)})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    # pandas pads short rows with NaN (and only warns about some long ones): when that could have
    # happened, count the fields of every record to name the row.
    if len(df) and (caught or df.iloc[:, -1].isna().any()):
        ragged = _ragged_line(path, sep)
        if ragged:
            line, fields, expected = ragged
            raise UsageError(
                f"{source}: line {line} has {fields} fields but the header has {expected}; fix or remove that row"
            )
    return df


def _ragged_line(path: Path, sep: str) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first record whose field count differs, else None."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=sep)
        header = next(reader, None)
        if header is None:
            return None
        for record in reader:
            if record and len(record) != len(header):  # pandas skips blank lines too
                return reader.line_num, len(record), len(header)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------- preprocessing
def _as_category(value: Any) -> str:
    """One string per category value, so 3, 3.0 and np.int64(3) are the same category."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _category_strings(s: pd.Series) -> list[str]:
    return [MISSING if pd.isna(v) else _as_category(v) for v in s.astype(object)]


def _sorted_values(values: Sequence[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types: order by their names
        return sorted(values, key=_as_category)


class TablePreprocessor:
    """Raw table rows -> raw float features, with encodings fitted on the training rows.

    The spec (`spec()`, plain data saved as ``preprocess`` in exports)::

        kind: table
        target: label                      # the class column (not needed by transform)
        classes: [a, b]                    # class index i is named classes[i]
        columns:                           # the feature columns, in input order
          - {name: age, type: numeric, fill: 41.5}          # fill: training-rows median
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
    ) -> None:
        self.columns = [dict(c) for c in columns]
        self.target = target
        self.classes = [str(c) for c in classes]
        self.dropped = [dict(d) for d in dropped]
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
                values = _sorted_values(list(s.dropna().unique()))
                cats = list(dict.fromkeys(_as_category(v) for v in values))
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
        return cls(columns, target, classes, dropped)

    # -- spec
    def spec(self) -> dict[str, Any]:
        return {
            "kind": "table",
            "target": self.target,
            "classes": list(self.classes),
            "columns": [dict(c) for c in self.columns],
            "feature_names": self.feature_names,
            "dropped": [dict(d) for d in self.dropped],
            "missing": self.MISSING_RULE,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> TablePreprocessor:
        if spec.get("kind") != "table":
            raise UsageError(f"preprocess kind {spec.get('kind')!r} is not 'table'")
        columns = [{k: (list(v) if k == "categories" else v) for k, v in dict(c).items()} for c in spec["columns"]]
        return cls(columns, spec.get("target"), spec.get("classes", ()), spec.get("dropped", ()))

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.columns:
            if col["type"] == "numeric":
                names.append(col["name"])
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
                blocks.append(arr[:, None])
            else:
                index = {c: i for i, c in enumerate(col["categories"])}
                codes = np.array([index.get(v, -1) for v in _category_strings(s)], dtype=np.int64)
                onehot = np.zeros((len(s), len(index)), dtype=np.float64)
                known = codes >= 0
                onehot[np.nonzero(known)[0], codes[known]] = 1.0
                blocks.append(onehot)
        return torch.from_numpy(np.concatenate(blocks, axis=1)).float()

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


# ---------------------------------------------------------------------------- table loaders
def load_table(cfg: Mapping) -> RawData:
    """``data=csv``: a CSV/TSV/Parquet file at ``data.path`` (and optionally ``data.test_path``)."""
    path = _input_path(cfg, "path")
    target = cfg.get("target")
    if not target:
        raise UsageError("data.target is not set: name the column that holds the class, e.g. data.target=label")
    sep, na = cfg.get("sep"), cfg.get("na_values")
    df = read_table(path, f"data.path={path}", sep, na)
    test_df, test_source = None, None
    if cfg.get("test_path"):
        test_path = _input_path(cfg, "test_path")
        test_source = f"data.test_path={test_path}"
        test_df = read_table(test_path, test_source, sep, na)
    return table_raw_data(df, cfg, str(target), f"data.path={path}", test_df, test_source)


def load_tabular_demo(cfg: Mapping) -> RawData:
    """``data=tabular_demo``: a scikit-learn table (``data.dataset``: breast_cancer, wine, iris),
    embedded and offline, loaded through exactly the same code as a user's CSV. It is all numeric
    (no synthetic columns are added); the tests exercise the categorical path on real CSVs."""
    import sklearn.datasets

    name = str(cfg.get("dataset", "breast_cancer"))
    if name not in DEMO_SETS:
        raise UsageError(f"data.dataset={name!r} is unknown; choose one of {sorted(DEMO_SETS)}")
    bunch = getattr(sklearn.datasets, DEMO_SETS[name])(as_frame=True)
    df = bunch.data.copy()
    df["class"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    df.index = pd.RangeIndex(1, len(df) + 1)
    return table_raw_data(df, {**dict(cfg), "features": None, "drop": None}, "class", f"data.dataset={name}")


def table_raw_data(
    df: pd.DataFrame,
    cfg: Mapping,
    target: str,
    source: str,
    test_df: pd.DataFrame | None = None,
    test_source: str | None = None,
) -> RawData:
    """The shared table path: choose features, classes, splits; fit on training rows; encode."""
    if target not in df.columns:
        hint = "; if the file is not comma-separated, set data.sep" if df.shape[1] == 1 else ""
        raise UsageError(f"{source}: target column {target!r} not found; columns: {list(df.columns)}{hint}")
    features = _select_features(df, cfg, target, source)
    categorical = [str(c) for c in (cfg.get("categorical") or [])]
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise UsageError(f"{source}: data.categorical names {unknown}, not feature columns {features}")

    s = df[target]
    if s.isna().any():
        raise UsageError(
            f"{source}: target column {target!r} is empty in row {s.isna().idxmax()}; fill or remove that row"
        )
    classes = list(dict.fromkeys(_as_category(v) for v in _sorted_values(list(s.unique()))))
    if len(classes) < 2:
        raise UsageError(
            f"{source}: target column {target!r} has one class ({classes[0]!r}); a classifier needs at least two"
        )
    labeller = TablePreprocessor([], target, classes)
    y_all = labeller.encode_target(df, source)

    if test_df is None:
        test_size = float(cfg.get("test_size", 0.2))
        keep, hold = _split(y_all, test_size, TEST_SEED, source, "data.test_size")
        train_df, y_train = df.iloc[keep.numpy()], y_all[keep]
        test_df, y_test, test_source = df.iloc[hold.numpy()], y_all[hold], f"{source} (test split)"
    else:
        train_df, y_train = df, y_all
        y_test = labeller.encode_target(test_df, test_source or "test")

    # Fit on exactly the rows load_data trains on: it makes this same split of these labels.
    fit_idx, _ = _split(
        y_train, float(cfg.get("val_size", 0.2)), int(cfg.get("split_seed", 0)), source, "data.val_size"
    )
    prep = TablePreprocessor.fit(
        train_df.iloc[fit_idx.numpy()],
        features,
        source,
        max_categories=int(cfg.get("max_categories", 50)),
        categorical=categorical,
        target=target,
        classes=classes,
    )
    train_x = prep.transform(train_df, source)
    test_x = prep.transform(test_df, test_source or "test")
    log.info(
        "%s: %d feature columns -> %d inputs (%s)",
        source,
        len(prep.columns),
        prep.in_features,
        ", ".join(prep.feature_names[:8]) + (", ..." if prep.in_features > 8 else ""),
    )
    report_classes(source, classes, y_train, y_test)
    return RawData(
        train_x, y_train, test_x, y_test, [prep.in_features], classes, preprocess=prep.spec(), normalize="feature"
    )


def _select_features(df: pd.DataFrame, cfg: Mapping, target: str, source: str) -> list[str]:
    drop = [str(c) for c in (cfg.get("drop") or [])]
    listed = cfg.get("features")
    features = [str(c) for c in listed] if listed else [c for c in df.columns if c != target]
    absent = [c for c in features + drop if c not in df.columns]
    if absent:
        raise UsageError(f"{source}: column(s) {absent} not found; columns: {list(df.columns)}")
    if target in features:
        raise UsageError(f"{source}: data.features lists the target column {target!r}; remove it")
    features = [c for c in features if c not in drop]
    if not features:
        raise UsageError(f"{source}: no feature columns left (data.features / data.drop)")
    return features


def _split(y: torch.Tensor, holdout: float, seed: int, source: str, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        return stratified_split(y, holdout, seed)
    except UsageError as exc:
        raise UsageError(f"{source}: {key}={holdout}: {exc}") from exc


def report_classes(
    source: str, classes: Sequence[str], train_y: torch.Tensor, test_y: torch.Tensor | None = None
) -> None:
    """Log class counts (train + validation rows, and test) and the largest/smallest ratio."""
    counts = torch.bincount(train_y, minlength=len(classes)).tolist()
    ratio = max(counts) / max(min(counts), 1)
    pairs = [f"{c}={n}" for c, n in zip(classes, counts, strict=True)]
    shown = ", ".join(pairs[:20]) + (", ..." if len(pairs) > 20 else "")
    test = ""
    if test_y is not None:
        test = f"; test: {len(test_y)} rows"
    log.info("%s: class counts (train+val) %s; largest/smallest %.2f%s", source, shown, ratio, test)
    if ratio >= 10:
        log.warning(
            "%s: classes are imbalanced (largest/smallest %.1f); accuracy can hide a poor minority class", source, ratio
        )


def raw_features(spec: Mapping[str, Any], inputs: Any) -> torch.Tensor:
    """Apply a saved ``preprocess`` spec: a DataFrame (tables) or images / image paths (image
    folders) -> raw float features ``(N, F)``; the model's normalisation comes after this.
    Built-in sets have an empty spec: their inputs are already raw features and pass through."""
    kind = spec.get("kind") if spec else None
    if kind == "table":
        return TablePreprocessor.from_spec(spec).transform(inputs)
    if kind == "image":
        from PIL import Image

        def one(item: Any) -> torch.Tensor:
            if isinstance(item, (str, os.PathLike)):
                with Image.open(item) as img:
                    return image_to_tensor(img, spec)
            return image_to_tensor(item, spec)

        return torch.stack([one(item) for item in inputs])
    if kind is None:
        return torch.as_tensor(inputs, dtype=torch.float32)
    raise UsageError(f"preprocess kind {kind!r} is unknown (expected 'table' or 'image')")


# ---------------------------------------------------------------------------- image folders
def image_to_tensor(image: Any, spec: Mapping[str, Any]) -> torch.Tensor:
    """A PIL image -> flattened float32 ``(C*H*W,)`` in [0, 1], as `load_image_folder` reads it."""
    from PIL import Image

    size = int(spec["image_size"])
    img = image.convert(spec["mode"]).resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # channel first
    return torch.from_numpy(arr.reshape(-1).astype(np.float32) / 255.0)


def _image_folder(path: Path, source: str) -> tuple[list[str], list[tuple[str, int]]]:
    """torchvision's ImageFolder discovery (class sub-folders, image suffixes), hidden folders
    such as .ipynb_checkpoints skipped."""
    from torchvision.datasets import ImageFolder

    class _Folder(ImageFolder):
        def find_classes(self, directory):  # noqa: ANN001 - torchvision's signature
            classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
            if not classes:
                raise FileNotFoundError("no class folders")
            return classes, {c: i for i, c in enumerate(classes)}

    try:
        folder = _Folder(str(path), loader=lambda p: p)
    except FileNotFoundError as exc:
        if "no class folders" in str(exc):
            raise UsageError(
                f"{source}: no class sub-folders; put each class's images in {path}/<class name>/"
            ) from exc
        raise UsageError(f"{source}: {_first_line(exc)}") from exc
    return list(folder.classes), list(folder.samples)


def _read_images(samples: list[tuple[str, int]], spec: Mapping[str, Any]) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    def one(file: str) -> torch.Tensor:
        try:
            with Image.open(file) as img:
                return image_to_tensor(img, spec)
        except (UnidentifiedImageError, OSError) as exc:
            raise UsageError(f"image {file}: cannot be read ({_first_line(exc)}); fix or remove it") from exc

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return torch.stack(list(pool.map(one, [f for f, _ in samples])))


def load_image_folder(cfg: Mapping) -> RawData:
    """``data=image_folder``: ``data.path/<class>/<image>`` (optionally ``data.test_path``)."""
    path = _input_path(cfg, "path", directory=True)
    size = cfg.get("image_size", 28)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise UsageError(f"data.image_size={size!r} must be a positive integer (pixels per side)")
    mode = "L" if cfg.get("grayscale", True) else "RGB"
    spec = {
        "kind": "image",
        "image_size": size,
        "mode": mode,
        "resize": "bilinear",
        "scale": "pixel / 255",
        "layout": "channel-first, flattened",
    }
    source = f"data.path={path}"
    t0 = time.perf_counter()
    classes, samples = _image_folder(path, source)
    if len(classes) < 2:
        raise UsageError(f"{source}: one class folder ({classes[0]!r}); a classifier needs two")
    train_x = _read_images(samples, spec)
    train_y = torch.tensor([label for _, label in samples], dtype=torch.int64)
    if cfg.get("test_path"):
        test_path = _input_path(cfg, "test_path", directory=True)
        test_classes, test_samples = _image_folder(test_path, f"data.test_path={test_path}")
        unknown = [c for c in test_classes if c not in classes]
        if unknown:
            raise UsageError(
                f"data.test_path={test_path}: class folder(s) {unknown} are not in data.path ({', '.join(classes)})"
            )
        remap = [classes.index(c) for c in test_classes]
        test_x = _read_images(test_samples, spec)
        test_y = torch.tensor([remap[label] for _, label in test_samples], dtype=torch.int64)
    else:  # carve a fixed test split, as for tables, so final reports have one
        keep, hold = _split(train_y, float(cfg.get("test_size", 0.2)), TEST_SEED, source, "data.test_size")
        test_x, test_y = train_x[hold], train_y[hold]
        train_x, train_y = train_x[keep], train_y[keep]
    channels = 1 if spec["mode"] == "L" else 3
    log.info(
        "%s: read %d images (%dx%d %s) in %.1f s",
        source,
        len(train_y) + len(test_y),
        size,
        size,
        spec["mode"],
        time.perf_counter() - t0,
    )
    report_classes(source, classes, train_y, test_y)
    return RawData(
        train_x, train_y, test_x, test_y, [channels, size, size], classes, preprocess=spec, normalize="channel"
    )
