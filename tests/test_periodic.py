"""``data.periodic``: periodic features of a table's numeric columns, fitted on the training rows,
saved in the spec, computed the same way from raw rows by an export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from supernet.data.periodic import check_periodic
from supernet.data.table_encoder import TablePreprocessor
from supernet.errors import UsageError


def table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    colors = np.array(["x", "y", "z"])[np.arange(n) % 3]
    return pd.DataFrame({"a": rng.exponential(size=n), "c": colors, "b": rng.normal(size=n)})


def test_each_numeric_column_gains_its_sines_and_cosines():
    df = table()
    prep = TablePreprocessor.fit(df, ["a", "c", "b"], "t").fit_scales(df, "quantile", None, (3, 0.5))
    names = prep.feature_names
    assert names[:7] == ["a", "a~sin0", "a~sin1", "a~sin2", "a~cos0", "a~cos1", "a~cos2"]
    assert names[7:10] == ["c=x", "c=y", "c=z"] and len(names) == 17  # categories get none
    x = prep.transform(df).double().numpy()
    spec = prep.columns[0]["periodic"]
    scaled = (x[:, 0] - spec["center"]) / spec["scale"]
    assert abs(scaled.mean()) < 1e-6 and abs(scaled.std() - 1) < 1e-6  # standardised before the angles
    angles = 2 * np.pi * scaled[:, None] * np.array(spec["frequencies"])[None, :]
    np.testing.assert_allclose(x[:, 1:4], np.sin(angles), atol=1e-6)
    np.testing.assert_allclose(x[:, 4:7], np.cos(angles), atol=1e-6)
    assert prep.columns[0]["periodic"]["frequencies"] != prep.columns[2]["periodic"]["frequencies"]
    again = TablePreprocessor.from_spec(prep.spec())  # as an export reads it back from arch.yaml
    assert torch.equal(again.transform(df.iloc[:20]), prep.transform(df.iloc[:20]))
    refit = TablePreprocessor.fit(df, ["a", "c", "b"], "t").fit_scales(df, "quantile", None, (3, 0.5))
    assert refit.spec() == prep.spec()  # a fixed seed: the same table gives the same features


def test_a_table_run_with_periodic_features_predicts_raw_rows(tmp_path):
    from supernet import load_subnet
    from supernet.commands.pipeline import check_pipeline_config, run_pipeline

    from conftest import make_cfg

    df = table(400).assign(y=lambda d: (d["a"] * np.sin(3 * d["b"]) > 0.3).astype(int))
    df.to_csv(tmp_path / "t.csv", index=False)
    tiny = [
        "trainer.max_epochs=2",
        "train.min_steps=null",
        "retrain.min_steps=null",
        "search.budget=20",
        "search.population=10",
        "search.finetune.top=1",
        "retrain.max_epochs=2",
        "logger=none",
        "figures=false",
    ]
    data = ["data=csv", f"data.path={tmp_path / 't.csv'}", "data.target=y", "data.periodic=4"]
    cfg = make_cfg("pipeline", [*data, *tiny])
    check_pipeline_config(cfg)
    (tmp_path / "run").mkdir()
    result, state = run_pipeline(cfg, tmp_path / "run")
    model = load_subnet(result["paths"]["subnet"])
    assert model.in_features == 2 * 9 + 3  # a and b: 1 + 8 inputs each; c: 3 categories
    spec = model.meta["preprocess"]
    assert spec == state.bundle.preprocess and "periodic" in spec["columns"][0]  # saved in arch.yaml
    rows = df.drop(columns="y").head(30)
    with torch.no_grad():
        logits = model(TablePreprocessor.from_spec(spec).transform(rows))
    assert list(model.predict(rows)) == [spec["classes"][i] for i in logits.argmax(-1).tolist()]
    assert result["winner"]["test_acc"] > 0.5


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"periodic": 0, "periodic_sigma": 0.2}, "data.periodic=0 must be a whole number of frequencies >= 1"),
        ({"periodic": "many", "periodic_sigma": 0.2}, "data.periodic='many' must be a whole number"),
        ({"periodic": 8, "periodic_sigma": 0}, "data.periodic_sigma=0 must be a positive number"),
        ({"periodic": 8}, "data.periodic_sigma=None must be a positive number"),
    ],
)
def test_bad_settings(cfg, message):
    check_periodic({"periodic": None})  # off
    with pytest.raises(UsageError, match=message):
        check_periodic(cfg)


def test_auto_turns_them_on_for_a_large_regression_only(tmp_path):
    from supernet.data.datasets import load_data

    def first_column(rows: int, target: str) -> dict:
        df = table(rows).assign(label=lambda d: (d["b"] > 0).astype(str), value=lambda d: d["a"] + d["b"])
        df.to_csv(tmp_path / "t.csv", index=False)
        cfg = {"name": "csv", "path": str(tmp_path / "t.csv"), "periodic": "auto", "periodic_sigma": 0.1}
        other = "label" if target == "value" else "value"
        return load_data({**cfg, "target": target, "drop": [other]}).preprocess["columns"][0]

    assert len(first_column(2400, "value")["periodic"]["frequencies"]) == 8  # 1,536 training rows
    assert "periodic" not in first_column(1200, "value")  # 768 training rows: a small regression
    assert "periodic" not in first_column(2400, "label")  # a classification
