"""fit's and predict's inputs, checked by scikit-learn's rules, as the pipeline's data.

Two kinds of X:

  * a **pandas DataFrame** is a table: it goes through the table encoder of ``data=csv``
    (`supernet.data.tables.encode_features`, `supernet.data.table_encoder.TablePreprocessor`):
    numeric columns raw, text/bool/category columns one-hot with the categories of the training
    rows, constant columns left out, a **missing number imputed** with the training rows' median
    and a missing category a ``__missing__`` category (as ``data=csv`` does); an infinite number is
    a ValueError naming the column and the row. The encoding is fitted on the rows the net trains
    on (not the validation split) and saved with the model (``preprocess`` in ``arch.yaml``).
  * anything else (a NumPy array, a list, a sparse matrix is refused) is numeric features: NaN
    or inf is a ValueError (scikit-learn's ``validate_data``), as is a value beyond float32.

Targets: a classifier's labels are ``classes_ = np.unique(y)`` (at least two); the net learns their
indices. A regressor's targets (one column, or several: a multi-output regression) are float32 in
their own units (load_data standardises them with the training split's statistics); a target that
is one number in every row is a ValueError, as one class is a classifier's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    assert_all_finite,
    check_array,
    check_consistent_length,
    column_or_1d,
    validate_data,
)

FLOATS = (np.float64, np.float32)


@dataclass
class FitData:
    """fit's inputs, checked: X (an array, or a DataFrame with string column names), the targets
    (class indices or float targets ``(n, T)``) and the eval_set's, and how to read them back."""

    x: Any
    y: np.ndarray
    columns: list[str] | None  # a DataFrame's column names; None: numeric features
    classes: np.ndarray | None = None  # a classifier's labels
    targets: list[str] | None = None  # a regressor's target names
    y_2d: bool = False  # a regressor given 2-D targets predicts 2-D
    val: tuple[Any, np.ndarray] | None = None
    weight: np.ndarray | None = None  # sample_weight of the rows kept; None: all rows weigh the same


def is_frame(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "pandas" and hasattr(x, "columns") and hasattr(x, "iloc")


def _frame_columns(x: Any) -> list[str]:
    columns = [str(c) for c in x.columns]
    if len(set(columns)) != len(columns):
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        raise ValueError(f"X has repeated column names {repeated}; rename them")
    return columns


def _as_frame(x: Any, columns: list[str]) -> Any:
    """A DataFrame with string column names (the table encoder's), sharing `x`'s data."""
    import pandas as pd

    if not is_frame(x):
        return pd.DataFrame(x, columns=columns)
    if list(x.columns) == columns:
        return x
    out = x.copy(deep=False)
    out.columns = columns
    return out


def _check_float32(x: np.ndarray, what: str = "X") -> None:
    with np.errstate(over="ignore"):
        if not np.isfinite(x.astype(np.float32)).all():
            raise ValueError(f"{what} holds values beyond float32's range (about 3.4e38), which the net computes in")


# ---------------------------------------------------------------------------- fit
def fit_inputs(est: Any, x: Any, y: Any, eval_set: Any, regression: bool, sample_weight: Any = None) -> FitData:
    """Check fit's X and y by scikit-learn's rules (setting ``n_features_in_`` and
    ``feature_names_in_``), the optional ``eval_set=(X_val, y_val)`` and ``sample_weight``."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
    if is_frame(x):
        validate_data(est, x, skip_check_array=True, reset=True)
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"Found array with {x.shape[0]} sample(s) and {x.shape[1]} feature(s) (shape={x.shape})")
        y = _targets(y, regression)
        check_consistent_length(x, y)
        columns = _frame_columns(x)
        data = FitData(_as_frame(x, columns), y, columns)
    else:
        x, y = validate_data(est, x, y, reset=True, dtype=FLOATS, multi_output=regression, y_numeric=regression)
        _check_float32(x)
        data = FitData(x, y, None)
    if sample_weight is not None:
        _weigh(data, sample_weight)
        y = data.y
    if regression:
        _regression_targets(data, y)
    else:
        data.classes, data.y = _labels(y)
    if eval_set is not None:
        data.val = _eval_set(est, data, eval_set, regression)
    return data


def _weigh(data: FitData, sample_weight: Any) -> None:
    """``sample_weight``: one non-negative finite number per row, not all zero (scikit-learn's
    checks and messages). Rows of weight 0 are dropped; the other weights stay in ``data.weight``
    (None when they are all equal: the fit is then the unweighted one)."""
    from sklearn.utils.validation import _check_sample_weight

    weight = _check_sample_weight(sample_weight, data.x, dtype=np.float64, ensure_non_negative=True)
    if not weight.sum() > 0:
        raise ValueError("sample_weight is all zero; at least one row needs a positive weight")
    keep = np.flatnonzero(weight > 0)
    if len(keep) < len(weight):
        data.x = data.x.iloc[keep] if is_frame(data.x) else data.x[keep]
        data.y = data.y[keep]
    kept = weight[keep]
    data.weight = None if np.all(kept == kept[0]) else kept


def _targets(y: Any, regression: bool) -> np.ndarray:
    """y of a DataFrame X, checked as `validate_data` checks an array X's."""
    if regression:
        return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    y = column_or_1d(y, warn=True)
    assert_all_finite(y, input_name="y")
    return y


def _labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes_, class index of each row); a ValueError for continuous targets or one class."""
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y has 1 class ({classes[0]!r}); a classifier needs at least 2 classes")
    return classes, codes.astype(np.int64).ravel()


def _regression_targets(data: FitData, y: np.ndarray) -> None:
    """Float32 targets ``(n, T)`` and their names (a Series' or DataFrame's, else y, y0, y1...)."""
    data.y_2d = y.ndim == 2
    y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    _check_float32(y2, "y")
    data.y = y2.astype(np.float32)
    names = [str(c) for c in getattr(y, "columns", [getattr(y, "name", None)]) if c is not None]
    default = ["y"] if y2.shape[1] == 1 else [f"y{i}" for i in range(y2.shape[1])]
    data.targets = names if len(names) == y2.shape[1] and len(set(names)) == len(names) else default
    _check_targets_vary(data.y, data.targets)


def _check_targets_vary(y: np.ndarray, names: list[str]) -> None:
    """The regressor's twin of `_labels`' one-class check: a constant target leaves nothing to learn."""
    for j, name in enumerate(names):
        if len(y) > 1 and np.all(y[:, j] == y[0, j]):  # one row: the sample-count check names it
            which = "y" if len(names) == 1 else f"y's target {name!r}"
            raise ValueError(f"{which} is {float(y[0, j]):g} in every row; a regressor needs a target that varies")


def _eval_set(est: Any, data: FitData, eval_set: Any, regression: bool) -> tuple[Any, np.ndarray]:
    """``eval_set=(X_val, y_val)``: X_val read like predict's X, y_val in fit's classes/targets."""
    if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
        raise ValueError("eval_set must be a pair (X_val, y_val)")
    x_val = predict_features(est, eval_set[0], data.columns)
    y_val = _targets(eval_set[1], regression)
    check_consistent_length(x_val, y_val)
    if regression:
        y_val = y_val.reshape(len(y_val), -1)
        if y_val.shape[1] != data.y.shape[1]:
            raise ValueError(f"eval_set's y has {y_val.shape[1]} target(s), fit's y has {data.y.shape[1]}")
        _check_float32(y_val, "eval_set's y")
        return x_val, y_val.astype(np.float32)
    unseen = sorted(set(np.unique(y_val).tolist()) - set(data.classes.tolist()), key=str)
    if unseen:
        raise ValueError(f"eval_set's y has label(s) {unseen[:10]} that fit's y does not have ({list(data.classes)})")
    return x_val, np.searchsorted(data.classes, y_val).astype(np.int64)


# ---------------------------------------------------------------------------- predict
def predict_features(est: Any, x: Any, columns: list[str] | None) -> Any:
    """predict's X by scikit-learn's rules (feature count and names as in fit): a float32 array,
    or, for an estimator fitted on a DataFrame, a DataFrame with fit's column names (an array
    is read as that frame's rows: its NaN imputed as a DataFrame's are). A dict, a Series or a
    DataFrame without rows is a ValueError saying what to pass."""
    kind = type(x).__name__
    if isinstance(x, dict) or kind == "Series":
        raise ValueError(
            f"X is a {kind}; pass a DataFrame (pandas.DataFrame(X); one row: series.to_frame().T) or an array"
        )
    if is_frame(x) and x.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={x.shape}) while a minimum of 1 is required")
    if columns is None:
        x = validate_data(est, x, reset=False, dtype=FLOATS)
        _check_float32(x)
        return x.astype(np.float32)
    if is_frame(x):
        validate_data(est, x, skip_check_array=True, reset=False)
        return _as_frame(x, columns)
    x = validate_data(est, x, reset=False, dtype=None, ensure_all_finite="allow-nan")
    return _as_frame(x, columns)
