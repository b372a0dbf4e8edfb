"""Bring your own table (CSV, Parquet, ARFF), or the embedded tabular demo set.

    supernet data=csv data.path=measurements.csv data.target=label
    supernet data=csv data.path=train.parquet data.target=y data.test_path=test.parquet
    supernet data=csv data.path=houses.csv data.target=[price,rent]   # multi-output regression
    supernet data=tabular_demo                       # scikit-learn's breast cancer set, offline

Each loader returns a `supernet.data.datasets.RawData` of *raw* features; `supernet.data.datasets.load_data`
then carves the validation split and standardises every feature with training-split statistics.
Image folders live in `supernet.data.image_folder`; the built-in tables (friedman, diabetes,
linnerud, imbalanced, cpu...) in `supernet.data.builtin`.

Tables (``data=csv``; the reader is picked by suffix: .csv/.tsv -> pandas, .parquet/.pq -> pyarrow,
.arff -> scipy, whose nominal attributes are categorical columns)
  * task: ``data.task=auto`` (the default) decides from the target column
    (`supernet.data.table_targets`): a non-numeric target, or an integer-valued one with at most
    20 distinct values, is a classification; any other numeric target is a regression; a list
    ``data.target=[y1, y2]`` is a multi-output regression. ``data.task=classification`` or
    ``regression`` overrides it (a classification of a column of many distinct non-integer
    numbers is refused). The choice is logged.
  * target: ``data.target``. Classification: classes are its sorted distinct values, named as
    strings. Regression: float targets in their own units (load_data standardises them with
    training-split statistics); a missing, infinite or non-numeric target value is an error
    naming the column and the row, in the training rows as in the test table.
  * features: ``data.features`` (null: every other column) minus ``data.drop``; a column name
    the header repeats is an error (pandas would silently rename the repeat ``a.1``).
  * encoding: numbers raw (missing: the training median), categories one-hot
    (`supernet.data.table_encoder`, which says why), constant columns left out; categories of
    the test rows the training rows never had are logged per column, and so is a class too small
    to appear in the test or validation split.
  * leak-free: the encoding is fitted on exactly the rows load_data will train on. The loader
    first carves the test split (unless ``data.test_path`` is given: same columns), then makes the
    same seeded validation split load_data makes (`holdout_indices` over the same targets with
    ``data.val_size`` and ``data.split_seed``) and fits on the remaining rows only; validation and
    test rows are only transformed.

The fitted encoding is saved as ``RawData.preprocess`` (plain JSON/YAML data, exported with the
model). With no ``data.test_path`` a ``data.test_size`` share is held out as the test split (fixed
seed): stratified for a classification, a seeded shuffle for a regression; class counts and the
largest/smallest ratio (regression: each target's mean, std and range) are logged at load time.
`raw_features(spec, inputs)` turns raw inputs (DataFrame rows, images) into model inputs for any
saved spec, before the model's own normalisation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from supernet.core.task import CLASSIFICATION, REGRESSION
from supernet.data.datasets import RawData, warn_absent_classes
from supernet.data.splits import TEST_SEED, holdout_split, input_path, report_classes, test_seed  # noqa: F401 (TEST_SEED: importable from here)
from supernet.data.table_encoder import MISSING, TablePreprocessor, as_category, sorted_values
from supernet.data.table_files import TABLE_SUFFIXES, read_table  # noqa: F401 (TABLE_SUFFIXES: importable from here)
from supernet.data.table_recipe import Auto, decide, report
from supernet.data.table_targets import check_target_columns, choose_task, regression_targets, report_targets
from supernet.errors import UsageError

__all__ = [  # MISSING, TablePreprocessor: supernet.data.table_encoder; read_table: supernet.data.table_files
    "MISSING",
    "TablePreprocessor",
    "holdout_split",
    "input_path",
    "load_table",
    "load_tabular_demo",
    "raw_features",
    "read_table",
    "report_classes",
    "table_raw_data",
]

log = logging.getLogger(__name__)

DEMO_SETS = {"breast_cancer": "load_breast_cancer", "wine": "load_wine", "iris": "load_iris"}


# ---------------------------------------------------------------------------- table loaders
def load_table(cfg: Mapping) -> RawData:
    """``data=csv``: a CSV/TSV/Parquet file at ``data.path`` (and optionally ``data.test_path``)."""
    path = input_path(cfg, "path")
    target = cfg.get("target")
    if not target:
        raise UsageError("data.target is not set: name the column that holds the class, e.g. data.target=label")
    sep, na = cfg.get("sep"), cfg.get("na_values")
    df = read_table(path, f"data.path={path}", sep, na)
    test_df, test_source = None, None
    if cfg.get("test_path"):
        test_path = input_path(cfg, "test_path")
        test_source = f"data.test_path={test_path}"
        test_df = read_table(test_path, test_source, sep, na)
    target = str(target) if isinstance(target, (str, int, float)) else target  # a list: regression targets
    return table_raw_data(df, cfg, target, f"data.path={path}", test_df, test_source)


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
    fixed = {**dict(cfg), "features": None, "drop": None, "task": "auto"}  # load_data checks data.task
    return table_raw_data(df, fixed, "class", f"data.dataset={name}")


def table_raw_data(
    df: pd.DataFrame,
    cfg: Mapping,
    target: str | Sequence[str],
    source: str,
    test_df: pd.DataFrame | None = None,
    test_source: str | None = None,
) -> RawData:
    """The shared table path: choose the task, features, splits; fit on training rows; encode.

    `target` is one column (a classification or a regression, see `supernet.data.table_targets`)
    or a list of columns (a multi-output regression)."""
    targets = check_target_columns(df, target, source)
    features = _select_features(df, cfg, targets, source)
    categorical = [str(c) for c in (cfg.get("categorical") or [])]
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise UsageError(f"{source}: data.categorical names {unknown}, not feature columns {features}")
    columns = TableColumns(features, categorical, targets)
    raw_data = {CLASSIFICATION: _classification_raw_data, REGRESSION: _regression_raw_data}
    task, auto = choose_task(df, target, cfg, source)
    raw = raw_data[task](df, cfg, columns, source, test_df, test_source)
    raw.autos = (auto, *raw.autos) if auto is not None else raw.autos  # what each auto became, in order
    return raw


@dataclass
class TableColumns:
    """What a table's columns are for: the features (some forced categorical), the target(s) and,
    for a classification, its classes (empty for a regression)."""

    features: list[str]
    categorical: list[str]
    targets: list[str]
    classes: list[str] = field(default_factory=list)


def _classification_raw_data(
    df: pd.DataFrame,
    cfg: Mapping,
    columns: TableColumns,
    source: str,
    test_df: pd.DataFrame | None,
    test_source: str | None,
) -> RawData:
    """Classes are the target's sorted distinct values; test and validation splits stratified."""
    target = columns.targets[0]
    classes = columns.classes = _classes(df[target], target, source)
    labeller = TablePreprocessor([], target, classes)
    y_all = labeller.encode_target(df, source)
    carved = test_df is None
    if carved:
        test_size = float(cfg.get("test_size", 0.2))
        keep, hold = holdout_split(y_all, test_size, test_seed(cfg), source, "data.test_size")
        train_df, y_train = df.iloc[keep.numpy()], y_all[keep]
        test_df, y_test, test_source = df.iloc[hold.numpy()], y_all[hold], f"{source} (test split)"
    else:
        train_df, y_train = df, y_all
        y_test = labeller.encode_target(test_df, test_source or "test")
    hint = "raise data.test_size or add rows of it" if carved else "add rows of it to data.test_path"
    warn_absent_classes(classes, y_all, y_test, source, "test", hint)
    prep, (train_x, test_x), autos = _encode(cfg, columns, train_df, y_train, test_df, source, test_source or "test")
    report_classes(source, classes, y_train, y_test)
    return RawData(
        train_x,
        y_train,
        test_x,
        y_test,
        [prep.in_features],
        classes,
        preprocess=prep.spec(),
        normalize="feature",
        autos=autos,
    )


def _regression_raw_data(
    df: pd.DataFrame,
    cfg: Mapping,
    columns: TableColumns,
    source: str,
    test_df: pd.DataFrame | None,
    test_source: str | None,
) -> RawData:
    """Float targets ``(rows, targets)`` in their own units; test and validation splits shuffled."""
    y_all = regression_targets(df, columns.targets, source)
    _check_targets_vary(y_all, columns.targets, source)
    if test_df is None:
        keep, hold = holdout_split(y_all, float(cfg.get("test_size", 0.2)), test_seed(cfg), source, "data.test_size")
        train_df, y_train = df.iloc[keep.numpy()], y_all[keep]
        test_df, y_test, test_source = df.iloc[hold.numpy()], y_all[hold], f"{source} (test split)"
    else:
        train_df, y_train = df, y_all
        y_test = regression_targets(test_df, columns.targets, test_source or "test")
    prep, (train_x, test_x), autos = _encode(cfg, columns, train_df, y_train, test_df, source, test_source or "test")
    report_targets(source, columns.targets, y_train, y_test)
    return RawData(
        train_x,
        y_train,
        test_x,
        y_test,
        [prep.in_features],
        [],
        preprocess=prep.spec(),
        normalize="feature",
        targets=list(columns.targets),
        autos=autos,
    )


def _encode(
    cfg: Mapping,
    columns: TableColumns,
    train_df: pd.DataFrame,
    y_train: torch.Tensor,
    test_df: pd.DataFrame,
    source: str,
    test_source: str,
) -> tuple[TablePreprocessor, list[torch.Tensor], tuple[Auto, ...]]:
    """Fit the encoding on exactly the rows load_data trains on (it makes this same split of these
    targets), then encode the training and test rows."""
    fit_idx, _ = holdout_split(
        y_train, float(cfg.get("val_size", 0.2)), int(cfg.get("split_seed", 0)), source, "data.val_size"
    )
    frames = [(train_df, source), (test_df, test_source)]
    return encode_features(train_df.iloc[fit_idx.numpy()], frames, cfg, columns, source)


def encode_features(
    fit_df: pd.DataFrame,
    frames: Sequence[tuple[pd.DataFrame, str]],
    cfg: Mapping,
    columns: TableColumns,
    source: str,
) -> tuple[TablePreprocessor, list[torch.Tensor], tuple[Auto, ...]]:
    """Fit the encoding on `fit_df` (exactly the rows the net will train on), then encode each
    ``(frame, source)``: raw float features, one tensor per frame. The categories of the frames
    after the first that `fit_df` never had are logged per column. `columns.classes` is empty
    for a regression. Also what ``data.scaler`` and ``data.periodic`` became where they were
    ``auto`` (`supernet.data.table_recipe.decide`, on `fit_df`'s rows). The table loaders and the
    scikit-learn estimators (`supernet.sklearn`) share it."""
    regression = not columns.classes
    rows, classes = len(fit_df), None if regression else len(columns.classes)
    scaler, scaler_auto = decide("data.scaler", str(cfg.get("scaler") or "standard"), rows, regression, classes)
    k, periodic_auto = decide("data.periodic", cfg.get("periodic"), rows, regression, classes)
    autos = tuple(a for a in (scaler_auto, periodic_auto) if a is not None)
    for auto in autos:
        report(log, source, auto)
    periodic = None if k is None else (int(k), float(cfg["periodic_sigma"]))
    prep = TablePreprocessor.fit(
        fit_df,
        columns.features,
        source,
        max_categories=int(cfg.get("max_categories", 50)),
        categorical=columns.categorical,
        target=None if regression else columns.targets[0],
        classes=columns.classes,
        targets=columns.targets if regression else (),
    ).fit_scales(fit_df, scaler, cfg.get("clip"), periodic)
    encoded = [prep.transform(df, where) for df, where in frames]
    for df, where in frames[1:]:
        report_unseen(prep, df, where)
    log.info(
        "%s: %d feature columns -> %d inputs (%s)",
        source,
        len(prep.columns),
        prep.in_features,
        ", ".join(prep.feature_names[:8]) + (", ..." if prep.in_features > 8 else ""),
    )
    return prep, encoded, autos


def report_unseen(prep: TablePreprocessor, df: pd.DataFrame, source: str) -> None:
    """Warn, per categorical column, about the categories of `df` the training rows never had."""
    for name, counts in prep.unseen_categories(df).items():
        shown = ", ".join(f"{v}={n}" for v, n in list(counts.items())[:10]) + (", ..." if len(counts) > 10 else "")
        log.warning(
            "%s: column %r has %d row(s) with categories the training rows never had (%s); they encode as all zeros",
            source,
            name,
            sum(counts.values()),
            shown,
        )


def _classes(s: pd.Series, target: str, source: str) -> list[str]:
    """The target column's sorted distinct values, as strings; at least two, none missing."""
    if s.isna().any():
        raise UsageError(
            f"{source}: target column {target!r} is empty in row {s.isna().idxmax()}; fill or remove that row"
        )
    classes = list(dict.fromkeys(as_category(v) for v in sorted_values(list(s.unique()))))
    if len(classes) < 2:
        raise UsageError(
            f"{source}: target column {target!r} has one class ({classes[0]!r}); a classifier needs at least two"
        )
    return classes


def _check_targets_vary(y: torch.Tensor, targets: Sequence[str], source: str) -> None:
    """The regression twin of `_classes`' one-class check: a target that is the same number in
    every row leaves nothing to learn, and the search would rank noise."""
    for name, column in zip(targets, y.T, strict=True):
        if len(column) and bool((column == column[0]).all()):
            raise UsageError(
                f"{source}: target column {name!r} is {float(column[0]):g} in every row; a regression target must vary"
            )


def _select_features(df: pd.DataFrame, cfg: Mapping, targets: Sequence[str], source: str) -> list[str]:
    drop = [str(c) for c in (cfg.get("drop") or [])]
    listed = cfg.get("features")
    features = [str(c) for c in listed] if listed else [c for c in df.columns if c not in targets]
    absent = [c for c in features + drop if c not in df.columns]
    if absent:
        raise UsageError(f"{source}: column(s) {absent} not found; columns: {list(df.columns)}")
    listed_target = next((c for c in targets if c in features), None)
    if listed_target is not None:
        raise UsageError(f"{source}: data.features lists the target column {listed_target!r}; remove it")
    features = [c for c in features if c not in drop]
    if not features:
        raise UsageError(f"{source}: no feature columns left (data.features / data.drop)")
    return features


def array_frame(x: Any) -> pd.DataFrame:
    """A numeric array ``(N, F)`` as a table of columns ``x0 .. x<F-1>`` (the scikit-learn
    estimators' arrays go through the table encoder, their export's spec has ``array_width: F``)."""
    x = np.asarray(x)
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])


def raw_features(spec: Mapping[str, Any], inputs: Any) -> torch.Tensor:
    """Apply a saved ``preprocess`` spec: a DataFrame (tables) or images / image paths (image
    folders) -> raw float features ``(N, F)``; the model's normalisation comes after this.
    Built-in sets have an empty spec: their inputs are already raw features and pass through."""
    kind = spec.get("kind") if spec else None
    if kind == "table":
        prep = TablePreprocessor.from_spec(spec)
        if spec.get("array_width") and not isinstance(inputs, pd.DataFrame):
            inputs = array_frame(inputs)
        report_unseen(prep, inputs, "predict")  # as data.test_path warns: they encode as all zeros
        return prep.transform(inputs, "predict")
    if kind == "image":
        from PIL import Image

        from supernet.data.image_folder import image_to_tensor

        def one(item: Any) -> torch.Tensor:
            if isinstance(item, (str, os.PathLike)):
                with Image.open(item) as img:
                    return image_to_tensor(img, spec)
            return image_to_tensor(item, spec)

        return torch.stack([one(item) for item in inputs])
    if kind is None:
        return torch.as_tensor(inputs, dtype=torch.float32)
    raise UsageError(f"preprocess kind {kind!r} is unknown (expected 'table' or 'image')")
