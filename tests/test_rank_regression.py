"""Ranking fidelity on a regression: stand-alone regressors, their cache entries per metric, and
``supernet-rank`` / ``supernet-score`` / ``supernet-report`` on a real ``data=friedman`` supernet.

    .venv/bin/python -m pytest tests/test_rank_regression.py -q -p no:xdist
"""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil

import pytest
import torch

from supernet.commands import rank as rank_job
from supernet.commands import score as score_job
from supernet.core.metrics import METRICS
from supernet.core.space import SearchSpace
from supernet.core.task import Task
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.evaluation import standalone
from supernet.evaluation.standalone import Recipe, StandaloneCache, data_identity, train_standalone
from supernet.evaluation.standalone_cache import cache_key
from supernet.evaluation.standalone_search import StandaloneEvaluator
from supernet.fidelity.pooling import pool_rank_jobs
from supernet.fidelity.report import write_report

from conftest import make_cfg, read_json, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

FRIEDMAN = ["data=friedman", "data.n_samples=600"]


@pytest.fixture(scope="module")
def friedman():
    return load_data({"name": "friedman", "n_samples": 600})


@pytest.fixture(scope="module")
def friedman_space(friedman):
    return SearchSpace(friedman.in_features, friedman.num_classes, 1, 2, 8, 64, 8)


def mean_rmse(bundle) -> float:
    """The validation RMSE, in the target's units, of predicting the training mean."""
    y = bundle.task.to_units(bundle.val_y.double())
    return float(((y - torch.tensor(bundle.task.target_mean, dtype=torch.float64)) ** 2).mean().sqrt())


def test_standalone_regressors_beat_the_mean_and_are_cached_per_metric(friedman, friedman_space, tmp_path):
    archs = [(16,), (64,), (32, 16)]
    recipe = Recipe(epochs=30, batch_size=32, lr=3e-3)
    cache = StandaloneCache(tmp_path / "cache.json")
    rmse = train_standalone(archs, friedman_space, friedman, recipe, [0], cache=cache, metric=METRICS["rmse"])
    assert cache.misses == 3 and cache.hits == 0
    baseline = mean_rmse(friedman)
    assert all(v < 0.7 * baseline for v in rmse.values()), (rmse, baseline)
    # Every regression metric is measured and cached under its own key; no accuracy anywhere.
    entries = read_json(tmp_path / "cache.json")["entries"]
    assert len(entries) == 3
    for entry in entries.values():
        assert {"val_rmse", "val_mae", "val_r2"} <= set(entry) and "val_acc" not in entry
        assert entry["val_rmse"] == rmse[(tuple(entry["arch"]), 0)]

    # Another metric of the task: answered from the cache, nothing trained.
    again = StandaloneCache(tmp_path / "cache.json")
    mae = train_standalone(archs, friedman_space, friedman, recipe, [0], cache=again, metric=METRICS["mae"])
    assert again.misses == 0 and again.hits == 3
    assert all(0 < mae[k] < rmse[k] for k in mae)  # MAE <= RMSE, in the same units

    # An entry that holds an accuracy but no RMSE is a miss: trained again, never read as an RMSE.
    key = cache_key((64,), recipe, 0, data_identity(friedman))
    again.entries[key] = {"arch": [64], "seed": 0, "val_acc": 0.5}
    redo = train_standalone([(64,)], friedman_space, friedman, recipe, [0], cache=again, metric=METRICS["rmse"])
    assert again.misses == 1
    assert redo[((64,), 0)] == rmse[((64,), 0)]  # alone or in a group: the same net, bit for bit
    assert again.entries[key]["val_rmse"] == rmse[((64,), 0)]


def test_classification_entries_keep_their_accuracy_and_gain_other_metrics(digits, digits_space, tmp_path):
    """Accuracy entries are what they always were; a request for another metric trains again and
    adds it (with the same accuracy) to the entry; regression results never share their keys."""
    recipe = Recipe(epochs=1, batch_size=64)
    cache = StandaloneCache(tmp_path / "cache.json")
    acc = train_standalone([(32,)], digits_space, digits, recipe, [0], cache=cache)
    (entry,) = cache.entries.values()
    assert [k for k in entry if k.startswith("val_")] == ["val_acc"]
    balanced = METRICS["balanced_accuracy"]
    ba = train_standalone([(32,)], digits_space, digits, recipe, [0], cache=cache, metric=balanced)
    assert cache.misses == 2
    (entry,) = cache.entries.values()
    assert entry["val_acc"] == acc[((32,), 0)]  # the same net, measured again
    assert entry["val_balanced_accuracy"] == ba[((32,), 0)] and "val_log_loss" in entry
    again = train_standalone([(32,)], digits_space, digits, recipe, [0], cache=cache)
    assert again == acc and cache.hits == 1


def test_a_regression_is_scored_by_a_regression_metric(friedman, friedman_space):
    recipe = Recipe(epochs=1, batch_size=64)
    with pytest.raises(
        UsageError, match=r"scores accuracy, a classification metric, but data=friedman is a regression"
    ):
        train_standalone([(8,)], friedman_space, friedman, recipe, [0], metric=METRICS["accuracy"])
    # The search's stand-alone evaluator scores the task's default (RMSE) unless told otherwise.
    (record,) = StandaloneEvaluator(friedman_space, friedman, recipe).evaluate([(8,)])
    assert record["val_rmse"] > 0 and "val_acc" not in record
    (record,) = StandaloneEvaluator(friedman_space, friedman, recipe, metric=METRICS["r2"]).evaluate([(8,)])
    assert "val_r2" in record


def test_regression_identity_holds_the_task(friedman):
    key = data_identity(friedman)
    huber = copy.copy(friedman)
    huber.task = friedman.task.with_loss("huber")
    assert data_identity(huber) != key  # another loss trains other nets
    rescaled = copy.copy(friedman)
    rescaled.task = Task.from_dict({**friedman.task.to_dict(), "target_std": [2 * friedman.task.target_std[0]]})
    assert data_identity(rescaled) != key
    noisy = copy.copy(friedman)
    noisy.train_y = friedman.train_y * (1 + 1e-7)
    assert data_identity(noisy) == key  # float noise of another machine: the same data


@pytest.mark.parametrize(
    "task",
    [
        Task.from_dict({"kind": "regression", "loss": "mse", "targets": ["a", "b"]}),
        Task.from_dict({"kind": "regression", "loss": "huber", "targets": ["a", "b"]}),
        Task(class_weight=(0.5, 2.0)),
        Task(),
    ],
)
def test_stacked_loss_is_each_nets_task_loss_summed(task):
    g = torch.Generator().manual_seed(0)
    outputs = 3 * torch.randn(4, 32, 2, generator=g)
    y = torch.randn(32, 2, generator=g) if task.is_regression else torch.randint(0, 2, (32,), generator=g)
    want = sum(task.loss_fn(out, y) for out in outputs)
    torch.testing.assert_close(standalone.stacked_loss(task, outputs, y), want)


def test_padded_stack_trains_regressors_like_the_loop(friedman, friedman_space):
    archs = [(8,), (24,), (16, 8), (40, 16)]
    recipe = Recipe(epochs=2, batch_size=32)
    rmse = METRICS["rmse"]
    loop = train_standalone(archs, friedman_space, friedman, recipe, [0], padded=False, metric=rmse)
    stacked = train_standalone(archs, friedman_space, friedman, recipe, [0], padded=True, metric=rmse)
    assert stacked == pytest.approx(loop, rel=1e-4)


@pytest.fixture(scope="module")
def friedman_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("friedman_train")
    proc = run_cli(
        "supernet-train",
        *FRIEDMAN,
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_rank_a_regression_supernet_by_rmse(friedman_ckpt, tmp_path):
    cache = tmp_path / "cache.json"
    args = [f"ckpt_path={friedman_ckpt}", "rank.n=6", "rank.epochs=2", "rank.seeds=1", "logger=none"]
    run = tmp_path / "run"
    proc = run_cli("supernet-rank", *args, f"rank.cache={cache}", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = read_json(run / "rank.json")
    assert doc["metric"] == {"name": "rmse", "key": "val_rmse", "higher_is_better": False}
    assert doc["target"] == "mean stand-alone val_rmse over seeds"
    assert math.isfinite(doc["all"]["kendall_tau"]) and doc["all"]["regret"] >= 0
    assert read_json(run / "result.json")["metric"] == "rmse"
    assert doc["with_size"]["verdict"].startswith("ranked by inherited rmse + size (mean rank): ")
    with open(run / "rank.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"inherited_rmse", "standalone_rmse_seed0", "standalone_rmse_mean", "finetuned_rmse"} <= set(rows[0])
    assert not any("acc" in column for column in rows[0])
    assert all(float(r["standalone_rmse_mean"]) > 0 and float(r["inherited_rmse"]) > 0 for r in rows)
    # Lower is better: the regret is the stand-alone RMSE of the predictor's pick above the best one.
    pick = min(rows, key=lambda r: float(r["inherited_rmse"]))
    best = min(float(r["standalone_rmse_mean"]) for r in rows)
    assert doc["all"]["regret"] == pytest.approx(float(pick["standalone_rmse_mean"]) - best)
    # Bigger nets fit better: size ranks them the right way round (a positive tau).
    assert doc["all"]["params_tau"] > 0

    # The cache answers another regression metric without training; its values are MAEs.
    result = rank_job.run(make_cfg("rank", [*args, f"rank.cache={cache}", "rank.metric=mae"]), tmp_path / "mae")
    assert result["timing"]["standalone_trained"] == 0 and result["metric"] == "mae"
    assert read_json(tmp_path / "mae" / "rank.json")["metric"]["name"] == "mae"

    # Two samples of one supernet pool into one report, read in the metric's own columns.
    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    (twin / "rank.json").write_text(json.dumps({**doc, "seed": 1}))
    (pool,) = pool_rank_jobs([run, twin])
    assert pool.metric["name"] == "rmse" and pool.report["all"]["kendall_tau"] == pytest.approx(
        doc["all"]["kendall_tau"]
    )
    assert [name for name, _ in pool.rankings()][:2] == ["inherited rmse", "inherited rmse + size (mean rank)"]
    text = write_report(run)["md"].read_text()
    assert "Kendall tau vs stand-alone rmse" in text


@pytest.mark.slow
def test_rank_and_score_refuse_a_metric_of_the_other_task(friedman_ckpt, tmp_path):
    proc = run_cli(
        "supernet-rank",
        f"ckpt_path={friedman_ckpt}",
        "rank.metric=accuracy",
        "logger=none",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "rank.metric=accuracy is a classification metric but the task is regression" in lines[0]
    assert not (tmp_path / "rank.json").exists()
    archs = tmp_path / "archs.json"
    archs.write_text("[[16], [32, 8]]")
    cfg = make_cfg("score", [f"ckpt_path={friedman_ckpt}", f"archs_file={archs}", "metric=balanced_accuracy"])
    with pytest.raises(UsageError, match="metric=balanced_accuracy is a classification metric"):
        score_job.run(cfg, tmp_path / "score")
    assert not (tmp_path / "score").exists()


@pytest.mark.slow
def test_score_reports_the_metric_in_target_units(friedman_ckpt, friedman, tmp_path):
    archs = tmp_path / "archs.json"
    archs.write_text("[[16], [32, 8]]")
    base = [f"ckpt_path={friedman_ckpt}", f"archs_file={archs}", "split=test"]
    rmse = score_job.run(make_cfg("score", base), tmp_path / "rmse")
    assert rmse["metric"] == "rmse"
    assert all({"val_rmse", "test_rmse"} <= set(row) and "val_acc" not in row for row in rmse["scores"])
    # Target units: an RMSE on the scale of the target's spread (a standardised one would be ~1).
    assert all(0.2 * mean_rmse(friedman) < row["val_rmse"] < 3 * mean_rmse(friedman) for row in rmse["scores"])
    r2 = score_job.run(make_cfg("score", [*base, "metric=r2"]), tmp_path / "r2")
    assert all({"val_r2", "test_r2"} <= set(row) for row in r2["scores"])
    assert read_json(tmp_path / "r2" / "scores.json")["metric"] == "r2"
