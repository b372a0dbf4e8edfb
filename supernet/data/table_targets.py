"""A table's target: which task it is (``data.task``), and regression targets as numbers.

The ``auto`` rule (``data.task=auto``, the default), for ``data.target=<column>``:

  * a non-numeric target (text, bool, category) is a **classification**;
  * a numeric target whose values are all integers, with at most `AUTO_MAX_CLASSES` (20)
    distinct values, is a **classification** (labels such as 0/1 or 1..5);
  * any other numeric target (a non-integer value, or more than 20 distinct integers) is a
    **regression**.

A list ``data.target=[y1, y2]`` is always a (multi-output) regression. Numbers stored as text
(a Parquet string column) count as numbers. ``data.task=classification`` or ``regression``
overrides the rule, except that a classification of a numeric target that is not integer-valued
with more than `AUTO_MAX_CLASSES` distinct values and either more than `FLOAT_CLASS_LIMIT` (100)
of them or more distinct values than half its rows is refused: that is a measurement, not a set
of classes. What ``auto`` became is an `supernet.data.table_recipe.Auto`, logged in one line
(or in the pipeline's line of every ``auto``).

Regression targets must be finite numbers in every row, training and test: a missing value, an
inf or a non-number is a one-line error naming the column and the first bad row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from supernet.core.task import CLASSIFICATION, REGRESSION
from supernet.data.table_recipe import Auto, decide, report
from supernet.errors import UsageError

log = logging.getLogger(__name__)

AUTO_MAX_CLASSES = 20  # auto: an integer-valued numeric target with at most this many values is a classification
FLOAT_CLASS_LIMIT = 100  # data.task=classification refuses a non-integer target with more distinct values
TASKS = ("auto", CLASSIFICATION, REGRESSION)


def target_names(target: Any) -> list[str]:
    """``data.target`` as a list of column names (one for a string, the items of a list)."""
    if isinstance(target, str) or not isinstance(target, Sequence):
        return [str(target)]
    names = [str(t) for t in target]
    if not names:
        raise UsageError("data.target=[] names no column: name the target column(s), e.g. data.target=label")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"data.target={names} names {repeated[0]!r} more than once; list each target column once")
    return names


def is_list(target: Any) -> bool:
    return not isinstance(target, str) and isinstance(target, Sequence)


def check_target_columns(df: pd.DataFrame, target: Any, source: str) -> list[str]:
    """The target column(s) of `df`, or a one-line error naming the key and the missing column."""
    names = target_names(target)
    if not is_list(target):
        if names[0] not in df.columns:
            hint = "; if the file is not comma-separated, set data.sep" if df.shape[1] == 1 else ""
            raise UsageError(f"{source}: target column {names[0]!r} not found; columns: {list(df.columns)}{hint}")
        return names
    for name in names:
        if name not in df.columns:
            raise UsageError(
                f"{source}: data.target={names} names column {name!r}, which the table does not have; "
                f"columns: {list(df.columns)}"
            )
    return names


def numeric_values(s: pd.Series) -> pd.Series | None:
    """`s` as float64 when it is numeric (numbers, or text that is all numbers), else None."""
    if pd.api.types.is_bool_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
        return None
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype):
        return s.astype(np.float64)
    if not (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)):
        return None
    present = s.dropna()
    if len(present) == 0 or present.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return None
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any():
        return None
    return pd.to_numeric(s, errors="coerce").astype(np.float64)


def _integer_valued(values: pd.Series) -> bool:
    v = values.dropna().to_numpy()
    return bool(np.isfinite(v).all() and (v == np.round(v)).all())


def choose_task(df: pd.DataFrame, target: Any, cfg: Mapping, source: str) -> tuple[str, Auto | None]:
    """classification | regression for `target` of `df` under ``data.task`` (module docstring),
    and what ``auto`` became and why (`supernet.data.table_recipe.decide`; None: as set)."""
    wanted = str(cfg.get("task") or "auto")
    if wanted not in TASKS:
        raise UsageError(f"data.task={wanted!r} must be auto, classification or regression")
    names = target_names(target)
    if wanted == CLASSIFICATION:
        _check_classifiable(df, target, names, source)
    if is_list(target):
        if wanted != "auto":
            log.info("%s: data.task=%s -> regression (as set)", source, wanted)
        reason = f"data.target lists {len(names)} column(s) {names}"
        task, auto = decide("data.task", wanted, rule=lambda: (REGRESSION, reason))
    elif wanted != "auto":
        log.info("%s: data.task=%s (as set) for target %r", source, wanted, names[0])
        task, auto = wanted, None
    else:
        values = numeric_values(df[names[0]])

        def rule() -> tuple[str, str]:
            task, why = _auto(values)
            return task, f"target {names[0]!r} {why}"

        task, auto = decide("data.task", wanted, rule=rule)
    report(log, source, auto)
    return task, auto


def _check_classifiable(df: pd.DataFrame, target: Any, names: Sequence[str], source: str) -> None:
    """``data.task=classification``: one class column (a list means a regression), whose values
    are classes rather than a measurement."""
    if is_list(target):
        raise UsageError(
            f"{source}: data.task=classification takes one class column, but data.target={names} is a list, "
            f"which means (multi-output) regression; {_classify_one(df, names)}"
        )
    _check_classes_are_discrete(numeric_values(df[names[0]]), names[0], source)


def _classify_one(df: pd.DataFrame, names: Sequence[str]) -> str:
    """Advice for a list target asked to classify: one of its columns that the auto rule makes
    classes of (text, or a few integers), or regression when none is."""
    present = [n for n in names if n in df.columns]
    classes = [n for n in present if _auto(numeric_values(df[n]))[0] == CLASSIFICATION]
    if classes:
        return f"pass data.target={classes[0]} to classify by that column"
    return "none of its columns holds classes (text, or a few integers): use data.task=regression"


def _auto(values: pd.Series | None) -> tuple[str, str]:
    if values is None:
        return CLASSIFICATION, "is not numeric"
    distinct = int(values.dropna().nunique())
    if _integer_valued(values) and distinct <= AUTO_MAX_CLASSES:
        return CLASSIFICATION, f"holds {distinct} distinct integers (at most {AUTO_MAX_CLASSES} make classes)"
    kind = "integers" if _integer_valued(values) else "numbers, not all integers"
    return REGRESSION, f"holds {distinct} distinct {kind} (classes: text, or at most {AUTO_MAX_CLASSES} integers)"


def _check_classes_are_discrete(values: pd.Series | None, name: str, source: str) -> None:
    if values is None or _integer_valued(values):
        return
    present = values.dropna()
    distinct = int(present.nunique())
    if distinct > AUTO_MAX_CLASSES and (distinct > FLOAT_CLASS_LIMIT or distinct > len(present) / 2):
        raise UsageError(
            f"{source}: data.task=classification but target column {name!r} holds {distinct} distinct "
            f"non-integer numbers in {len(present)} rows, a measurement rather than classes; use data.task=regression"
        )


def regression_targets(df: pd.DataFrame, names: Sequence[str], source: str) -> torch.Tensor:
    """The target columns of `df` as float32 ``(rows, len(names))``; a one-line error naming the
    column and the first row that is missing, not a number, or infinite."""
    for name in names:
        if name not in df.columns:
            raise UsageError(f"{source}: target column {name!r} not found; columns: {list(df.columns)}")
    blocks = []
    for name in names:
        s = df[name]
        values = numeric_values(s)
        if values is None:
            row = _first_non_number(s)
            if row is not None:
                raise UsageError(
                    f"{source}: target column {name!r} holds {s[row]!r} in row {row}, not a number; "
                    f"a regression target must be numeric (or classify by it: data.target={name} "
                    "data.task=classification)"
                )
            values = pd.to_numeric(s.astype(object), errors="coerce")
        blocks.append(values.to_numpy(dtype=np.float64))
    y = np.stack(blocks, axis=1)
    bad_rows = ~np.isfinite(y.astype(np.float32))  # float32: what the net learns from
    if bad_rows.any():
        i = int(np.argmax(bad_rows.any(axis=1)))
        j = int(np.argmax(bad_rows[i]))
        what = "missing (empty or NaN)" if np.isnan(y[i, j]) else f"{y[i, j]}"
        raise UsageError(
            f"{source}: target column {names[j]!r} is {what} in row {df.index[i]}; "
            "a regression target must be a finite number: fill or remove that row"
        )
    return torch.from_numpy(y).float()


def _first_non_number(s: pd.Series) -> Any:
    """The label of the first row of `s` holding something other than a number, else None."""
    for row, value in s.items():
        if pd.isna(value):
            continue
        if isinstance(value, (bool, np.bool_)):
            return row
        try:
            float(value)
        except (TypeError, ValueError):
            return row
    return None


def report_targets(source: str, names: Sequence[str], train_y: torch.Tensor, test_y: torch.Tensor | None) -> None:
    """Log each regression target's mean, std and range over the train + validation rows."""
    y = train_y.double()
    parts = [
        f"{n}: mean {m:.4g}, std {s:.4g}, range [{lo:.4g}, {hi:.4g}]"
        for n, m, s, lo, hi in zip(
            names,
            y.mean(0).tolist(),
            (y.std(0) if len(y) > 1 else torch.zeros(y.shape[1])).tolist(),
            y.min(0).values.tolist(),
            y.max(0).values.tolist(),
            strict=True,
        )
    ]
    test = "" if test_y is None else f"; test: {len(test_y)} rows"
    log.info("%s: regression targets (train+val, %d rows) %s%s", source, len(y), "; ".join(parts), test)
