"""Built-in tables for regression, multi-output regression and imbalanced classification.

Every one is read through the same table code as a user's CSV (`supernet.data.tables`), so its
test split, leak-free encoding and ``preprocess`` spec work exactly as for ``data=csv``:

    supernet data=friedman        # make_friedman1: 20,000 rows (data.n_samples), 10 features, regression
    supernet data=diabetes        # scikit-learn's diabetes: 442 rows, 10 features, regression
    supernet data=linnerud        # scikit-learn's linnerud: 20 rows, 3 features, 3 targets
    supernet data=imbalanced      # make_classification: 5,000 rows, 20 features, classes 0/1 at 95/5
    supernet data=cpu             # Weka's cpu.arff: 209 rows, 6 features, relative CPU performance
    supernet data=cpu_vendor      # the same with the vendor column (30 categories, one-hot)

The synthetic sets (friedman, imbalanced) are drawn with a fixed ``data.generator_seed``, so every
run sees the same rows; ``data.n_samples`` (and ``data.noise`` for friedman) size them. The cpu
tables are ARFF files of the Debian package ``weka`` (``apt-get install weka``), read from
``data.path``. Each set has one task: ``data.task`` other than ``auto`` or that task is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from supernet.data.datasets import RawData
from supernet.errors import UsageError

# The Debian package `weka` ships its example ARFF files here.
WEKA_EXAMPLES = Path("/usr/share/doc/weka/examples")


def _table(df: pd.DataFrame, cfg: Mapping, target: str | list[str], name: str) -> RawData:
    """`df` through the table path: every column but the target(s) is a feature; the task is the
    set's own (``auto``), and load_data refuses a ``data.task`` that differs."""
    from supernet.data.tables import table_raw_data

    df = df.reset_index(drop=True)
    df.index = pd.RangeIndex(1, len(df) + 1)
    fixed = {**dict(cfg), "features": None, "drop": None, "categorical": None, "task": "auto"}
    return table_raw_data(df, fixed, target, f"data={name}")


def _positive_int(cfg: Mapping, key: str, default: int, least: int = 1) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise UsageError(f"data.{key}={value!r} must be an integer >= {least}")
    return int(value)


def _frame(x: np.ndarray, names: list[str], **targets: Any) -> pd.DataFrame:
    df = pd.DataFrame(x, columns=names)
    for key, values in targets.items():
        df[key] = values
    return df


def load_friedman(cfg: Mapping) -> RawData:
    """``data=friedman``: scikit-learn's `make_friedman1`, y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2
    + 10 x3 + 5 x4 + noise, with x5..x9 irrelevant; a fixed 20% test split."""
    from sklearn.datasets import make_friedman1

    n = _positive_int(cfg, "n_samples", 20000, least=10)
    noise = cfg.get("noise", 1.0)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
        raise UsageError(f"data.noise={noise!r} must be a number >= 0")
    seed = _positive_int(cfg, "generator_seed", 0, least=0)
    x, y = make_friedman1(n_samples=n, n_features=10, noise=float(noise), random_state=seed)
    return _table(_frame(x, [f"x{i}" for i in range(10)], y=y), cfg, "y", "friedman")


def load_diabetes(cfg: Mapping) -> RawData:
    """``data=diabetes``: scikit-learn's diabetes (442 patients, 10 baseline measurements in their
    own units, unscaled); the target is disease progression one year later."""
    from sklearn.datasets import load_diabetes as sk_load

    bunch = sk_load(as_frame=True, scaled=False)
    df = bunch.data.copy()
    df["progression"] = bunch.target.to_numpy()
    return _table(df, cfg, "progression", "diabetes")


def load_linnerud(cfg: Mapping) -> RawData:
    """``data=linnerud``: scikit-learn's linnerud, 20 men: 3 exercises (Chins, Situps, Jumps) ->
    3 physiological targets (Weight, Waist, Pulse), a multi-output regression."""
    from sklearn.datasets import load_linnerud as sk_load

    bunch = sk_load(as_frame=True)
    df = pd.concat([bunch.data, bunch.target], axis=1).astype(np.float64)
    return _table(df, cfg, [str(c) for c in bunch.target.columns], "linnerud")


def load_imbalanced(cfg: Mapping) -> RawData:
    """``data=imbalanced``: scikit-learn's `make_classification`, two classes "0" and "1" at
    95% / 5%, 20 features of which 5 informative; a fixed stratified test split."""
    from sklearn.datasets import make_classification

    n = _positive_int(cfg, "n_samples", 5000, least=40)
    seed = _positive_int(cfg, "generator_seed", 0, least=0)
    x, y = make_classification(n_samples=n, n_features=20, n_informative=5, weights=[0.95, 0.05], random_state=seed)
    return _table(_frame(x, [f"x{i}" for i in range(20)], label=y), cfg, "label", "imbalanced")


def load_weka_table(cfg: Mapping) -> RawData:
    """``data=cpu``, ``data=cpu_vendor``: an ARFF file of the Debian package weka at ``data.path``
    (target ``data.target``), read like ``data=csv`` reads it."""
    from supernet.data.tables import load_table

    name = str(cfg["name"])
    path = Path(str(cfg.get("path") or ""))
    if not path.is_file():
        raise UsageError(
            f"data={name}: data.path={cfg.get('path')} does not exist; it comes with the Debian package "
            f"weka (apt-get install weka), or set data.path to a copy of {path.name or 'the ARFF file'}"
        )
    return load_table({**dict(cfg), "task": "auto"})
