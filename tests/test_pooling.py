"""Pooling rank jobs of one supernet over several samples (``supernet-report``'s pooled section),
on a real digits supernet and real stand-alone training.

    .venv/bin/python -m pytest tests/test_pooling.py -q
"""

from __future__ import annotations

import csv
import statistics

import pytest
from scipy import stats

from supernet.fidelity.metrics import with_size
from supernet.fidelity.pooling import pool_key

from conftest import read_json, run_cli


def _doc(**changes):
    doc = {
        "ckpt_sha256": "abc",
        "data": "data=digits",
        "recipe": {"epochs": 10, "lr": 0.001},
        "seeds": [0, 1],
        "seed": 0,
        "rank": {"n": 50, "bands": [100000, 400000], "finetune": {"steps": 0, "lr": 0.0003}},
    }
    for key, value in changes.items():
        doc[key] = value
    return doc


def test_pool_key_ignores_the_sample_but_not_the_target_or_the_predictor():
    base = pool_key(_doc())
    assert pool_key(_doc(seed=3, rank={**_doc()["rank"], "n": 20, "cache": "x.json"})) == base
    # A fine-tune that is off is the same whatever its other settings.
    assert pool_key(_doc(rank={**_doc()["rank"], "finetune": {"steps": 0, "lr": 0.1}})) == base
    for other in (
        _doc(ckpt_sha256="def"),
        _doc(data="data=fashion_mnist"),
        _doc(recipe={"epochs": 5, "lr": 0.001}),
        _doc(seeds=[0, 1, 2]),
        _doc(rank={**_doc()["rank"], "bands": [50000]}),
        _doc(rank={**_doc()["rank"], "finetune": {"steps": 100, "lr": 0.0003}}),
    ):
        assert pool_key(other) != base


def _rows(job):
    with open(job / "rank.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_report_pools_each_supernets_samples_into_one_report(digits_ckpt, tmp_path):
    """Two samples (seed=0,1) under two stand-alone recipes (epochs=1,2): two pools of two jobs,
    each one report over the union of its jobs' archs."""
    sweep = tmp_path / "rank"
    args = ["rank.n=8", "rank.seeds=2", "rank.finetune.steps=10", f"rank.cache={tmp_path / 'cache.json'}"]
    proc = run_cli(
        "supernet-rank", "-m", f"ckpt_path={digits_ckpt}", "seed=0,1", "rank.epochs=1,2", *args,
        "logger=none", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = run_cli("supernet-report", str(sweep))
    assert report.returncode == 0, report.stderr

    pools = read_json(sweep / "pooled.json")["pools"]
    assert len(pools) == 2
    for pool in pools:
        assert pool["samples"] == [0, 1] and len(pool["jobs"]) == 2
        jobs = [sweep / j for j in pool["jobs"]]
        epochs = {read_json(j / "rank.json")["recipe"]["epochs"] for j in jobs}
        assert len(epochs) == 1  # never two recipes in one pool
        rows = {}
        for job in jobs:
            for r in _rows(job):
                rows.setdefault(r["arch"], r)
        assert pool["n"] == len(rows) > 8  # two samples of 8 share some archs, not all
        inherited = [float(r["inherited_acc"]) for r in rows.values()]
        target = [
            statistics.fmean([float(r["standalone_acc_seed0"]), float(r["standalone_acc_seed1"])])
            for r in rows.values()
        ]
        size = [int(r["params"]) for r in rows.values()]
        overall = pool["inherited"]["all"]
        assert overall["kendall_tau"] == pytest.approx(stats.kendalltau(inherited, target).statistic)
        assert overall["params_tau"] == pytest.approx(stats.kendalltau(size, target).statistic)
        low, high = overall["params_gap_ci"]
        assert low <= overall["params_gap"] <= high
        tuned = [-float(r["finetuned_loss"]) for r in rows.values()]  # the default score: val loss
        assert pool["finetuned"]["all"]["kendall_tau"] == pytest.approx(stats.kendalltau(tuned, target).statistic)
        # The mean rank with size is taken over the pooled archs, not copied from a job.
        for key, scores in (("with_size", inherited), ("finetuned_with_size", tuned)):
            tau = stats.kendalltau(with_size(scores, size), target).statistic
            assert pool[key]["all"]["kendall_tau"] == pytest.approx(tau)
        assert pool["finetune"]["steps"] == 10

    text = (sweep / "report.md").read_text()
    assert "## Pooled over samples" in text
    lines = [line for line in text.splitlines() if line.startswith(f"| {digits_ckpt} | 0,1 | ")]
    assert len(lines) == 8  # two pools, each ranked four ways: inherited acc, fine-tuned, either + size
    assert sum("| val loss after a 10-step fine-tune |" in line for line in lines) == 2
    assert sum("| inherited acc + size (mean rank) |" in line for line in lines) == 2
