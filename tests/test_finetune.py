"""Scoring after a short fine-tune: the module, the search's final re-ranking and supernet-rank's
second predictor, on a real digits supernet. Marked slow: every test that needs that supernet
(trained by ``supernet-train`` once per session) or trains.

    .venv/bin/python -m pytest tests/test_finetune.py -q
"""

from __future__ import annotations

import csv

import pytest
import torch
from scipy import stats

from supernet.commands import rank as rank_job
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.evaluation.finetune import FinetuneRecipe, finetuned_scores
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.io.checkpoint import data_config, load_supernet

from conftest import make_cfg, read_json, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHS = [(8,), (16, 8), (64,), (128, 64), (32, 32)]


@pytest.fixture(scope="module")
def supernet(digits_ckpt):
    return load_supernet(digits_ckpt)


@pytest.fixture(scope="module")
def bundle(supernet):
    data = load_data(data_config(supernet))
    supernet.model.calibrate(data.train_x)  # each subnet's normalisation statistics (model.norm=batch)
    return data


def accuracies(*args, **kwargs) -> list[float]:
    return [s["acc"] for s in finetuned_scores(*args, **kwargs)]


@pytest.mark.slow
def test_zero_steps_is_inherited_accuracy_and_loss(supernet, bundle):
    inherited = InheritedEvaluator(supernet.model, supernet.space, bundle.val_x, bundle.val_y).accuracies(ARCHS)
    scores = finetuned_scores(supernet.model, ARCHS, bundle, FinetuneRecipe(steps=0))
    assert [s["acc"] for s in scores] == inherited
    for arch, s in zip(ARCHS, scores, strict=True):
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(supernet.model.extract(arch)(bundle.val_x), bundle.val_y)
        assert s["loss"] == pytest.approx(float(loss), rel=1e-5)


@pytest.mark.slow
def test_finetune_is_per_arch_and_leaves_the_supernet_alone(supernet, bundle):
    before = {k: v.clone() for k, v in supernet.model.state_dict().items()}
    recipe = FinetuneRecipe(steps=30, lr=1e-3, batch_size=64)
    together = finetuned_scores(supernet.model, ARCHS, bundle, recipe, seed=3)
    alone = [finetuned_scores(supernet.model, [a], bundle, recipe, seed=3)[0] for a in ARCHS]
    one_per_group = finetuned_scores(supernet.model, ARCHS, bundle, recipe, seed=3, group_params=1)
    assert together == alone == one_per_group  # a net's result does not depend on its group (CPU: exact)
    after = supernet.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    inherited = finetuned_scores(supernet.model, ARCHS, bundle, FinetuneRecipe(steps=0))
    assert all(t["loss"] != i["loss"] for t, i in zip(together, inherited, strict=True))  # the steps did something


@pytest.mark.slow
def test_finetune_lifts_an_undertrained_supernet(tmp_path):
    """One epoch of supernet training leaves its subnets short of what they can do; 100 steps of
    their own must close part of that gap for every one of them."""
    proc = run_cli(
        "supernet-train", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=none",
        f"hydra.run.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    sn = load_supernet(tmp_path / "checkpoints" / "last.ckpt")
    bundle = load_data(data_config(sn))
    sn.model.calibrate(bundle.train_x)
    inherited = accuracies(sn.model, ARCHS, bundle, FinetuneRecipe(steps=0))
    tuned = accuracies(sn.model, ARCHS, bundle, FinetuneRecipe(steps=100, lr=1e-3))
    assert all(t > i for t, i in zip(tuned, inherited, strict=True)), (inherited, tuned)


@pytest.mark.parametrize(
    "node, message",
    [
        ({"steps": -1}, "rank.finetune.steps=-1 must be an integer >= 0"),
        ({"batch_size": 0}, "rank.finetune.batch_size=0 must be an integer >= 1"),
        ({"lr": "fast"}, "rank.finetune.lr='fast' must be a number > 0"),
        ({"top": 3}, "rank.finetune.top is not a fine-tune setting: use steps, lr, batch_size, score"),
        ({"score": "auc"}, "rank.finetune.score='auc' must be one of loss, acc"),
    ],
)
def test_bad_recipe_is_a_usage_error(node, message):
    with pytest.raises(UsageError, match=message):
        FinetuneRecipe.from_cfg(node, "rank.finetune")


@pytest.mark.slow
def test_rank_with_a_finetuned_second_predictor(digits_ckpt, tmp_path):
    args = [f"ckpt_path={digits_ckpt}", "rank.n=8", "rank.epochs=1", "rank.seeds=2", "rank.cache=null", "logger=none"]
    result = rank_job.run(make_cfg("rank", [*args, "rank.finetune.steps=20"]), tmp_path)
    tuned = result["finetuned"]
    assert tuned["params_gap"] is not None
    assert tuned["verdict"].startswith("ranked by val loss after a 20-step fine-tune: ")
    doc = read_json(tmp_path / "rank.json")
    assert doc["rank"]["finetune"]["steps"] == 20 and doc["finetuned"]["all"]["n"] == 8
    assert result["finetuned_with_size"]["verdict"].startswith(
        "ranked by val loss after a 20-step fine-tune + size (mean rank): "
    )
    assert doc["finetuned_with_size"]["all"]["n"] == doc["with_size"]["all"]["n"] == 8
    assert doc["timing"]["finetune_s"] > 0
    with open(tmp_path / "rank.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(0.0 <= float(r["finetuned_acc"]) <= 1.0 and float(r["finetuned_loss"]) > 0 for r in rows)
    # Ranked by the default score, the validation loss (lower is better): tau from the written columns.
    target = [float(r["standalone_acc_mean"]) for r in rows]
    tau = stats.kendalltau([-float(r["finetuned_loss"]) for r in rows], target).statistic
    assert tuned["kendall_tau"] == pytest.approx(tau) == pytest.approx(doc["finetuned"]["all"]["kendall_tau"])
    assert any(r["finetuned_acc"] != r["inherited_acc"] for r in rows)


def test_rank_bad_finetune_setting_before_any_work(tmp_path):
    cfg = make_cfg("rank", [f"ckpt_path={tmp_path / 'missing.ckpt'}", "rank.finetune.steps=-5", "logger=none"])
    with pytest.raises(UsageError, match="rank.finetune.steps=-5 must be an integer >= 0"):
        rank_job.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_search_reranks_its_finalists_end_to_end(digits_run, tmp_path):
    args = [f"ckpt_path={digits_run}", "search.budget=200", "search.population=20", "logger=none"]
    proc = run_cli(
        "supernet-search", *args, "search.finetune.top=4", "search.finetune.steps=50", f"hydra.run.dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = read_json(tmp_path / "result.json")
    finalists = result["finetune"]["finalists"]
    assert len(finalists) == 4 and result["paths"]["finetune"].endswith("finetune.csv")
    best = min(finalists, key=lambda f: (f["finetuned_loss"], f["inherited_rank"]))
    assert result["best"]["arch"] == best["arch"] and result["best"]["finetuned_loss"] == best["finetuned_loss"]
    # The scores are the module's own: re-run them in-process (to float32 rounding: the CLI and
    # pytest may run torch on different thread counts, which reorders the sums).
    sn = load_supernet(digits_run / "checkpoints" / "last.ckpt")
    bundle = load_data(data_config(sn))
    sn.model.calibrate(bundle.train_x)
    again = finetuned_scores(sn.model, [tuple(f["arch"]) for f in finalists], bundle, FinetuneRecipe(steps=50), seed=0)
    assert [s["loss"] for s in again] == pytest.approx([f["finetuned_loss"] for f in finalists], rel=1e-5)
    assert [s["acc"] for s in again] == pytest.approx([f["finetuned_acc"] for f in finalists], abs=0.01)


@pytest.mark.slow
def test_standalone_search_refuses_a_finetune(digits_run, tmp_path):
    proc = run_cli(
        "supernet-search", f"ckpt_path={digits_run}", "search=standalone", "search.finetune.top=3",
        f"hydra.run.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-1500:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "search.finetune.top re-ranks candidates scored with inherited weights" in errors[0]
