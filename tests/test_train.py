"""Training for real on digits: the figures the issue asks for, TensorBoard output, DDP; checkpoints
written atomically."""

import json
import os

import pytest
import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from supernet import load_supernet
from supernet.core.sampling import ArchSampler
from supernet.core.space import SearchSpace
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.io.checkpoint import read_checkpoint
from supernet.train.callbacks import EMAWeights
from supernet.train.module import AtomicCheckpointIO, SupernetModule, TensorDataModule

from conftest import read_json, run_cli


@pytest.mark.slow
def test_digits_five_epochs_reaches_the_issue_figures(tmp_path):
    proc = run_cli(
        "supernet-train", "trainer.max_epochs=5", "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = read_json(tmp_path / "result.json")
    assert result["metrics"]["val/acc_max"] >= 0.95
    assert result["metrics"]["val/acc_min"] >= 0.85
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    # TensorBoard: one run in the run dir with train/ and val/ tags and the HParams plugin data.
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/acc_min", "val/acc_mid", "val/acc_max", "hp/acc_max"} <= tags
    assert len(events.Scalars("val/acc_max")) == 5


def test_checkpoint_loads_as_supernet(digits_ckpt):
    sn = load_supernet(digits_ckpt)
    assert sn.space.in_features == 64 and sn.space.num_classes == 10
    assert sn.data["config"]["name"] == "digits"
    bundle = load_data(sn.data["config"])
    sn.model.calibrate(bundle.train_x)  # each subnet's normalisation statistics (model.norm=batch)
    acc = (sn.model(bundle.val_x, sn.space.largest()).argmax(1) == bundle.val_y).float().mean()
    assert acc > 0.8


def test_checkpoint_records_its_model_and_old_ones_load_shared_unnormalised(digits_ckpt, tmp_path):
    ckpt = torch.load(digits_ckpt, map_location="cpu", weights_only=True)
    assert ckpt["supernet"]["model"] == {"heads": "per_depth", "norm": "batch"}
    loaded = load_supernet(digits_ckpt).model
    assert (loaded.heads_kind, loaded.norm) == ("per_depth", "batch")
    # A checkpoint written before either choice existed: one shared head, no normalisation, no
    # "model" section.
    old = dict(ckpt, supernet={k: v for k, v in ckpt["supernet"].items() if k != "model"})
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith(("model.heads.", "model.norms."))}
    state["model.head.weight"] = ckpt["state_dict"]["model.heads.3.weight"]
    state["model.head.bias"] = ckpt["state_dict"]["model.heads.3.bias"]
    old["state_dict"] = state
    torch.save(old, tmp_path / "old.ckpt")
    sn = load_supernet(tmp_path / "old.ckpt")
    assert (sn.model.heads_kind, sn.model.norm) == ("shared", "none")
    x = torch.randn(3, 64)
    h = x
    for i in range(3):  # what such a checkpoint computes: Linear, ReLU on the first 8 units, no statistics
        h = torch.relu(h @ state[f"model.hidden.{i}.weight"][:8, : h.shape[1]].T + state[f"model.hidden.{i}.bias"][:8])
    expected = h @ state["model.head.weight"][:, :8].T + state["model.head.bias"]
    assert torch.allclose(sn.model(x, (8, 8, 8)), expected, atol=1e-5)


@pytest.mark.slow
def test_bad_heads_choice_is_one_line(tmp_path):
    proc = run_cli("supernet-train", "model.heads=tied", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.endswith("model.heads='tied' is unknown; choose one of ['per_depth', 'shared']")


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, message",
    [
        ("model.heads=shared", "was trained with model.heads=per_depth; resume it with model.heads=per_depth"),
        ("model.norm=none", "was trained with model.norm=batch; resume it with model.norm=batch"),
    ],
)
def test_resume_with_another_model_is_one_line(digits_ckpt, tmp_path, override, message):
    proc = run_cli("supernet-train", f"ckpt_path={digits_ckpt}", override, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.endswith(message)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.norm=layer"], "model.norm='layer' is unknown; choose one of ['none', 'batch']"),
        (
            ["data.batch_size=1"],
            "data.batch_size=1 has no batch statistics for model.norm=batch: use >= 2 or model.norm=none",
        ),
    ],
)
def test_bad_norm_choice_is_one_line(tmp_path, overrides, message):
    proc = run_cli("supernet-train", *overrides, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(message)


def test_sampler_is_seeded_per_step():
    space = SearchSpace(in_features=4, num_classes=2, depth_max=3, width_min=8, width_max=64, width_step=8)
    a = ArchSampler(space, "sandwich", n_random=2, seed=3)
    assert a.archs(1, 7) == ArchSampler(space, "sandwich", n_random=2, seed=3).archs(1, 7)
    assert a.archs(1, 7)[:2] == [space.largest(), space.smallest()]
    assert a.archs(1, 7) != a.archs(1, 8)


def test_sandwich_smallest_per_depth():
    space = SearchSpace(in_features=4, num_classes=2, depth_min=1, depth_max=3, width_min=8, width_max=64, width_step=8)
    sampler = ArchSampler(space, "sandwich", n_random=2, seed=0, smallest="per_depth")
    smallest = {sampler.archs(0, b)[1] for b in range(60)}
    assert smallest == {(8,), (8, 8), (8, 8, 8)}  # the narrowest net of every depth, not only (8,)
    assert ArchSampler(space, "sandwich", seed=0).archs(0, 5)[1] == space.smallest()  # default: global
    with pytest.raises(UsageError, match="sampler.smallest='tiny' is unknown"):
        ArchSampler.from_config(space, {"name": "sandwich", "smallest": "tiny"}, 0)


def test_random_paths_spread_over_log_params():
    space = SearchSpace(in_features=784, num_classes=10)
    cfg = {"name": "sandwich", "n_random": 2, "distribution": "log_params"}
    sampler = ArchSampler.from_config(space, cfg, seed=0)
    randoms = [a for b in range(300) for a in sampler.archs(0, b)[2:]]
    assert sum(space.params(a) < 100_000 for a in randoms) / len(randoms) > 0.25  # uniform widths: ~5%
    assert sampler.archs(0, 3)[:2] == [space.largest(), space.smallest()]
    uniform = ArchSampler.from_config(space, {"name": "uniform", "distribution": "log_params"}, seed=0)
    assert len(uniform.archs(0, 0)) == 1
    with pytest.raises(UsageError, match="sampler.distribution='flops' is unknown"):
        ArchSampler.from_config(space, {"name": "sandwich", "distribution": "flops"}, 0)


def test_normalisation_comes_from_the_training_split():
    bundle = load_data({"name": "digits"})
    assert abs(float(bundle.train_x.mean())) < 1e-5
    assert abs(float(bundle.train_x.std()) - 1) < 1e-3
    assert abs(float(bundle.val_x.mean())) > 1e-5  # val is normalised with train's statistics
    # The split is fixed by data.split_seed, not by the run seed.
    assert torch.equal(load_data({"name": "digits"}).val_y, bundle.val_y)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    proc = run_cli(
        "supernet-train",
        "trainer.max_epochs=5",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"hydra.run.dir={tmp_path}",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    # Each rank sees half the batches per epoch; quality must stay close to the 1-process run.
    assert result["metrics"]["val/acc_max"] >= 0.93
    assert result["global_step"] == 5 * 36  # 1151 samples / 2 ranks / batch 16 -> 36 steps per epoch


@pytest.mark.slow
def test_ema_checkpoint_holds_the_moving_average_of_the_raw_weights(tmp_path):
    """The checkpoint's weights (what search, export and rank read) are exactly the EMA of the
    weights after each optimizer step; the raw ones travel alongside for resuming."""

    class RawWeights(pl.Callback):
        def __init__(self):
            self.steps = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.steps.append({k: v.detach().clone() for k, v in module.state_dict().items()})

    bundle = load_data({"name": "digits", "val_size": 300, "limit_train": 256})
    space = SearchSpace(bundle.in_features, bundle.num_classes, depth_max=2, width_max=32, width_min=8, width_step=8)
    module = SupernetModule(space.to_dict(), bundle.info(), {"name": "sandwich"}, {"name": "adamw", "lr": 0.01})
    raw, decay = RawWeights(), 0.8
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True), raw, EMAWeights(decay)],
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(module, datamodule=TensorDataModule(bundle, batch_size=64))
    assert len(raw.steps) == 8
    expected = dict(raw.steps[0])  # the first update copies the weights
    for step in raw.steps[1:]:
        expected = {k: expected[k] + (1 - decay) * (step[k] - expected[k]) for k in expected}
    saved = read_checkpoint(tmp_path / "last.ckpt")
    for k, v in expected.items():
        torch.testing.assert_close(saved["state_dict"][k], v, rtol=1e-5, atol=1e-6)
        assert torch.equal(saved["current_model_state"][k], raw.steps[-1][k]), k
    assert not torch.equal(saved["state_dict"]["model.hidden.0.weight"], raw.steps[-1]["model.hidden.0.weight"])
    # After fit the module holds the average too, so an in-process caller scores the same weights.
    torch.testing.assert_close(module.state_dict()["model.hidden.0.weight"], expected["model.hidden.0.weight"])


@pytest.mark.slow
def test_ema_off_writes_the_last_steps_weights(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(
        "supernet-train", "trainer.max_epochs=1", "logger=none", "train.ema_decay=null", f"hydra.run.dir={run_dir}"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "current_model_state" not in read_checkpoint(run_dir / "checkpoints" / "last.ckpt")


def test_atomic_checkpoint_io_leaves_no_partial_file(tmp_path):
    """A crash between writing the new checkpoint and renaming it into place keeps the old one
    whole and leaves no temporary file behind; a direct (non-atomic) write would fail here."""
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1), "w": torch.ones(3)}, path)
    old = path.read_bytes()

    def crash(src, dst):
        raise KeyboardInterrupt(f"killed before renaming {src} to {dst}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", crash)
        mp.setattr(os, "rename", crash)
        with pytest.raises(KeyboardInterrupt):
            io.save_checkpoint({"step": torch.tensor(2), "w": torch.zeros(1000)}, path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert torch.load(path, weights_only=True)["step"] == 1
    io.save_checkpoint({"step": torch.tensor(3)}, path)  # and the next save goes through
    assert torch.load(path, weights_only=True)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_lightning_does_not_advertise_a_cloud_logger_at_each_trainer(caplog):
    import logging

    import supernet.train  # noqa: F401 - installs the filter

    # At INFO whatever another test (the bench quiets Lightning) left; put back as found.
    with caplog.at_level(logging.INFO, logger="pytorch_lightning"):
        pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    assert "litlogger" not in caplog.text
    assert "GPU available" in caplog.text  # Lightning's other lines still come through
