"""The scikit-learn baselines (`supernet.baseline`) on the supernet's own splits: classification
keeps its fields, regression is scored in the targets' units and beats predicting the mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from supernet.baseline import main, sklearn_baselines
from supernet.data.datasets import load_data

CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"


def data_cfg(name: str, **over):
    cfg = OmegaConf.load(CONF_DATA / f"{name}.yaml")
    cfg.merge_with(OmegaConf.create(over))
    return cfg


def test_diabetes_baselines_beat_the_mean_in_target_units():
    result = sklearn_baselines(data_cfg("diabetes"), hidden=(32,), max_iter=500)
    assert result["task"] == "regression" and result["data"] == "diabetes"
    mean = result["constant"]
    # RMSE of the training mean over the test rows, computed here in the targets' own units
    bundle = load_data(data_cfg("diabetes"))
    y = bundle.task.to_units(bundle.test_y.double()).numpy().ravel()
    assert mean["test_rmse"] == pytest.approx(np.sqrt(np.mean((y - bundle.task.target_mean[0]) ** 2)), rel=1e-6)
    assert 60 < mean["test_rmse"] < 100  # progression spans 25..346: units, not standardised
    for model in (result, result["gradient_boosting"]):
        assert model["test_rmse"] < 0.9 * mean["test_rmse"] and model["val_rmse"] < mean["val_rmse"]
        assert model["test_r2"] > 0.2 and model["test_mae"] < mean["test_mae"]
    assert result["params"] == 10 * 32 + 32 + 32 + 1 and result["fit_s"] >= 0


def test_multi_output_baseline_reports_every_metric():
    result = sklearn_baselines(data_cfg("linnerud"), hidden=(8,), max_iter=50)
    hgb = result["gradient_boosting"]
    assert hgb["model"].startswith("sklearn MultiOutputRegressor(HistGradientBoostingRegressor())")
    assert len(hgb["iterations"]) == 3
    for model in (result, hgb, result["constant"]):
        assert all(np.isfinite(model[f"{s}_{m}"]) for s in ("val", "test") for m in ("rmse", "mae", "r2"))


def test_classification_keeps_its_fields_and_adds_gradient_boosting():
    cfg = data_cfg("tabular_demo", dataset="wine")
    result = sklearn_baselines(cfg, hidden=(16,), max_iter=200)
    assert result["model"].startswith("sklearn MLPClassifier") and result["params"] == 13 * 16 + 16 + 16 * 3 + 3
    assert result["val_acc"] > 0.8 and result["test_acc"] > 0.8 and "val_balanced_accuracy" in result
    assert "val_roc_auc" not in result  # three classes: binary-only metrics do not apply
    hgb = result["gradient_boosting"]
    assert hgb["model"] == "sklearn HistGradientBoostingClassifier()" and hgb["test_acc"] > 0.8
    assert 0 < hgb["val_log_loss"] < result["constant"]["val_log_loss"]


def test_class_weights_reach_the_baselines():
    plain = sklearn_baselines(data_cfg("imbalanced", n_samples=1500), hidden=(16,), max_iter=100)
    weighted = sklearn_baselines(
        data_cfg("imbalanced", n_samples=1500, class_weight="balanced"), hidden=(16,), max_iter=100
    )
    assert plain["constant"]["val_acc"] > 0.9 and plain["constant"]["val_balanced_accuracy"] == 0.5
    assert "val_f1" in plain and "test_roc_auc" in plain
    # weighting the minority class up trades plain accuracy for its recall
    assert weighted["gradient_boosting"]["val_balanced_accuracy"] > plain["gradient_boosting"]["val_balanced_accuracy"]


def test_cli_prints_the_result(capsys):
    result = main(["data=diabetes", "hidden=[8]", "max_iter=100", "hgb=false"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == result and "gradient_boosting" not in printed
    assert list(printed)[:4] == ["data", "task", "model", "hidden"] and "test_rmse" in printed
