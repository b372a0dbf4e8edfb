"""``data.periodic=k``: periodic features of each numeric column of a table.

Each numeric column, after ``data.scaler`` and standardised with its training rows' mean and
standard deviation (x), gains 2k inputs: ``sin(2 pi c_j x)`` and ``cos(2 pi c_j x)`` for k
frequencies ``c_j ~ N(0, data.periodic_sigma^2)``, drawn once with a fixed seed and kept in the
column's spec (``periodic``), so an export computes them from a raw DataFrame as training did.
These are the periodic embeddings of Gorishniy et al. (2022, "On Embeddings for Numerical
Features in Tabular Deep Learning") with frozen frequencies: the searched MLP learns what to make
of them, and an export needs no layer outside the plain ``Linear, ReLU`` stack. The tables'
``auto`` turns them on for a regression with at least 1,000 training rows only
(`supernet.data.table_recipe`); the figures behind that rule: docs/experiments/tabular.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from supernet.data.table_recipe import AUTO
from supernet.errors import UsageError

SEED = 0  # the frequencies' generator: the same table and settings give the same features


def check_periodic(cfg: Mapping) -> None:
    """``data.periodic`` and ``data.periodic_sigma``: one-line errors before anything is read."""
    k = cfg.get("periodic")
    if k is None:
        return
    if k != AUTO and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise UsageError(
            f"data.periodic={k!r} must be a whole number of frequencies >= 1, auto (by the task and size) or null (off)"
        )
    sigma = cfg.get("periodic_sigma")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise UsageError(f"data.periodic_sigma={sigma!r} must be a positive number (the frequencies' spread)")


def fit_periodic(values: np.ndarray, k: int, sigma: float, rng: np.random.Generator) -> dict[str, Any]:
    """One column's ``periodic`` spec from its scaled training values: their centre and spread,
    and `k` frequencies drawn from `rng`."""
    spread = float(values.std())
    return {
        "center": float(values.mean()),
        "scale": spread if spread > 0 else 1.0,
        "frequencies": [float(f"{c:.7g}") for c in rng.normal(0.0, sigma, size=k)],
    }


def apply_periodic(values: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """``(len(values), 2k)``: the sines, then the cosines, of one column's scaled values."""
    x = (values - spec["center"]) / spec["scale"]
    angles = 2.0 * np.pi * x[:, None] * np.asarray(spec["frequencies"], dtype=np.float64)[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def periodic_names(name: str, spec: Mapping[str, Any]) -> list[str]:
    """The inputs' names: ``age~sin0, ..., age~cos0, ...``."""
    k = len(spec["frequencies"])
    return [f"{name}~{f}{j}" for f in ("sin", "cos") for j in range(k)]
