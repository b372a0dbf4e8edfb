"""The Kendall tau callback (supernet/train/callbacks.py) during a real (tiny) Lightning fit.

.venv/bin/python -m pytest tests/test_callbacks.py -q
"""

from __future__ import annotations

import csv

import pytest
import pytorch_lightning as pl
from scipy import stats

from supernet.core.space import SearchSpace
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.train.callbacks import KendallTauCallback, tau_callback_from_csv
from supernet.train.module import SupernetModule, TensorDataModule

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_kendall_tau_callback_logs(digits, tmp_path):
    space = SearchSpace(digits.in_features, digits.num_classes, 1, 2, 8, 64, 8)
    archs = [(8,), (16,), (32, 8), (64,), (64, 64)]
    path = tmp_path / "rank.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "params", "inherited_acc", "standalone_acc_mean"])
        for i, a in enumerate(archs):
            w.writerow(["-".join(map(str, a)), space.params(a), 0.5, 0.8 + 0.01 * i])
    callback = tau_callback_from_csv(path, every_n_epochs=1)
    module = SupernetModule(
        space=space.to_dict(), data_info=digits.info(), sampler={"name": "sandwich"},
        optim={"name": "adamw", "lr": 3e-3}, seed=0,
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback],
    )  # fmt: skip
    trainer.fit(module, datamodule=TensorDataModule(digits, batch_size=128))
    assert [epoch for epoch, _ in callback.history] == [0, 1]
    # The last measurement, recomputed: the trained supernet's inherited accuracies on the
    # validation split (the weights do not change after the last validation) against the csv.
    accs = InheritedEvaluator(module.model, space, digits.val_x, digits.val_y).accuracies(archs)
    expected = stats.kendalltau(accs, [0.8 + 0.01 * i for i in range(len(archs))]).statistic
    assert callback.history[-1][1] == pytest.approx(expected)
    assert float(trainer.callback_metrics["val/kendall_tau"]) == pytest.approx(expected)
    with pytest.raises(UsageError, match=">= 3 archs"):
        KendallTauCallback(1, archs[:2], [0.1, 0.2])
