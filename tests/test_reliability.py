"""Reliability: kill-and-resume gives identical results, corrupt files are refused, NaN steps are
caught, and bad input anywhere is a one-line error with exit code 2.

The kill tests send a real SIGKILL to a real training / search process.
"""

import os
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from supernet.core.space import SearchSpace
from supernet.data.datasets import load_data
from supernet.errors import NonFiniteLossError, UsageError
from supernet.io.checkpoint import read_checkpoint
from supernet.train.module import AtomicCheckpointIO, SupernetModule, TensorDataModule

from conftest import BIN, kill_when, read_json, run_cli

TRAIN_ARGS = ["trainer.max_epochs=3", "trainer.deterministic=true", "trainer.enable_progress_bar=false", "logger=none"]


def _weights(ckpt: Path) -> dict:
    """The averaged weights (``state_dict``) and the raw ones the optimizer moves, by name."""
    payload = read_checkpoint(ckpt)
    return {**payload["state_dict"], **{f"raw.{k}": v for k, v in payload["current_model_state"].items()}}


@pytest.mark.slow
def test_training_killed_and_resumed_is_identical(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_cli("supernet-train", *TRAIN_ARGS, f"hydra.run.dir={full}").returncode == 0
    last = killed / "checkpoints" / "last.ckpt"
    kill_when([str(BIN / "supernet-train"), *TRAIN_ARGS, f"hydra.run.dir={killed}"], last.exists)
    assert not (killed / "result.json").exists()  # really killed mid-run
    assert read_checkpoint(last)["epoch"] < 3 - 1  # ... before its last epoch ended
    proc = run_cli("supernet-train", *TRAIN_ARGS, f"ckpt_path={killed}", f"hydra.run.dir={tmp_path / 'resume'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = _weights(full / "checkpoints" / "last.ckpt"), _weights(last)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra, rb = read_json(full / "result.json"), read_json(killed / "result.json")
    val = {k: v for k, v in ra["metrics"].items() if k.startswith("val/")}
    assert val and val == {k: rb["metrics"][k] for k in val}
    assert ra["global_step"] == rb["global_step"] == 3 * 72


@pytest.mark.slow
def test_search_killed_and_resumed_is_identical(tmp_path, digits_run):
    args = [f"ckpt_path={digits_run}", "search.budget=400", "search.population=20", "logger=none"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_cli("supernet-search", *args, f"hydra.run.dir={full}").returncode == 0
    state = killed / "search_state.json"
    kill_when([str(BIN / "supernet-search"), *args, f"hydra.run.dir={killed}"], state.exists)
    proc = run_cli("supernet-search", *args, f"resume={killed}", f"hydra.run.dir={tmp_path / 'again'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (full / "history.csv").read_text() == (killed / "history.csv").read_text()
    assert read_json(full / "result.json")["best"] == read_json(killed / "result.json")["best"]


def test_corrupt_checkpoint_is_refused(tmp_path, digits_ckpt):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(digits_ckpt.read_bytes()[: digits_ckpt.stat().st_size // 2])
    with pytest.raises(UsageError, match="corrupt, truncated"):
        read_checkpoint(bad)
    proc = run_cli("supernet-search", f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 's'}")
    assert proc.returncode == 2 and "corrupt, truncated" in proc.stderr
    assert not (tmp_path / "s" / "history.csv").exists()


def test_pickled_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"supernet": {}, "state_dict": Evil()}, path)
    with pytest.raises(UsageError, match="not a safe checkpoint|corrupt"):
        read_checkpoint(path)
    assert not marker.exists()


class InjectNaN(pl.Callback):
    """Poisons one training sample from epoch 1 on (epoch 0 trains cleanly and is checkpointed)."""

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            trainer.datamodule.bundle.train_x[5, 0] = float("nan")


def _nan_run(tmp_path: Path, skip: bool):
    bundle = load_data({"name": "digits"})
    space = SearchSpace(64, 10, 1, 2, 8, 32, 8)
    module = SupernetModule(
        space.to_dict(), bundle.info(), {"name": "sandwich"}, {"name": "adamw", "lr": 0.005}, skip_nonfinite=skip
    )
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=1)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        callbacks=[ckpt, InjectNaN()],
        enable_model_summary=False,
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(module, datamodule=TensorDataModule(bundle, batch_size=64))
    return module, trainer


def test_nan_loss_stops_with_step_and_arch(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"at epoch 1, batch \d+, global step \d+ for arch \[\d+"):
        _nan_run(tmp_path, skip=False)
    # The last good checkpoint (end of epoch 0) is intact and finite.
    weights = read_checkpoint(tmp_path / "last.ckpt")["state_dict"]
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_nan_steps_skipped_when_asked(tmp_path):
    module, trainer = _nan_run(tmp_path, skip=True)
    assert module.nonfinite_skips == 1  # one poisoned sample -> one poisoned batch in epoch 1
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert trainer.callback_metrics["train/nonfinite_skips"] == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_async_nonfinite_watch_on_cuda():
    from supernet.train.module import NonFiniteWatch

    watch = NonFiniteWatch()
    watch.push(torch.tensor([1.0, 2.0], device="cuda"), 0, 0, 0, [(8,), (16,)])
    watch.push(torch.tensor([1.0, float("nan")], device="cuda"), 0, 1, 1, [(8,), (16,)])
    with pytest.raises(NonFiniteLossError, match=r"batch 1, global step 1 for arch \[16\]"):
        watch.check(block=True)
