"""Tasks of tables and built-in sets (issue 25): the ``data.task=auto`` rule, regression and
multi-output targets, their one-line errors, the built-in sets, ARFF tables and class weights.
Real files in tmp_path and real scikit-learn / Weka data; nothing is mocked."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from supernet.data.builtin import WEKA_EXAMPLES
from supernet.data.datasets import holdout_indices, load_data
from supernet.data.table_targets import AUTO_MAX_CLASSES
from supernet.data.tables import load_table
from supernet.errors import UsageError

CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"
CPU_ARFF = WEKA_EXAMPLES / "cpu.arff"
needs_weka = pytest.mark.skipif(not CPU_ARFF.is_file(), reason="Debian package weka not installed")


def data_cfg(name: str, **over):
    """conf/data/<name>.yaml with overrides, as Hydra hands it to the loaders (a DictConfig)."""
    cfg = OmegaConf.load(CONF_DATA / f"{name}.yaml")
    cfg.merge_with(OmegaConf.create(over))
    return cfg


def table(tmp_path: Path, df: pd.DataFrame, name: str = "t.csv", **over):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return data_cfg("csv", path=str(path), **over)


def regression_frame(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "blue"], size=n)
    y1 = 3 * x1 - x2 + (color == "red") + rng.normal(scale=0.1, size=n) + 50
    y2 = x1 * x2 + 0.5 * rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y1": y1.round(4), "y2": y2.round(4)})


def one_line_error(match: str, func, *args):
    with pytest.raises(UsageError) as err:
        func(*args)
    text = str(err.value)
    assert "\n" not in text and re.search(match, text), text
    return text


# ---------------------------------------------------------------------------- the auto rule
N = 120
AUTO_CASES = {
    "text": (["a", "b", "c"] * (N // 3), "classification"),
    "bool": ([True, False] * (N // 2), "classification"),
    "five integers": ([i % 5 for i in range(N)], "classification"),
    "integer-valued floats": ([float(i % 2) for i in range(N)], "classification"),
    f"{AUTO_MAX_CLASSES} integers": ([i % AUTO_MAX_CLASSES for i in range(N)], "classification"),
    f"{AUTO_MAX_CLASSES + 1} integers": ([i % (AUTO_MAX_CLASSES + 1) for i in range(N)], "regression"),
    "three non-integers": ([0.5, 1.5, 2.5] * (N // 3), "regression"),
    "measurements": (list(np.linspace(0, 1, N)), "regression"),
}


@pytest.mark.parametrize("name", list(AUTO_CASES))
def test_auto_rule_decides_and_logs(tmp_path, caplog, name):
    values, want = AUTO_CASES[name]
    df = pd.DataFrame({"x": np.arange(N, dtype=float) % 7, "target": values})
    caplog.set_level(logging.INFO, logger="supernet.data.table_targets")
    raw = load_table(table(tmp_path, df, target="target"))
    assert raw.kind == want
    chosen = [r.getMessage() for r in caplog.records if "data.task=auto -> " in r.getMessage()]
    assert len(chosen) == 1 and f"data.task=auto -> {want}: target 'target'" in chosen[0]
    if want == "regression":
        assert raw.train_y.dtype == torch.float32 and raw.train_y.shape == (96, 1)
        assert raw.class_names == [] and raw.targets == ["target"]
    else:
        assert raw.train_y.dtype == torch.int64 and raw.targets == []


def test_data_task_overrides_the_rule(tmp_path):
    df = pd.DataFrame({"x": np.arange(N) % 7, "grade": [i % 5 for i in range(N)]})
    raw = load_table(table(tmp_path, df, target="grade", task="regression"))
    assert raw.kind == "regression" and sorted(set(raw.train_y.flatten().tolist())) == [0, 1, 2, 3, 4]
    df["grade"] = [i % 30 for i in range(N)]  # 30 integers: auto says regression
    raw = load_table(table(tmp_path, df, target="grade", task="classification"))
    assert raw.kind == "classification" and len(raw.class_names) == 30
    df["grade"] = [0.5, 1.5, 2.5] * (N // 3)  # few non-integer values can still be classes
    assert load_table(table(tmp_path, df, target="grade", task="classification")).class_names == ["0.5", "1.5", "2.5"]


def test_classification_of_a_measurement_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=10_000), "price": rng.normal(size=10_000) * 100})
    cfg = table(tmp_path, df, target="price", task="classification")
    one_line_error(
        r"target column 'price' holds 10000 distinct non-integer numbers.*use data.task=regression", load_table, cfg
    )


# ---------------------------------------------------------------------------- regression tables
def test_multi_output_table(tmp_path):
    df = regression_frame()
    cfg = table(tmp_path, df, target=["y1", "y2"])
    raw = load_table(cfg)
    assert raw.kind == "regression" and raw.targets == ["y1", "y2"] and raw.class_names == []
    assert raw.train_y.shape == (64, 2) and raw.test_y.shape == (16, 2) and raw.train_y.dtype == torch.float32
    spec = raw.preprocess
    assert [c["name"] for c in spec["columns"]] == ["x1", "x2", "color"] and spec["targets"] == ["y1", "y2"]
    assert spec["target"] is None and spec["classes"] == []
    # the carved test rows are a seeded shuffle: the same rows every time, not the file's tail
    again = load_table(cfg)
    assert torch.equal(again.test_y, raw.test_y)
    assert not torch.equal(raw.test_y, torch.tensor(df[["y1", "y2"]].to_numpy()[-16:], dtype=torch.float32))
    all_y = torch.tensor(df[["y1", "y2"]].to_numpy(), dtype=torch.float32)
    rows = {tuple(r) for r in all_y.tolist()}
    assert {tuple(r) for r in raw.test_y.tolist()} <= rows and {tuple(r) for r in raw.train_y.tolist()} <= rows


def test_regression_csv_through_load_data_is_standardised(tmp_path):
    bundle = load_data(table(tmp_path, regression_frame(200), target=["y1", "y2"]))
    task = bundle.task
    assert task.is_regression and task.targets == ("y1", "y2") and bundle.num_classes == 2
    assert torch.allclose(bundle.train_y.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(bundle.train_y.std(0), torch.ones(2), atol=1e-5)
    assert task.target_mean[0] == pytest.approx(50, abs=1)  # in the targets' own units
    units = task.to_units(bundle.val_y)
    assert units[:, 0].mean().item() == pytest.approx(50, abs=2)
    assert bundle.info()["task"]["kind"] == "regression"


def test_encoding_is_fitted_on_the_regression_training_rows(tmp_path):
    df = regression_frame(100)
    df.loc[[3, 9, 40], "x2"] = np.nan
    df.head(10).to_csv(tmp_path / "test.csv", index=False)
    cfg = table(tmp_path, df, name="train.csv", target="y1", test_path=str(tmp_path / "test.csv"))
    raw = load_table(cfg)
    fit_idx, _ = holdout_indices(raw.train_y, 0.2, 0)  # what load_data trains on
    fill = {c["name"]: c.get("fill") for c in raw.preprocess["columns"]}
    assert fill["x2"] == pytest.approx(df["x2"].iloc[fit_idx.numpy()].median())
    assert raw.test_y.shape == (10, 1)
    assert "y2" in fill  # the other numeric column is a feature


@pytest.mark.parametrize(
    "edit, target, match",
    [
        ({("y1", 6): np.nan}, "y1", r"target column 'y1' is missing \(empty or NaN\) in row 7;"),
        ({("y1", 4): np.inf}, "y1", r"target column 'y1' is inf in row 5;"),
        ({("y2", 9): np.nan, ("y1", 20): np.nan}, ["y1", "y2"], r"target column 'y2' is missing .* in row 10;"),
    ],
    ids=["nan", "inf", "first bad row of several"],
)
def test_bad_regression_target_names_column_and_row(tmp_path, edit, target, match):
    df = regression_frame()
    for (col, i), value in edit.items():
        df.loc[i, col] = value
    one_line_error("data.path=.*t.csv: " + match, load_table, table(tmp_path, df, target=target, task="regression"))


@pytest.mark.parametrize("target, constant", [("y1", "y1"), (["y1", "y2"], "y2")], ids=["one target", "second of two"])
def test_constant_regression_target_is_refused(tmp_path, target, constant):
    """As a one-class target is refused for classification (issue 39 N5): nothing to learn."""
    df = regression_frame().assign(**{constant: 7.25})
    one_line_error(
        rf"data.path=.*t.csv: target column '{constant}' is 7.25 in every row; a regression target must vary$",
        load_table,
        table(tmp_path, df, target=target, task="regression"),
    )


@pytest.mark.parametrize(
    "target, task, advice, follow",
    [
        (
            ["y1", "color"],
            "auto",
            r"target column 'color' holds '(red|blue)' in row 1, not a number; a regression target must be "
            r"numeric \(or classify by it: data.target=color data.task=classification\)$",
            {"target": "color", "task": "classification"},
        ),
        (
            ["y1", "color"],
            "classification",
            r"is a list, which means \(multi-output\) regression; pass data.target=color to classify by that column$",
            {"target": "color", "task": "auto"},
        ),
        (
            ["y1", "y2"],
            "classification",
            r"none of its columns holds classes \(text, or a few integers\): use data.task=regression$",
            {"target": ["y1", "y2"], "task": "regression"},
        ),
    ],
    ids=["text column in a regression list", "list to classify", "list of measurements to classify"],
)
def test_advice_for_a_list_target_is_taken_by_the_next_run(tmp_path, target, task, advice, follow):
    """Issue 39 N12: the fix each refusal names loads (no "set data.task=classification" that a
    list target refuses next)."""
    df = regression_frame()
    one_line_error(advice, load_table, table(tmp_path, df, target=target, task=task))
    raw = load_table(table(tmp_path, df, **follow))
    assert raw.kind == ("regression" if follow["task"] == "regression" else "classification")


def test_bad_target_in_the_test_table_and_text_targets(tmp_path):
    df = regression_frame()
    test = df.head(8).copy()
    test.loc[2, "y1"] = np.nan
    test.to_csv(tmp_path / "test.csv", index=False)
    cfg = table(tmp_path, df, target="y1", test_path=str(tmp_path / "test.csv"))
    one_line_error(
        r"data.test_path=.*test.csv: target column 'y1' is missing \(empty or NaN\) in row 3;", load_table, cfg
    )
    one_line_error(
        r"target column 'color' holds '(red|blue)' in row 1, not a number",
        load_table,
        table(tmp_path, df, target="color", task="regression"),
    )


def test_target_lists_errors(tmp_path):
    df = regression_frame()
    one_line_error(
        r"data.target=\['y1', 'nope'\] names column 'nope', which the table does not have",
        load_table,
        table(tmp_path, df, target=["y1", "nope"]),
    )
    one_line_error(
        r"data.task=classification takes one class column, but data.target=\['y1', 'y2'\] is a list",
        load_table,
        table(tmp_path, df, target=["y1", "y2"], task="classification"),
    )
    one_line_error(
        r"data.features lists the target column 'y2'",
        load_table,
        table(tmp_path, df, target=["y1", "y2"], features=["x1", "y2"]),
    )
    one_line_error(
        r"data.task='maybe' must be auto, classification or regression",
        load_table,
        table(tmp_path, df, target="y1", task="maybe"),
    )
    one_line_error(
        r"applies to classification; the task is regression",
        load_data,
        table(tmp_path, df, target="y1", class_weight="balanced"),
    )


# ---------------------------------------------------------------------------- built-in sets
@pytest.mark.parametrize(
    "name, over, kind, shapes",
    [
        ("friedman", {"n_samples": 1000}, "regression", ((640, 10), (640, 1), (160, 1), (200, 1))),
        ("diabetes", {}, "regression", ((283, 10), (283, 1), (71, 1), (88, 1))),
        ("linnerud", {}, "regression", ((12, 3), (12, 3), (4, 3), (4, 3))),
        ("imbalanced", {}, "classification", ((3200, 20), (3200,), (800,), (1000,))),
    ],
)
def test_builtin_sets(name, over, kind, shapes):
    bundle = load_data(data_cfg(name, **over))
    assert bundle.task.kind == kind and bundle.name == name
    got = (
        tuple(bundle.train_x.shape),
        tuple(bundle.train_y.shape),
        tuple(bundle.val_y.shape),
        tuple(bundle.test_y.shape),
    )
    assert got == shapes
    if kind == "regression":
        assert bundle.class_names == [] and len(bundle.task.targets) == shapes[1][1]
    else:
        assert bundle.class_names == ["0", "1"]
        share = bundle.train_y.float().mean().item()
        assert 0.03 < share < 0.08  # 5% minority (plus 1% flipped labels)
    wrong = "classification" if kind == "regression" else "regression"
    one_line_error(
        f"data.task={wrong} but data={name} is a {kind} data set", load_data, data_cfg(name, task=wrong, **over)
    )


def test_builtin_defaults_and_fixed_rows():
    assert data_cfg("friedman").n_samples == 20000 and data_cfg("imbalanced").n_samples == 5000
    a = load_data(data_cfg("friedman", n_samples=300))
    b = load_data(data_cfg("friedman", n_samples=300))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)  # generator_seed fixes them
    assert list(load_data(data_cfg("linnerud")).task.targets) == ["Weight", "Waist", "Pulse"]


def test_class_weight_balanced_weighs_the_minority_class_up():
    plain = load_data(data_cfg("imbalanced"))
    assert plain.task.class_weight is None
    bundle = load_data(data_cfg("imbalanced", class_weight="balanced"))
    w0, w1 = bundle.task.class_weight
    counts = torch.bincount(bundle.train_y, minlength=2).tolist()
    assert w1 > 5 * w0
    n = len(bundle.train_y)  # scikit-learn's rule: n_rows / (n_classes * rows of the class)
    assert (w0, w1) == pytest.approx((n / (2 * counts[0]), n / (2 * counts[1])))
    assert load_data(data_cfg("imbalanced", class_weight={"1": 10})).task.class_weight == (1.0, 10.0)


# ---------------------------------------------------------------------------- ARFF tables
ARFF = """% a small ARFF table
@relation 'parts'
@attribute size numeric
@attribute kind {small, large, '1'}
@attribute weight numeric
@attribute label {no, yes}
@data
"""


def test_arff_table_by_suffix(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        kind = ["small", "large", "1", "?"][i % 4]
        size = "?" if i == 7 else f"{rng.normal():.3f}"
        rows.append(f"{size},{kind},{10 + i + rng.normal():.3f},{'yes' if i % 3 else 'no'}")
    path = tmp_path / "parts.arff"
    path.write_text(ARFF + "\n".join(rows) + "\n")
    raw = load_table(data_cfg("csv", path=str(path), target="label"))
    assert raw.kind == "classification" and raw.class_names == ["no", "yes"]
    columns = {c["name"]: c for c in raw.preprocess["columns"]}
    assert columns["kind"]["type"] == "categorical"  # nominal, even the value that looks like a number
    assert set(columns["kind"]["categories"]) == {"small", "large", "1", "__missing__"}
    assert not torch.isnan(raw.train_x).any()
    raw = load_table(data_cfg("csv", path=str(path), target="weight", drop=["label"]))
    assert raw.kind == "regression" and raw.train_y.shape == (48, 1)
    bad = tmp_path / "bad.arff"
    bad.write_text("@relation x\n@attribute s string\n@data\n'a'\n")
    one_line_error(r"data.path=.*bad.arff: cannot read as ARFF", load_table, data_cfg("csv", path=str(bad), target="s"))


@needs_weka
def test_weka_cpu_tables():
    cpu = load_data(data_cfg("cpu"))
    assert cpu.task.is_regression and cpu.task.targets == ("class",)
    assert len(cpu.train_y) + len(cpu.val_y) + len(cpu.test_y) == 209 and cpu.in_features == 6
    vendor = load_data(data_cfg("cpu_vendor"))
    assert len(vendor.train_y) + len(vendor.val_y) + len(vendor.test_y) == 209
    names = vendor.preprocess["feature_names"]
    assert sum(n.startswith("vendor=") for n in names) > 20 and "MYCT" in names
    # and the generic path: the same file through data=csv
    raw = load_table(data_cfg("csv", path=str(CPU_ARFF), target="class"))
    assert raw.kind == "regression" and raw.input_shape == [6]  # a small regression: data.periodic=auto is off
    assert load_table(data_cfg("csv", path=str(CPU_ARFF), target="class", periodic=8)).input_shape == [6 * (1 + 2 * 8)]


def test_weka_table_absent_is_one_line(tmp_path):
    one_line_error(
        r"data=cpu: data.path=.*nope.arff does not exist; it comes with the Debian package weka",
        load_data,
        data_cfg("cpu", path=str(tmp_path / "nope.arff")),
    )
