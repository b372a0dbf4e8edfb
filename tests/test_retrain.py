"""Retraining an export: inherited vs scratch init, val/test metrics, retrained export, compare table.

    .venv/bin/python -m pytest tests/test_retrain.py -q

Tiny runs: digits, 1 epoch, batch 64, CPU.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from supernet import load_subnet
from supernet.commands.retrain import recipe_of
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.io.checkpoint import data_config, load_supernet
from supernet.io.export import export_subnet
from supernet.train.retrain import RetrainRequest, check_recipe, retrain_subnet
from supernet.train.subnet_module import SubnetModule, random_shift

from conftest import make_cfg, read_json, run_cli

ARCH = (64, 32)
FAST = [
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "retrain.batch_size=64",
    "retrain.onnx=false",
]


@pytest.fixture(scope="module")
def subnet_dir(digits_ckpt, tmp_path_factory):
    supernet = load_supernet(digits_ckpt)
    out = tmp_path_factory.mktemp("retrain") / "subnet"
    export_subnet(supernet, ARCH, out, verify_x=load_data(data_config(supernet)).val_x[:64], onnx=False)
    return out


def test_random_shift_moves_pixels_and_fills_black():
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 2] = 1.0
    x = img.reshape(1, -1).repeat(200, 1)
    fill = torch.tensor([-0.5])
    out = random_shift(x, (1, 5, 5), 1, fill).reshape(200, 5, 5)
    assert out.shape == (200, 5, 5)
    assert torch.all((out == 1.0).sum(dim=(1, 2)) == 1)  # the bright pixel moved, never lost at shift 1
    positions = {tuple(torch.nonzero(o == 1.0)[0].tolist()) for o in out}
    assert positions <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(positions) > 1
    border = random_shift(torch.zeros(50, 25), (1, 5, 5), 2, fill)
    assert set(border.unique().tolist()) <= {0.0, -0.5}  # uncovered pixels take the fill value


def test_random_shift_equals_slicing_each_padded_image():
    """The one-gather shift is each image's own window of its fill-padded copy, offsets drawn as before."""
    shape, s = (3, 6, 7), 2
    x, fill = torch.randn(40, 3 * 6 * 7), torch.tensor([-0.5, 0.25, 1.0])
    torch.manual_seed(0)
    out = random_shift(x, shape, s, fill).reshape(40, 3, 6, 7)
    torch.manual_seed(0)
    dy, dx = torch.randint(0, 2 * s + 1, (40,)), torch.randint(0, 2 * s + 1, (40,))
    padded = fill[None, :, None, None].repeat(40, 1, 6 + 2 * s, 7 + 2 * s)
    padded[:, :, s:-s, s:-s] = x.reshape(40, 3, 6, 7)
    for i in range(40):
        assert torch.equal(out[i], padded[i, :, dy[i] : dy[i] + 6, dx[i] : dx[i] + 7])


def test_scratch_init_is_seeded(subnet_dir):
    meta = load_subnet(subnet_dir).meta
    optim = {"name": "adamw", "lr": 1e-3}
    a, b, c = (SubnetModule(meta, optim, seed=s).model.layers[0].weight for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_recipes_are_refused():
    good = {"optim": {"name": "adamw", "lr": 1e-3}, "dropout": 0.1, "label_smoothing": 0.1, "augment": {"shift": 1}}
    check_recipe(good)
    check_recipe({**good, "dropout": "auto", "label_smoothing": "auto"})  # chosen by the table's size
    for key, value, match in (
        ("dropout", 1.5, "retrain.dropout=1.5"),
        ("label_smoothing", "big", "retrain.label_smoothing='big' must be in"),
        ("augment", {"shift": -1}, "augment.shift"),
        ("optim", {"name": "adam", "lr": 1}, "optim.name"),
        ("batch_size", 0, "batch_size"),
    ):
        with pytest.raises(UsageError, match=match):
            check_recipe({**good, key: value})


@pytest.mark.slow
def test_retrain_compare_inherited_finetuned_scratch(subnet_dir, tmp_path):
    cfg = make_cfg("retrain", [*FAST, "retrain.augment.shift=1", "retrain.dropout=0.1"])
    out = tmp_path / "run"
    request = RetrainRequest(
        subnet_dir, recipe_of(cfg), cfg.data, cfg.trainer, out, init="inherited", compare=True, tensorboard=False
    )
    result = retrain_subnet(request)
    rows = {r["finish"]: r for r in result["compare"]}
    assert set(rows) == {"inherited only", "fine-tuned", "from scratch"}
    for r in rows.values():
        assert r["test_acc"] > 0.3 and r["val_acc"] > 0.3  # chance is 0.1
    assert rows["fine-tuned"]["epochs"] == 1 and rows["inherited only"]["epochs"] == 0
    table = (out / "compare.md").read_text()
    assert "| inherited only |" in table and "| from scratch |" in table
    for variant in ("finetuned", "scratch"):
        metrics = read_json(out / variant / "metrics.json")
        assert metrics["test_acc"] > 0.3 and metrics["val_acc"] > 0.3
    assert (
        result["paths"]["subnet"] == str(out / "finetuned" / "subnet")
        and result["objective"] == rows["fine-tuned"]["val_acc"]
    )
    # The retrained export is a full export: it reproduces the reported validation accuracy on raw inputs.
    retrained = load_subnet(result["paths"]["subnet"])
    assert retrained.meta["retrain"]["init"] == "inherited" and retrained.arch == ARCH
    bundle = load_data(retrained.meta["data"]["config"])
    mean = torch.tensor(retrained.meta["normalization"]["mean"])
    std = torch.tensor(retrained.meta["normalization"]["std"])
    raw = bundle.val_x * std + mean
    with torch.no_grad():
        acc = (retrained(raw).argmax(-1) == bundle.val_y).float().mean().item()
    assert abs(acc - rows["fine-tuned"]["val_acc"]) < 1e-6
    assert read_json(out / "result.json")["compare"] == result["compare"]


def test_retrain_rejects_bad_subnets(tmp_path):
    cfg = make_cfg("retrain", FAST)
    (tmp_path / "model.pt").write_bytes(b"\x80\x04not really")
    with pytest.raises(UsageError, match="never unpickles"):
        retrain_subnet(RetrainRequest(tmp_path / "model.pt", recipe_of(cfg), cfg.data, cfg.trainer, tmp_path / "run"))
    with pytest.raises(UsageError, match="init='warm'"):
        retrain_subnet(RetrainRequest(tmp_path, recipe_of(cfg), cfg.data, cfg.trainer, tmp_path / "run", init="warm"))


@pytest.mark.slow
def test_cli_retrain_scratch(subnet_dir, tmp_path):
    run = tmp_path / "run"
    proc = run_cli("supernet-retrain", f"subnet={subnet_dir}", "init=scratch", *FAST, f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = read_json(run / "metrics.json")
    assert metrics["init"] == "scratch" and metrics["test_acc"] > 0.3
    meta = yaml.safe_load((run / "subnet" / "arch.yaml").read_text())
    assert meta["retrain"]["test_acc"] == metrics["test_acc"] and meta["weights_from"] == "retrained (init=scratch)"


def _retrain_with(subnet_dir, out, *overrides):
    cfg = make_cfg("retrain", [*FAST, *overrides])
    request = RetrainRequest(subnet_dir, recipe_of(cfg), cfg.data, cfg.trainer, out, init="scratch", tensorboard=False)
    return retrain_subnet(request)["metrics"]


def test_best_epoch_keeps_the_best_validation_weights(subnet_dir, tmp_path):
    """The same seeded run with and without best-epoch selection: the kept epoch is at least as
    good on validation as the last one, and the export reproduces the kept epoch's figure."""
    common = ("trainer.max_epochs=4", "optim.lr=0.05")
    last = _retrain_with(subnet_dir, tmp_path / "last", *common, "retrain.best_epoch=false")
    best = _retrain_with(subnet_dir, tmp_path / "best", *common, "retrain.best_epoch=true")
    assert last["best_epoch"] is None and 1 <= best["best_epoch"] <= best["epochs"] == last["epochs"] == 4
    assert best["val_acc"] >= last["val_acc"]
    if best["best_epoch"] == 4:
        assert best["val_acc"] == last["val_acc"]


def test_patience_stops_a_run_that_no_longer_improves(subnet_dir, tmp_path):
    patience = ("trainer.max_epochs=40", "retrain.patience=1", "retrain.best_epoch=true", "optim.lr=0.05")
    metrics = _retrain_with(subnet_dir, tmp_path / "p", *patience)
    assert metrics["epochs"] < 40 and metrics["best_epoch"] < metrics["epochs"]
    assert metrics["val_acc"] > 0.5


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [("patience", 0, "retrain.patience=0 must be a whole number"), ("best_epoch", "yes", "retrain.best_epoch=")],
)
def test_bad_selection_settings(key, value, match):
    with pytest.raises(UsageError, match=match):
        check_recipe({"optim": {"name": "adamw", "lr": 1e-3}, key: value})


def test_min_steps_adds_passes_to_a_short_retrain(subnet_dir, tmp_path):
    """digits' training split at batch 64 is 18 batches an epoch: 1 epoch and min_steps=40 make 3 passes."""
    metrics = _retrain_with(subnet_dir, tmp_path / "m", "retrain.min_steps=40")
    assert metrics["epochs"] == 1 and metrics["global_step"] == 3 * 18
    plain = _retrain_with(subnet_dir, tmp_path / "p", "retrain.min_steps=10")
    assert plain["epochs"] == 1 and plain["global_step"] == 18  # the floor is below one epoch's steps


@pytest.mark.parametrize("value", [0, -5, 2.5, "many"])
def test_bad_min_steps(value):
    with pytest.raises(UsageError, match=r"retrain.min_steps=.* must be a whole number of optimizer steps"):
        check_recipe({"optim": {"name": "adamw", "lr": 1e-3}, "min_steps": value})


@pytest.mark.parametrize(
    ("rows", "regression", "expected"),
    [(600, False, (0.2, 0.0)), (1500, False, (0.0, 0.0)), (600, True, (0.2, 0.0)), (1500, True, (0.0, 0.0))],
)
def test_auto_recipe_follows_the_training_rows(rows, regression, expected):
    """``auto``: dropout on a small table, none on a larger one; no table smooths its labels
    (the confirm group, docs/decisions.md); a number stays itself."""
    from types import SimpleNamespace

    from supernet.core.task import Task
    from supernet.train.retrain import resolved_recipe

    task = Task("regression" if regression else "classification")
    bundle = SimpleNamespace(train_x=torch.zeros(rows, 3), task=task)
    got = resolved_recipe({"dropout": "auto", "label_smoothing": "auto", "lr": 1}, bundle)
    assert (got["dropout"], got["label_smoothing"], got["lr"]) == (*expected, 1)
    assert resolved_recipe({"dropout": 0.3, "label_smoothing": "auto"}, bundle)["dropout"] == 0.3
