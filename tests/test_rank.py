"""``supernet-rank`` end to end and its bad inputs (supernet/commands/rank.py), on a real digits
supernet.

    .venv/bin/python -m pytest tests/test_rank.py -q
"""

from __future__ import annotations

import csv
import re

import pytest
from scipy import stats

from supernet.commands import rank as rank_job
from supernet.errors import UsageError
from supernet.fidelity.metrics import kendall_tau, with_size

from conftest import make_cfg, read_json, run_cli


@pytest.mark.slow
def test_rank_end_to_end(digits_ckpt, tmp_path):
    cache = tmp_path / "cache.json"
    args = [f"ckpt_path={digits_ckpt}", "rank.n=6", "rank.epochs=1", "rank.seeds=2", f"rank.cache={cache}"]
    env = {"OMP_NUM_THREADS": "1"}
    proc = run_cli("supernet-rank", *args, f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    for name in ("rank.json", "rank.csv", "rank.png", "result.json"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    doc = read_json(run / "rank.json")
    assert doc["timing"]["standalone_trained"] == 12 and "verdict" in doc
    assert doc["metric"] == {"name": "accuracy", "key": "val_acc", "higher_is_better": True}
    assert doc["rank"]["bootstrap"] == 2000 and doc["all"]["params_gap"] is not None
    assert doc["all"]["kendall_tau_ci"] is None  # 6 archs: too few for an interval
    assert doc["verdict"] in proc.stdout and "supernet-report" in proc.stdout  # the verdict, then what to do next
    with open(run / "rank.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {"standalone_acc_seed0", "standalone_acc_seed1", "standalone_acc_mean"} <= set(rows[0])
    assert all(0.0 <= float(r["inherited_acc"]) <= 1.0 for r in rows)
    # The report's correlations, recomputed with scipy from the columns the job wrote.
    column = {k: [float(r[k]) for r in rows] for k in rows[0] if k not in ("arch", "band")}
    target = column["standalone_acc_mean"]
    expected = {
        "kendall_tau": stats.kendalltau(column["inherited_acc"], target).statistic,
        "spearman_rho": stats.spearmanr(column["inherited_acc"], target).statistic,
        "params_tau": stats.kendalltau(column["params"], target).statistic,
        "noise_tau": stats.kendalltau(column["standalone_acc_seed0"], column["standalone_acc_seed1"]).statistic,
    }
    assert {k: doc["all"][k] for k in expected} == pytest.approx(expected)
    # Inherited acc and size together: a full report of its own, recomputed from the rows.
    both = with_size([float(r["inherited_acc"]) for r in rows], [int(r["params"]) for r in rows])
    target = [float(r["standalone_acc_mean"]) for r in rows]
    assert doc["with_size"]["all"]["kendall_tau"] == pytest.approx(kendall_tau(both, target))
    assert doc["with_size"]["verdict"].startswith("ranked by inherited acc + size (mean rank): ")
    assert doc["with_size"]["verdict"] in proc.stdout

    # A rerun (in-process: the job the command runs) reuses every stand-alone result.
    result = rank_job.run(make_cfg("rank", [*args, "logger=none"]), tmp_path / "again")
    assert result["timing"]["standalone_trained"] == 0 and result["timing"]["standalone_cached"] == 12
    assert result["objective"] == doc["all"]["kendall_tau"]
    assert result["with_size"]["kendall_tau"] == doc["with_size"]["all"]["kendall_tau"]
    assert read_json(tmp_path / "again" / "result.json")["status"] == "ok"


@pytest.mark.slow
def test_rank_bad_input_exits_2(digits_ckpt, tmp_path):
    proc = run_cli("supernet-rank", f"ckpt_path={digits_ckpt}", "rank.epochs=0", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines == ["error: rank.epochs=0 must be an integer >= 1 (a recipe with no steps cannot train)"]
    assert not (tmp_path / "rank.json").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("rank.n=2", "rank.n=2 must be an integer >= 3"),
        ("rank.epochs=0", "rank.epochs=0 must be an integer >= 1"),
        ("rank.lr=-1", "rank.lr=-1 must be a number > 0"),
        ("rank.bands=[400000,100000]", "must be positive and increasing"),
        ("rank.bootstrap=-1", "rank.bootstrap=-1 must be an integer >= 0"),
        ("rank.bootstrap=10", "rank.bootstrap=10 is too few resamples for a 95% interval: use 0 (no intervals) or"),
        ("rank.metric=auc", "rank.metric='auc' is unknown; choose one of ["),
        ("ckpt_path=null", "ckpt_path is required"),
    ],
)
def test_rank_bad_input_before_any_work(tmp_path, override, message):
    # The checkpoint does not exist: these errors come before it is even read.
    cfg = make_cfg("rank", [f"ckpt_path={tmp_path / 'missing.ckpt'}", override, "rank.cache=null", "logger=none"])
    with pytest.raises(UsageError, match=re.escape(message)):
        rank_job.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "metric, message",
    [
        (
            "roc_auc",
            "rank.metric=roc_auc needs two classes but the data has 10: "
            "use one of ['accuracy', 'balanced_accuracy', 'log_loss']",
        ),
        (
            "rmse",
            "rank.metric=rmse is a regression metric but the task is classification: "
            "use one of ['accuracy', 'balanced_accuracy', 'log_loss']",
        ),
    ],
)
def test_rank_metric_that_does_not_fit_the_task(digits_ckpt, tmp_path, metric, message):
    """Checked against the checkpoint's task, before any data is read or anything written."""
    proc = run_cli(
        "supernet-rank", f"ckpt_path={digits_ckpt}", f"rank.metric={metric}", "logger=none", f"hydra.run.dir={tmp_path}"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines
    assert not (tmp_path / "rank.json").exists() and not (tmp_path / "rank.csv").exists()


@pytest.mark.slow
def test_rank_by_balanced_accuracy_names_its_columns(digits_ckpt, tmp_path):
    args = [f"ckpt_path={digits_ckpt}", "rank.n=5", "rank.epochs=1", "rank.seeds=1", "rank.finetune.steps=0"]
    cfg = make_cfg("rank", [*args, "rank.metric=balanced_accuracy", "rank.cache=null", "logger=none"])
    result = rank_job.run(cfg, tmp_path / "run")
    assert result["metric"] == "balanced_accuracy"
    with open(tmp_path / "run" / "rank.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"inherited_balanced_accuracy", "standalone_balanced_accuracy_seed0"} <= set(rows[0])
    assert all(0.0 <= float(r["inherited_balanced_accuracy"]) <= 1.0 for r in rows)
    doc = read_json(tmp_path / "run" / "rank.json")
    assert doc["metric"]["key"] == "val_balanced_accuracy" and doc["rank"]["metric"] == "balanced_accuracy"


@pytest.mark.slow
def test_rank_n_above_space_size(digits_ckpt, tmp_path):
    cfg = make_cfg("rank", [f"ckpt_path={digits_ckpt}", "rank.n=100000000", "rank.cache=null", "logger=none"])
    with pytest.raises(UsageError, match=r"rank.n=100000000 is above the \d+ archs in the space"):
        rank_job.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
