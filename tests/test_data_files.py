"""Bring-your-own-data loaders on real files in tmp_path: tables, image folders, the demo set."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from supernet.baseline import sklearn_mlp_baseline
from supernet.data.datasets import load_data, stratified_split
from supernet.data.image_folder import image_to_tensor, load_image_folder
from supernet.data.table_encoder import MISSING, TablePreprocessor
from supernet.data.tables import load_table, load_tabular_demo, raw_features
from supernet.errors import UsageError


def make_table(n: int = 60) -> pd.DataFrame:
    """Numeric + categorical columns with missing values; the label depends on both."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=n).round(3)
    color = rng.choice(["red", "green", "blue"], size=n).astype(object)
    label = np.where(x + (color == "red") > 0.5, "yes", "no")
    size = rng.integers(1, 100, size=n).astype(float)
    size[[3, 10, 17]] = np.nan
    color[[5, 12]] = None
    return pd.DataFrame({"x": x, "size": size, "color": color, "flag": rng.random(n) > 0.5, "label": label})


def table_cfg(path, **extra) -> dict:
    return {"name": "csv", "path": str(path), "target": "label", "val_size": 0.2, "split_seed": 0, **extra}


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "measurements.csv"
    make_table().to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- tables
def test_csv_shapes_classes_and_encoding(csv_file, caplog):
    caplog.set_level(logging.INFO, logger="supernet.data.tables")
    raw = load_table(table_cfg(csv_file))
    assert re.search(r"class counts \(train\+val\) no=\d+, yes=\d+; largest/smallest", caplog.text)
    spec = raw.preprocess
    assert raw.class_names == ["no", "yes"] and raw.normalize == "feature"
    assert [c["name"] for c in spec["columns"]] == ["x", "size", "color", "flag"]
    color = spec["columns"][2]
    assert color["type"] == "categorical" and color["categories"][-1] == MISSING
    assert set(color["categories"][:-1]) <= {"blue", "green", "red"}
    assert spec["columns"][3]["categories"] == ["False", "True"]  # bool -> one-hot
    assert raw.input_shape == [len(spec["feature_names"])] == [raw.train_x.shape[1]]
    assert len(raw.train_y) == 48 and len(raw.test_y) == 12  # test_size 0.2 carved off
    assert not torch.isnan(raw.train_x).any() and not torch.isnan(raw.test_x).any()
    onehot = raw.train_x[:, 2:]  # every categorical block is one-hot: 2 ones per row at most
    assert ((onehot == 0) | (onehot == 1)).all() and (onehot.sum(1) <= 2).all()


def test_statistics_come_from_training_rows_only(tmp_path):
    """With a test file, the loader's train rows are the file's rows in order, so the rows
    load_data trains on are known: fill values and categories must come from those alone."""
    df = make_table()
    fit_idx, val_idx = stratified_split(torch.tensor((df["label"] == "yes").to_numpy(), dtype=torch.int64), 0.2, seed=0)
    df.loc[df.index[val_idx[0].item()], "color"] = "violet"  # only a validation row has it
    df.loc[df.index[val_idx[1].item()], "size"] = 1e6  # would move a leaky median/mean
    df.to_csv(tmp_path / "train.csv", index=False)
    df.head(10).to_csv(tmp_path / "test.csv", index=False)
    raw = load_table(table_cfg(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv")))
    columns = {c["name"]: c for c in raw.preprocess["columns"]}
    assert "violet" not in columns["color"]["categories"]
    assert columns["size"]["fill"] == pytest.approx(df["size"].iloc[fit_idx.numpy()].median())
    # and load_data trains on exactly those rows: its mean is over the same rows
    bundle = load_data(table_cfg(tmp_path / "train.csv", test_path=str(tmp_path / "test.csv")))
    assert bundle.mean[0] == pytest.approx(df["x"].iloc[fit_idx.numpy()].mean(), abs=1e-5)
    assert len(bundle.test_y) == 10


def test_preprocessor_round_trip(csv_file):
    raw = load_table(table_cfg(csv_file, test_path=str(csv_file)))
    prep = TablePreprocessor.from_spec(raw.preprocess)
    rows = pd.read_csv(csv_file)  # raw rows as a user has them, target column included
    assert torch.equal(prep.transform(rows), raw.test_x)
    assert prep.encode_target(rows).tolist() == raw.test_y.tolist()
    # unseen category and missing values: all-zero block / median fill, no NaN
    one = rows.head(1).assign(color="purple", size=np.nan)
    out = prep.transform(one)
    assert out[0, 2:5].sum() == 0 and out[0, 1] == prep.columns[1]["fill"]
    assert torch.equal(raw_features(raw.preprocess, one), out)


def test_na_values_mark_missing(tmp_path):
    text = "a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(30)).replace("\n7,", "\n?,")
    raw = load_table(table_cfg(write(tmp_path, "q.csv", text), na_values=["?"]))
    assert raw.preprocess["columns"][0]["type"] == "numeric"


def test_parquet_and_load_data_end_to_end(tmp_path):
    path = tmp_path / "train.parquet"
    make_table(80).to_parquet(path)
    bundle = load_data(table_cfg(path))
    assert bundle.in_features == bundle.train_x.shape[1] and bundle.num_classes == 2
    assert len(bundle.train_y) + len(bundle.val_y) + len(bundle.test_y) == 80
    assert bundle.train_x.mean(0).abs().max() < 1e-4  # standardised with train stats
    assert bundle.info()["preprocess"]["kind"] == "table"


def test_tabular_demo_and_baseline():
    cfg = {"name": "tabular_demo", "dataset": "wine", "val_size": 0.2, "split_seed": 0}
    raw = load_tabular_demo(cfg)
    assert raw.input_shape == [13] and raw.class_names == ["class_0", "class_1", "class_2"]
    result = sklearn_mlp_baseline(cfg, hidden=(16,), max_iter=200)
    assert result["val_acc"] > 0.8 and result["test_acc"] > 0.8
    assert result["params"] == 13 * 16 + 16 + 16 * 3 + 3


# ---------------------------------------------------------------------------- bad tables
def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, cfg, message",
    [
        ("a,b,label\n1,2,x\n3,4,y\n", {"target": "y"}, "target column 'y' not found; columns: "),
        ("a,label\n1,x\n2,x\n3,x\n", {}, r"target column 'label' has one class \('x'\)"),
        ("a,b,label\n1,2,x\n3,4,5,y\n5,6,x\n", {}, "line 3 has 4 fields but the header has 3"),
        ("a,b,label\n1,2,x\n3,y\n5,6,x\n", {}, "line 3 has 2 fields but the header has 3"),
        # a typo in a numeric column: caught when the kind is chosen or when rows are encoded
        (
            "a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(30)).replace("\n7,", "\n?,"),
            {},
            r"column 'a' .*row 8 holds '\?'",
        ),
        ("a,b,label\n1,2,x\n,4,y\n", {"features": ["a", "c"]}, r"column\(s\) \['c'\] not found"),
        ("a,label\n1,x\n2,\n", {}, "target column 'label' is empty in row 2"),
    ],
)
def test_bad_tables(tmp_path, text, cfg, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(UsageError, match="data.path=.*bad.csv") as err:
        load_table({**table_cfg(path), **cfg})
    assert re.search(message, str(err.value)) and "\n" not in str(err.value)


def test_too_many_categories_names_the_column(tmp_path):
    df = pd.DataFrame({"id": [f"u{i}" for i in range(40)], "v": range(40), "label": ["a", "b"] * 20})
    path = tmp_path / "ids.csv"
    df.to_csv(path, index=False)
    with pytest.raises(UsageError, match=r"column 'id' has \d+ distinct .*data.drop=\[id\]"):
        load_table(table_cfg(path, max_categories=10))
    raw = load_table(table_cfg(path, drop=["id"], features=None, max_categories=10))
    assert raw.preprocess["feature_names"] == ["v"] and raw.class_names == ["a", "b"]
    assert raw.train_x.shape == (32, 1) and raw.test_x.shape == (8, 1)


def test_missing_file_suffix_and_target(tmp_path):
    with pytest.raises(UsageError, match="data.path=.*nope.csv: no such file"):
        load_table(table_cfg(tmp_path / "nope.csv"))
    with pytest.raises(UsageError, match="unsupported suffix '.xlsx'"):
        load_table(table_cfg(write(tmp_path, "t.xlsx", "x")))
    with pytest.raises(UsageError, match="data.target is not set"):
        load_table(table_cfg(write(tmp_path, "t.csv", "a,b\n1,2\n"), target=None))
    with pytest.raises(UsageError, match="the file is empty"):
        load_table(table_cfg(write(tmp_path, "e.csv", "")))


def test_test_file_with_unknown_class_names_the_row(tmp_path, csv_file):
    test = make_table().head(5)
    test.loc[test.index[3], "label"] = "maybe"
    test.to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(UsageError, match="test.csv: row 4 has class 'maybe'"):
        load_table(table_cfg(csv_file, test_path=str(tmp_path / "test.csv")))


# ---------------------------------------------------------------------------- image folders
def make_images(root, classes=("cat", "dog"), per_class: int = 5, size: int = 12):
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
            pixels[..., k % 3] = 255  # a class-coloured channel
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    return root


def test_image_folder_grayscale_and_rgb(tmp_path):
    root = make_images(tmp_path / "imgs")
    raw = load_image_folder({"path": str(root), "image_size": 8, "grayscale": True})
    assert raw.class_names == ["cat", "dog"] and raw.input_shape == [1, 8, 8]
    assert raw.train_x.shape == (8, 64) and raw.test_x.shape == (2, 64)
    assert 0 <= raw.train_x.min() and raw.train_x.max() <= 1 and raw.normalize == "channel"
    rgb = load_image_folder({"path": str(root), "image_size": 6, "grayscale": False, "test_path": str(root)})
    assert rgb.input_shape == [3, 6, 6] and rgb.train_x.shape == (10, 108)
    with Image.open(root / "dog" / "0.png") as img:  # same steps for a single raw image
        assert torch.equal(image_to_tensor(img, rgb.preprocess), rgb.train_x[5])
    assert torch.equal(raw_features(rgb.preprocess, [root / "dog" / "0.png"])[0], rgb.train_x[5])
    bundle = load_data({"name": "image_folder", "path": str(root), "image_size": 4, "val_size": 2})
    assert bundle.in_features == 16 and len(bundle.val_y) == 2


def test_bad_image_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="empty: no class sub-folders"):
        load_image_folder({"path": str(tmp_path / "empty")})
    (tmp_path / "hollow" / "cat").mkdir(parents=True)
    (tmp_path / "hollow" / "dog").mkdir()
    with pytest.raises(UsageError, match="hollow: .*no valid file for the classes cat, dog"):
        load_image_folder({"path": str(tmp_path / "hollow")})
    with pytest.raises(UsageError, match="no such folder"):
        load_image_folder({"path": str(tmp_path / "nope")})
    one = make_images(tmp_path / "one", classes=("cat",))
    with pytest.raises(UsageError, match="one class folder \\('cat'\\)"):
        load_image_folder({"path": str(one)})
    two = make_images(tmp_path / "two")
    (two / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match="broken.png: cannot be read"):
        load_image_folder({"path": str(two), "image_size": 4})


def test_old_import_paths_still_work():
    """The table encoder moved out of supernet.data.tables; its names still import from there, and
    data=image_folder resolves to its own module (the image loader's old path is in CHANGELOG.md)."""
    import supernet.data.tables as tables
    from supernet.data.datasets import LOADERS

    assert tables.TablePreprocessor is TablePreprocessor and tables.MISSING == MISSING
    assert LOADERS["image_folder"] == "supernet.data.image_folder:load_image_folder"
