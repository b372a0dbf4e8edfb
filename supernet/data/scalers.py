"""``data.scaler`` and ``data.clip``: how a table's numeric columns are scaled before the net sees them.

Fitted on the training rows only, saved as plain data in each numeric column's spec (``scale``)
and applied by `TablePreprocessor.transform`, so an export scales a DataFrame exactly as training
did. The model's own per-input standardisation still follows; these transforms only change the
shape of a column's distribution:

  * ``standard``: nothing here (the model's mean/std standardisation alone).
  * ``robust``: centre on the median, divide by the interquartile range (the standard deviation
    where that is zero), so a few huge values do not squash the rest of the column.
  * ``quantile``: each value -> the normal quantile of its rank among the training rows
    (scikit-learn's ``QuantileTransformer(output_distribution="normal")`` rule, with the
    training rows' quantiles kept as plain numbers): any marginal becomes Gaussian.
  * ``auto`` (the tables' default): ``standard`` for a small table (either task), ``quantile``
    otherwise (`supernet.data.table_recipe`).

``data.clip=c`` (null: off) then bounds each scaled value smoothly, ``x / sqrt(1 + (x/c)^2)``
(RealMLP's smooth clipping: about ``x`` near zero, ``±c`` far out), so an outlier at prediction
time cannot drive a ReLU net far outside what it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from supernet.errors import UsageError

SCALERS = ("auto", "standard", "robust", "quantile")
# Quantile levels: one per 30 training rows, 10 to 256 (Gorishniy et al.'s rows // 30, capped
# lower than their 1000 so that an export's arch.yaml stays small: 256 levels, 7 digits each).
QUANTILES_PER_ROWS, MIN_QUANTILES, MAX_QUANTILES = 30, 10, 256
BOUND = 1e-7  # ranks are kept inside (BOUND, 1 - BOUND) so the normal quantile stays finite


def check_scaler(cfg: Mapping) -> None:
    """``data.scaler`` and ``data.clip``: one-line errors before anything is read."""
    scaler = cfg.get("scaler", "standard")
    if scaler not in SCALERS:
        raise UsageError(f"data.scaler={scaler!r} must be one of {', '.join(SCALERS)}")
    clip = cfg.get("clip")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0):
        raise UsageError(f"data.clip={clip!r} must be a positive number (the smooth bound) or null (off)")


def fit_scale(values: np.ndarray, scaler: str, clip: float | None) -> dict[str, Any] | None:
    """The ``scale`` spec of one numeric column from its training values (missing ones filled), or
    None when nothing is to be done (``standard`` without clipping)."""
    if scaler == "standard" and clip is None:
        return None
    spec: dict[str, Any] = {"kind": scaler, "clip": None if clip is None else float(clip)}
    if scaler == "standard":
        spec.update(center=float(values.mean()), scale=_positive(float(values.std())))
    elif scaler == "robust":
        q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
        spread = float(q75 - q25) or float(values.std())
        spec.update(center=float(median), scale=_positive(spread))
    else:
        n = min(len(values), max(MIN_QUANTILES, min(MAX_QUANTILES, len(values) // QUANTILES_PER_ROWS)))
        spec["quantiles"] = [float(f"{q:.7g}") for q in np.quantile(values, np.linspace(0.0, 1.0, n))]
    return spec


def apply_scale(values: np.ndarray, spec: Mapping[str, Any] | None) -> np.ndarray:
    """One column's values scaled by its spec (`fit_scale`)."""
    if spec is None:
        return values
    if spec["kind"] == "quantile":
        out = _normal_scores(values, np.asarray(spec["quantiles"], dtype=np.float64))
    else:
        out = (values - spec["center"]) / spec["scale"]
    clip = spec.get("clip")
    return out if clip is None else out / np.sqrt(1.0 + (out / clip) ** 2)


def _normal_scores(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Values -> normal quantiles of their ranks. Ties in `quantiles` (a column with repeated
    values) take the middle of their rank range: interpolating forwards and backwards and
    averaging, as scikit-learn does."""
    from scipy.stats import norm  # here: importing scipy.stats costs start-up time of every command

    levels = np.linspace(0.0, 1.0, len(quantiles))
    forward = np.interp(values, quantiles, levels)
    backward = -np.interp(-values, -quantiles[::-1], -levels[::-1])
    return norm.ppf(np.clip(0.5 * (forward + backward), BOUND, 1.0 - BOUND))


def _positive(scale: float) -> float:
    return scale if scale > 1e-12 else 1.0
