"""data.scaler / data.clip: fitted on the training rows, saved in the spec, applied identically at prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import QuantileTransformer

from supernet.data.scalers import apply_scale, check_scaler, fit_scale
from supernet.data.table_encoder import TablePreprocessor
from supernet.data.table_recipe import SMALL, SMALL_TABLE_ROWS, resolve
from supernet.errors import UsageError

RECIPE_KEYS = tuple(SMALL)


def heavy_tailed(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=n - 10), rng.normal(size=10) * 1000.0])


def test_quantile_matches_scikit_learn():
    x = heavy_tailed()
    spec = fit_scale(x, "quantile", None)
    assert len(spec["quantiles"]) == 2000 // 30  # a level per 30 training rows
    ours = apply_scale(x, spec)
    ref = QuantileTransformer(n_quantiles=66, output_distribution="normal", subsample=None).fit(x[:, None])
    np.testing.assert_allclose(ours, ref.transform(x[:, None])[:, 0], atol=1e-4)  # quantiles kept to 7 digits
    assert len(fit_scale(np.arange(100_000.0), "quantile", None)["quantiles"]) == 256


def test_robust_ignores_outliers_and_clip_bounds():
    x = heavy_tailed()
    robust = apply_scale(x, fit_scale(x, "robust", None))
    standard = (x - x.mean()) / x.std()
    # The bulk of the column keeps its spread under robust scaling; ten outliers squash it under standard.
    assert 0.4 < np.median(np.abs(robust)) < 0.6 and np.median(np.abs(standard)) < 0.05
    clipped = apply_scale(x, fit_scale(x, "robust", 3.0))
    assert np.abs(clipped).max() < 3.0 and np.abs(robust).max() > 100
    small = np.abs(robust) < 0.1
    np.testing.assert_allclose(clipped[small], robust[small], atol=1e-3)  # about x near zero


def test_standard_without_clip_is_left_to_the_model():
    assert fit_scale(heavy_tailed(), "standard", None) is None


def test_spec_round_trip_transforms_new_rows_the_same():
    df = pd.DataFrame({"a": heavy_tailed(), "b": np.arange(2000.0), "c": ["x", "y"] * 1000})
    prep = TablePreprocessor.fit(df, ["a", "b", "c"], "t").fit_scales(df, "quantile", 4.0)
    again = TablePreprocessor.from_spec(prep.spec())
    rows = df.iloc[:50]
    np.testing.assert_array_equal(prep.transform(rows).numpy(), again.transform(rows).numpy())
    assert prep.spec()["columns"][0]["scale"]["kind"] == "quantile"
    assert prep.transform(df).numpy()[:, 2:].sum() == 2000  # the one-hot columns are not scaled


@pytest.mark.parametrize(
    ("rows", "regression", "expected"),
    [
        (SMALL_TABLE_ROWS - 1, False, "standard"),  # a small classification table: noisy quantiles
        (SMALL_TABLE_ROWS, False, "quantile"),
        (SMALL_TABLE_ROWS - 1, True, "standard"),  # a small regression: the small recipe (tune and confirm groups)
        (SMALL_TABLE_ROWS, True, "quantile"),
    ],
)
def test_auto_scaler_follows_rows_and_task(rows, regression, expected):
    assert resolve("scaler", "auto", rows, regression) == expected
    assert resolve("scaler", "robust", rows, regression) == "robust"  # a named scaler is itself


def test_auto_scaler_reaches_the_saved_spec(tmp_path):
    """The choice is made on the rows the net trains on and saved per column, so an export
    applies it without knowing the rule."""
    from supernet.data.datasets import load_data

    rng = np.random.default_rng(0)
    specs = {}
    for n in (400, 2000):
        df = pd.DataFrame({"a": rng.exponential(size=n), "b": rng.normal(size=n), "y": rng.integers(0, 2, n)})
        df.to_csv(tmp_path / f"t{n}.csv", index=False)
        cfg = {"name": "csv", "path": str(tmp_path / f"t{n}.csv"), "target": "y", "scaler": "auto"}
        specs[n] = load_data(cfg).preprocess["columns"][0].get("scale")
    assert specs[400] is None  # 256 training rows: standard, left to the model's standardisation
    assert specs[2000]["kind"] == "quantile"  # 1,280 training rows


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"scaler": "unknown"}, "data.scaler='unknown' must be one of auto, standard, robust, quantile"),
        ({"clip": 0}, "data.clip=0 must be a positive number"),
        ({"clip": "big"}, "data.clip='big' must be a positive number"),
    ],
)
def test_bad_settings(cfg, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        check_scaler(cfg)


@pytest.mark.parametrize("regression", [False, True])
def test_a_small_table_of_either_task_gets_the_bagged_recipe(regression):
    """Chosen on the tune group's small regressions, confirmed on the confirm group's
    (docs/decisions.md): standard scaling, 50 candidates, dropout 0.2 and a 5-fold bag."""
    small = {k: resolve(k, "auto", 500, regression) for k in RECIPE_KEYS}
    assert small == {
        "scaler": "standard",
        "label_smoothing": 0.0,
        "dropout": 0.2,
        "periodic": None,
        "search_budget": 50,
        "retrain_init": "inherited",  # two-class tables too since the confirm group (docs/decisions.md)
        "ensemble": 5,
        "ensemble_from": "folds",
    }
    assert resolve("periodic", "auto", SMALL_TABLE_ROWS, regression) == (8 if regression else None)
