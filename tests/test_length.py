"""Training length by steps (supernet/train/length.py): a small table's run is sized by
``min_steps``, a large one keeps ``trainer.max_epochs``.

    .venv/bin/python -m pytest tests/test_length.py -q
"""

from __future__ import annotations

import pytest
import torch

from supernet.data.datasets import TensorLoader
from supernet.errors import UsageError
from supernet.train.length import batches_per_epoch, check_min_steps, passes_for

from conftest import read_json, run_cli


@pytest.mark.parametrize(
    ("rows", "trainer", "batches"),
    [
        (540, {}, 5),  # 4 whole batches and a partial one
        (512, {}, 4),
        (540, {"devices": 2}, 3),  # 270 rows on each of two devices
        (540, {"devices": [0, 1], "num_nodes": 2}, 2),
        (540, {"limit_train_batches": 2}, 2),
        (540, {"limit_train_batches": 0.5}, 2),
        (50, {}, 1),
    ],
)
def test_batches_per_epoch_follow_the_loader(rows, trainer, batches):
    assert batches_per_epoch(rows, 128, trainer) == batches


def test_passes_reach_min_steps_in_the_same_epochs():
    trainer = {"max_epochs": 10}
    assert passes_for(trainer, 1000, 540, 128, "t") == 20  # 5 batches an epoch: 20 passes, 1,000 steps
    assert passes_for(trainer, 1001, 540, 128, "t") == 21
    assert passes_for(trainer, 1000, 12_800, 128, "t") == 1  # 100 batches an epoch: 1,000 steps already
    assert passes_for(trainer, 1000, 64_000, 128, "t") == 1
    assert passes_for(trainer, None, 540, 128, "t") == 1


def test_loader_passes_are_distinct_permutations_batched_alone():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    once = TensorLoader(lambda: (x, y), 4, shuffle=True, seed=3)
    thrice = TensorLoader(lambda: (x, y), 4, shuffle=True, seed=3, passes=3)
    assert len(thrice) == 3 * len(once) == 9
    batches = [b for b, _ in thrice]
    assert [len(b) for b in batches] == [4, 4, 2] * 3  # no batch straddles two passes
    first = [torch.cat(batches[i : i + 3]).flatten().tolist() for i in (0, 3, 6)]
    assert first[0] == torch.cat([b for b, _ in once]).flatten().tolist()  # pass 1 is the one-pass epoch
    assert all(sorted(p) == list(range(10)) for p in first) and first[1] != first[0]


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_bad_min_steps_is_one_line(value):
    with pytest.raises(UsageError, match="train.min_steps=.* must be a whole number of optimizer steps >= 1"):
        check_min_steps(value, "train.min_steps")


def test_supernet_training_runs_min_steps(tmp_path):
    """digits at batch 128: 9 batches an epoch, so 2 epochs and min_steps=30 make 2 passes an epoch, 36 steps."""
    run_dir = tmp_path / "run"
    proc = run_cli(
        "supernet-train",
        "trainer.max_epochs=2",
        "train.min_steps=30",
        "data.batch_size=128",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = read_json(run_dir / "result.json")
    assert result["epochs"] == 2 and result["global_step"] == 36
