"""The benchmark registry (issue 27): real tables that installed packages ship, each read through
the table path with its fixed test split; a set whose package is missing is a one-line error
naming it. Real files only: a set is skipped where its package is not installed."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from supernet.data import benchmark_sets
from supernet.data.benchmark_sets import (
    BENCHMARK_SETS,
    TUNED_ON,
    available_sets,
    group_balance,
    group_of,
    load_bench_table,
    missing_package,
    name_hash,
    read_bench_frame,
)
from supernet.data.datasets import load_data
from supernet.errors import UsageError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data" / "bench_table.yaml"


def bench_cfg(name: str | None, **over):
    cfg = OmegaConf.load(CONF)
    cfg.merge_with(OmegaConf.create({"set": name, **over}))
    return cfg


def one_line_error(match: str, func, *args) -> str:
    with pytest.raises(UsageError) as err:
        func(*args)
    text = str(err.value)
    assert "\n" not in text and re.search(match, text), text
    return text


def installed(name: str):
    missing = missing_package(BENCHMARK_SETS[name])
    if missing is not None:
        pytest.skip(f"data.set={name}: package {missing} not installed")
    return BENCHMARK_SETS[name]


# ---------------------------------------------------------------------------- the registry
def test_registry_has_enough_real_sets():
    tasks = [s.task for s in BENCHMARK_SETS.values()]
    assert len(tasks) >= 40 and tasks.count("classification") >= 25 and tasks.count("regression") >= 10
    assert all(150 <= s.rows <= 100_000 for s in BENCHMARK_SETS.values())
    assert sum(s.rows > 5000 for s in BENCHMARK_SETS.values()) >= 3
    for s in BENCHMARK_SETS.values():
        assert s.package and s.target and s.description and s.features >= 1, s
        assert s.reader in ("arff", "rda", "rdb", "sklearn"), s
        assert s.reader == "sklearn" or s.files, s
        assert (s.classes >= 2) == (s.task == "classification") and s.group in ("tune", "confirm"), s


def test_groups_follow_the_rule_and_balance_every_band_and_kind():
    sets = list(BENCHMARK_SETS.values())
    assert group_of(sets) == {s.name: s.group for s in sets}
    assert all(BENCHMARK_SETS[name].group == "tune" for name in TUNED_ON)  # every rule was chosen on these
    balance = group_balance()
    assert abs(balance["all"]["tune"] - balance["all"]["confirm"]) <= 1
    for band in ("classification:small", "classification:large", "regression:small", "regression:large"):
        assert abs(balance[band]["tune"] - balance[band]["confirm"]) <= 1, (band, balance[band])
    for kind in ("two-class", "many-class", "imbalanced", "balanced", "categorical", "numeric"):
        assert min(balance[kind].values()) >= 3, (kind, balance[kind])  # each group covers each kind


def test_group_rule_is_stable_and_fills_tune_up_to_half_a_band():
    assert name_hash("wdbc") == hashlib.sha256(b"wdbc").hexdigest()  # not Python's salted hash
    fresh = [dataclasses.replace(BENCHMARK_SETS["iris"], name=f"t{i}") for i in range(5)]
    groups = group_of([BENCHMARK_SETS["wdbc"], *fresh])  # wdbc: tuned on, so tune; 2 of 5 fresh join it
    assert groups["wdbc"] == "tune" and list(groups.values()).count("tune") == 3
    first = sorted((s.name for s in fresh), key=name_hash)[:2]
    assert [n for n in first if groups[n] == "tune"] == first


def test_docstring_table_matches_the_registry():
    rows = re.findall(r"^\| (\w+) \| ([\w-]+) \| ([\d,]+) \| (\d+) \| (\w+)", benchmark_sets.__doc__, re.M)
    table = {name: (pkg, int(n.replace(",", "")), int(f), task) for name, pkg, n, f, task in rows}
    assert table == {s.name: (s.package, s.rows, s.features, s.task) for s in BENCHMARK_SETS.values()}


def test_available_sets_names_every_set():
    listed = available_sets()
    assert [name for name, _ in listed] == list(BENCHMARK_SETS)
    for name, missing in listed:
        assert missing is None or missing in (BENCHMARK_SETS[name].package, "rdata")
    assert dict(listed)["digits"] is None  # scikit-learn's embedded tables are always there


# ---------------------------------------------------------------------------- every installed set
@pytest.mark.parametrize("name", list(BENCHMARK_SETS))
def test_installed_set_loads_with_its_task(name):
    bench = installed(name)
    df = read_bench_frame(bench)
    assert len(df) == bench.rows >= 150 and len(df.columns) == bench.features + 1
    features = df.drop(columns=[bench.target])
    assert sum(not pd.api.types.is_numeric_dtype(features[c]) for c in features) == bench.categorical
    if bench.task == "classification":  # the profile the group balance counts
        shares = df[bench.target].astype(str).value_counts(normalize=True)
        assert len(shares) == bench.classes and abs(shares.min() - bench.minority) < 1e-3
    assert bench.target in df.columns and not any(c in df.columns for c in bench.drop)
    raw = load_bench_table(bench_cfg(name))
    assert raw.kind == bench.task
    n_test = len(raw.test_y)
    assert len(raw.train_y) + n_test == bench.rows and abs(n_test - 0.2 * bench.rows) <= 20
    assert raw.train_x.shape[1] >= 1 and torch.isfinite(raw.train_x).all() and torch.isfinite(raw.test_x).all()
    if bench.task == "classification":
        counts = torch.bincount(raw.train_y, minlength=len(raw.class_names))
        assert len(raw.class_names) >= 2 and (counts > 0).all()
        assert counts.max() < len(raw.train_y)  # not one class
    else:
        assert raw.targets == [bench.target] and raw.train_y.shape[1] == 1
        assert torch.isfinite(raw.train_y).all() and raw.train_y.std() > 0
        assert len(torch.unique(raw.train_y)) > 20  # a measurement, not a few levels


def test_split_is_fixed_and_load_data_keeps_the_task():
    bench = installed("concrete")
    first, again = load_bench_table(bench_cfg("concrete")), load_bench_table(bench_cfg("concrete"))
    assert torch.equal(first.test_y, again.test_y) and torch.equal(first.train_x, again.train_x)
    bundle = load_data(bench_cfg("concrete"))
    assert bundle.task.is_regression and bundle.task.targets == (bench.target,)
    n = len(bundle.train_y) + len(bundle.val_y) + len(bundle.test_y)
    assert n == bench.rows and bundle.name == "bench_table"
    one_line_error(
        r"data.task=classification but data=bench_table is a regression",
        load_data,
        bench_cfg("concrete", task="classification"),
    )


def test_weka_set_joins_its_files():
    bench = installed("segment")
    assert len(bench.files) == 2
    assert len(read_bench_frame(bench)) == 1500 + 810  # segment-challenge + segment-test


# ---------------------------------------------------------------------------- errors
def test_missing_package_is_a_one_line_error(monkeypatch, tmp_path):
    gone = dataclasses.replace(BENCHMARK_SETS["letter"], path=str(tmp_path / "LetterRecognition.rda"))
    monkeypatch.setitem(BENCHMARK_SETS, "letter", gone)
    text = one_line_error(
        r"data.set=letter needs the package r-cran-mlbench: apt-get install r-cran-mlbench",
        load_bench_table,
        bench_cfg("letter"),
    )
    assert "LetterRecognition.rda not found" in text
    assert dict(available_sets())["letter"] == "r-cran-mlbench"


def test_missing_r_reader_names_the_pypi_package(monkeypatch):
    installed("concrete")
    monkeypatch.setitem(sys.modules, "rdata", None)  # import rdata raises ImportError
    assert missing_package(BENCHMARK_SETS["concrete"]) == "rdata"
    one_line_error(r"needs the package rdata: pip install rdata$", load_bench_table, bench_cfg("concrete"))
    assert missing_package(BENCHMARK_SETS["digits"]) is None


@pytest.mark.parametrize("name", [None, "nope"])
def test_unknown_set_lists_the_names(name):
    one_line_error(r"data.set=.* is unknown; choose one of letter, satellite", load_bench_table, bench_cfg(name))
