"""Issue 38: one typed settings object per run, checked once where the command starts, every
``auto`` resolved in one step that says what each became in one line; the phases take the run's
settings, a hook returns a changed copy."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import sys
import time

import numpy as np
import pandas as pd
import pytest

from supernet.commands import pipeline
from supernet.data.table_recipe import AUTO, Auto, auto_line, decide, reported_later

from conftest import make_cfg, read_json

TINY = [
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "train.min_steps=null",
    "retrain.min_steps=null",
    "space.depth.max=2",
    "space.width.max=32",
    "search.finetune.top=0",
    "retrain.max_epochs=1",
    "logger=none",
    "figures=false",
    "export.onnx=false",
]


def counted(monkeypatch, origin: str, name: str) -> list:
    """Every call of `origin.name`, wherever the package imported it, counted (the function still runs)."""
    original = getattr(importlib.import_module(origin), name)
    calls: list = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("supernet") and getattr(module, name, None) is original:
            monkeypatch.setattr(module, name, wrapper)
    return calls


def checks(monkeypatch) -> tuple[list, list]:
    importlib.import_module("supernet.train.fit")
    return (
        counted(monkeypatch, "supernet.config", "check_trainer_config"),
        counted(monkeypatch, "supernet.train.retrain", "check_recipe"),
    )


@pytest.mark.slow
def test_a_run_checks_its_trainer_and_recipe_once(tmp_path, monkeypatch, capsys):
    trainer, recipe = checks(monkeypatch)
    search = ["search.budget=8", "search.population=4", "search.tournament=2", "search.parents=2"]
    cfg = make_cfg("pipeline", [*TINY, *search])
    result = pipeline.run(cfg, tmp_path / "run")
    assert result["status"] == "ok" and "retrain" in result["phases"]
    assert (len(trainer), len(recipe)) == (1, 1)


def breast_cancer_csv(path):
    from sklearn.datasets import load_breast_cancer

    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)  # 569 rows: 364 train every auto small
    return path


@pytest.mark.slow
def test_a_table_run_says_every_auto_in_one_line_and_checks_once(tmp_path, monkeypatch, caplog, capsys):
    """A CSV with every auto (the data's, the search's, the retraining's): one line says what
    each became; the bagged members reuse the winner's checked recipe and trainer."""
    trainer, recipe = checks(monkeypatch)
    data = ["data=csv", f"data.path={breast_cancer_csv(tmp_path / 'bc.csv')}", "data.target=target"]
    cfg = make_cfg("pipeline", [*data, *TINY])
    with caplog.at_level(logging.INFO, logger="supernet"):
        result = pipeline.run(cfg, tmp_path / "run")
    lines = [r.getMessage() for r in caplog.records if "=auto -> " in r.getMessage()]
    assert len(lines) == 1, lines
    (line,) = lines
    for key in ("data.task", "data.scaler", "data.periodic", "search.budget", "retrain.init", "retrain.ensemble"):
        assert f"{key}=auto -> " in line, key
    assert "retrain.dropout=auto -> 0.2, retrain.label_smoothing=auto -> 0.0 (364 training rows, 2 classes)" in line
    retrained = read_json(tmp_path / "run" / "retrain" / "result.json")
    assert (retrained["dropout"], retrained["label_smoothing"], retrained["init"]) == (0.2, 0.0, "inherited")
    assert (result["phases"]["retrain"]["dropout"], result["ensemble"]["k"], result["ensemble"]["from"]) == (
        0.2,
        5,
        "folds",
    )
    assert (len(trainer), len(recipe)) == (1, 1)  # six retrainings (the winner, five folds), checked once


def test_the_one_auto_step_says_what_and_why():
    assert decide("data.scaler", "robust", 100, False) == ("robust", None)  # not auto: itself, nothing to say
    value, auto = decide("retrain.label_smoothing", AUTO, 5000, True)
    assert value == 0.0 and auto == Auto("retrain.label_smoothing", 0.0, "5000 training rows")  # nothing to smooth
    task = decide("data.task", AUTO, rule=lambda: ("regression", "target 'y' holds 300 distinct numbers"))[1]
    assert str(task) == "data.task=auto -> regression: target 'y' holds 300 distinct numbers"  # as the loader logs it
    scaler = decide("data.scaler", AUTO, 364, False, 2)[1]
    budget = decide("search.budget", AUTO, 364, False, 2)[1]
    assert str(scaler) == "data.scaler=auto -> standard (364 training rows, 2 classes)"
    assert auto_line([task, scaler, budget]) == (
        "data.task=auto -> regression (target 'y' holds 300 distinct numbers), data.scaler=auto -> standard, "
        "search.budget=auto -> 50 (364 training rows, 2 classes)"
    )
    assert auto_line([]) is None


def test_the_loader_keeps_its_autos_with_the_data_and_says_them_later_when_asked(tmp_path, caplog):
    from supernet.data.datasets import load_data

    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)}).to_csv(tmp_path / "t.csv", index=False)
    data = make_cfg("pipeline", ["data=csv", f"data.path={tmp_path / 't.csv'}", "data.target=y"]).data
    with caplog.at_level(logging.INFO, logger="supernet.data"):
        alone = load_data(data)
    said = [r.getMessage() for r in caplog.records if "=auto -> " in r.getMessage()]
    assert [a.key for a in alone.autos] == ["data.task", "data.scaler", "data.periodic"] and len(said) == 3
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="supernet.data"), reported_later():
        later = load_data(data)
    assert later.autos == alone.autos and not [r for r in caplog.records if "=auto -> " in r.getMessage()]
    assert [a.value for a in later.autos] == ["regression", "standard", None]


def test_a_hook_returns_changed_settings_for_its_phase_only():
    from supernet.sklearn.phases import PhaseClock

    settings = pipeline.check_pipeline_config(make_cfg("pipeline", ["search.finetune.top=3"]))
    clock = PhaseClock(60.0, started=time.perf_counter(), verbose=0)
    searched = clock.before("search", settings)
    assert searched.search["finetune"]["top"] == 0 and searched.search.common.finetune.top == 0
    assert 0 < searched.search["time_budget_s"] <= 60 * 0.2 / 0.5 and searched.trainer == settings.trainer
    trained = clock.before("train", settings)
    assert 0 < trained.trainer["max_time"]["seconds"] <= 60 and trained.search is settings.search
    assert "max_time" not in settings.trainer or settings.trainer["max_time"] != trained.trainer["max_time"]
    assert settings.search["finetune"]["top"] == 3  # the run's own settings are as they were
    with pytest.raises(dataclasses.FrozenInstanceError):
        trained.trainer = {}  # type: ignore[misc]
    assert PhaseClock(None, 0.0, 0).before("retrain", settings) is settings  # no limit: the same object
