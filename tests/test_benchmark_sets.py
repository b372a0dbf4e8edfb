"""The benchmark registry (issue 27): real tables that installed packages ship, each read through
the table path with its fixed test split; a set whose package is missing is a one-line error
naming it. Real files only: a set is skipped where its package is not installed."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from supernet.data import benchmark_sets
from supernet.data.benchmark_sets import (
    BENCHMARK_SETS,
    available_sets,
    load_bench_table,
    missing_package,
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
    assert tasks.count("classification") >= 10 and tasks.count("regression") >= 3
    assert all(s.rows >= 500 for s in BENCHMARK_SETS.values())
    assert sum(s.rows > 5000 for s in BENCHMARK_SETS.values()) >= 3
    for s in BENCHMARK_SETS.values():
        assert s.package and s.target and s.description and s.features >= 1, s
        assert s.reader in ("arff", "rda", "rdb", "sklearn"), s
        assert s.reader == "sklearn" or s.files, s


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
    assert len(df) == bench.rows >= 500 and len(df.columns) == bench.features + 1
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
