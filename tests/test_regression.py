"""Regression end to end on tiny real data: the supernet learns standardised targets, the search
scores by RMSE, an export outputs the targets' own units (folded into its last layer, in
safetensors and ONNX alike) and retraining reports the task's metrics.

    .venv/bin/python -m pytest tests/test_regression.py -q      # ~40 s
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from supernet import load_subnet
from supernet.core.metrics import METRICS
from supernet.data.datasets import load_data
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.io.checkpoint import data_config
from supernet.io.export import ARCH_FILE, ONNX_FILE, export_subnet
from supernet.io.loading import load_for_scoring
from supernet.train.retrain import RetrainRequest, retrain_subnet

from conftest import read_json, run_cli

FRIEDMAN = ["data=friedman", "data.n_samples=1500", "data.batch_size=64", "space.width.max=64"]
TRAIN = ["trainer.max_epochs=6", "trainer.enable_progress_bar=false", "logger=none"]


def train(run_dir: Path, *overrides: str) -> Path:
    proc = run_cli("supernet-train", *overrides, *TRAIN, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def friedman_ckpt(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("friedman"), *FRIEDMAN)


@pytest.fixture(scope="module")
def scored(friedman_ckpt):
    supernet, bundle = load_for_scoring(friedman_ckpt)
    return supernet, bundle


def mean_rmse(bundle) -> float:
    """The RMSE of predicting the training mean on the validation split, in the targets' units."""
    y = bundle.task.to_units(bundle.val_y).double()
    mean = bundle.task.to_units(bundle.train_y).double().mean(0)
    return float(((y - mean) ** 2).mean(0).sqrt().mean())


@pytest.mark.slow
def test_the_supernet_learns_regression_better_than_the_mean(friedman_ckpt, scored):
    result = read_json(friedman_ckpt.parents[1] / "result.json")
    supernet, bundle = scored
    assert bundle.task.is_regression and bundle.task.targets == ("y",)
    # Trained on standardised targets: the split's mean is about 0 and its std about 1.
    assert abs(float(bundle.train_y.mean())) < 1e-4 and abs(float(bundle.train_y.std()) - 1) < 1e-3
    baseline = mean_rmse(bundle)
    assert result["metrics"]["val/rmse_max"] < 0.6 * baseline
    ev = InheritedEvaluator(
        supernet.model, supernet.space, bundle.val_x, bundle.val_y, metric=METRICS["rmse"], task=bundle.task
    )
    records = ev.evaluate([(64, 64, 64), (8,)])
    assert set(records[0]) >= {"val_rmse", "params", "flops"}
    assert records[0]["val_rmse"] < 0.6 * baseline
    # The batched prefix-tree pass gives what each extracted net gives on its own.
    net = supernet.model.extract((64, 64, 64))
    alone = METRICS["rmse"](net(bundle.val_x), bundle.val_y, bundle.task)
    assert records[0]["val_rmse"] == pytest.approx(alone, rel=1e-5)


@pytest.mark.slow
def test_a_regression_export_outputs_the_targets_units_in_safetensors_and_onnx(scored, tmp_path):
    supernet, bundle = scored
    arch = (32, 16)
    out = tmp_path / "subnet"
    export_subnet(supernet, arch, out, verify_x=bundle.val_x[:256])
    meta = yaml.safe_load((out / ARCH_FILE).read_text())
    assert meta["task"]["kind"] == "regression" and meta["task"]["targets"] == ["y"]
    assert len(meta["task"]["target_mean"]) == 1 and meta["num_classes"] == 1
    model = load_subnet(out)
    want = bundle.task.to_units(supernet.model.eval()(bundle.val_x, arch)).detach()
    got = model.mlp(bundle.val_x)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-5)
    # predict takes raw features and returns values in the targets' units, (N,) for one target.
    raw = bundle.val_x * torch.tensor(bundle.std) + torch.tensor(bundle.mean)
    values = model.predict(raw)
    assert values.shape == (len(raw),)
    assert np.allclose(values, want[:, 0].numpy(), atol=1e-3)
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(out / ONNX_FILE), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: raw.numpy()})[0]
    assert np.allclose(onnx_out[:, 0], values, atol=1e-3)


@pytest.mark.slow
def test_retraining_a_regression_export_reports_rmse_mae_r2(scored, tmp_path):
    supernet, bundle = scored
    export_subnet(supernet, (32, 16), tmp_path / "subnet", verify_x=bundle.val_x[:256], onnx=False)
    request = RetrainRequest(
        tmp_path / "subnet",
        {"optim": {"name": "adamw", "lr": 3e-3, "weight_decay": 0.0}, "batch_size": 64, "onnx": False},
        None,
        {"max_epochs": 3, "enable_progress_bar": False, "accelerator": "cpu"},
        tmp_path / "retrain",
        compare=True,
        tensorboard=False,
    )
    result = retrain_subnet(request)
    metrics = result["metrics"]
    assert {"val_rmse", "test_rmse", "val_mae", "test_mae", "val_r2", "test_r2"} <= set(metrics)
    assert metrics["val_rmse"] < mean_rmse(bundle) and metrics["val_r2"] > 0
    assert result["objective"] == metrics["val_rmse"]
    rows = {r["finish"]: r for r in result["compare"]}
    assert set(rows) == {"inherited only", "fine-tuned", "from scratch"}
    assert all(r["val_rmse"] > 0 for r in rows.values())
    # The retrained export reloads and predicts what retraining measured.
    model = load_subnet(result["paths"]["subnet"])
    again = METRICS["rmse"](bundle.task.standardise(model.mlp(bundle.val_x)), bundle.val_y, bundle.task)
    assert again == pytest.approx(metrics["val_rmse"], rel=1e-4)
    assert "val rmse" in (tmp_path / "retrain" / "compare.md").read_text()


@pytest.mark.slow
def test_a_multi_output_regression_exports_and_reloads_within_1e_5(tmp_path):
    ckpt = train(tmp_path / "run", "data=linnerud", "space.width.max=32", "data.batch_size=4")
    supernet, bundle = load_for_scoring(ckpt)
    assert bundle.num_classes == 3 and len(bundle.task.targets) == 3
    export_subnet(supernet, (16,), tmp_path / "subnet", verify_x=bundle.val_x)
    model = load_subnet(tmp_path / "subnet")
    raw = bundle.val_x * torch.tensor(bundle.std) + torch.tensor(bundle.mean)
    want = bundle.task.to_units(supernet.model.eval()(bundle.val_x, (16,))).detach().numpy()
    values = model.predict(raw)
    assert values.shape == (len(raw), 3)
    assert np.abs(values - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))


@pytest.mark.slow
def test_huber_loss_trains_and_travels_with_the_checkpoint(tmp_path):
    """(On a classification, ``loss=huber`` is refused: tests/test_bad_input.py.)"""
    ckpt = train(tmp_path / "huber", *FRIEDMAN, "loss=huber", "trainer.max_epochs=1")
    _, bundle = load_for_scoring(ckpt)
    assert bundle.task.loss == "huber"


@pytest.mark.slow
def test_the_data_config_of_a_regression_checkpoint_loads_the_same_split(scored):
    supernet, bundle = scored
    again = load_data(data_config(supernet))
    assert torch.equal(again.val_y, bundle.val_y) and again.task == bundle.task


@pytest.mark.slow
def test_a_killed_regression_search_resumes_to_the_identical_history(friedman_ckpt, tmp_path):
    from conftest import BIN, kill_when

    args = [f"ckpt_path={friedman_ckpt}", "search.budget=300", "search.population=20", "logger=none"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_cli("supernet-search", *args, f"hydra.run.dir={full}").returncode == 0
    kill_when([str(BIN / "supernet-search"), *args, f"hydra.run.dir={killed}"], (killed / "search_state.json").exists)
    proc = run_cli("supernet-search", *args, f"resume={killed}", f"hydra.run.dir={tmp_path / 'again'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = (full / "history.csv").read_text()
    assert history == (killed / "history.csv").read_text()
    assert "val_rmse" in history.splitlines()[0] and "val_acc" not in history.splitlines()[0]
    result = read_json(full / "result.json")
    assert result["metric"] == "rmse" and result["best"] == read_json(killed / "result.json")["best"]


@pytest.mark.slow
def test_class_weights_and_balanced_accuracy_find_the_minority_class(tmp_path):
    data = ["data=imbalanced", "data.n_samples=3000", "data.class_weight=balanced", "space.width.max=64"]
    ckpt = train(tmp_path / "run", *data, "trainer.max_epochs=4")
    search = ["search.metric=balanced_accuracy", "search.budget=100", "search.finetune.top=0", "logger=none"]
    proc = run_cli("supernet-search", f"ckpt_path={ckpt}", *search, f"hydra.run.dir={tmp_path / 's'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = read_json(tmp_path / "s" / "result.json")
    assert result["metric"] == "balanced_accuracy"
    # A constant prediction scores 0.5; the weighted supernet's best subnet is far above it.
    assert result["best"]["val_balanced_accuracy"] > 0.75
    supernet, bundle = load_for_scoring(ckpt)
    weights = bundle.task.class_weight
    assert weights is not None and weights[1] > 5 * weights[0]  # 95/5: the minority class weighs ~19x
