"""Cross-fitted ensemble members (``retrain.ensemble_from=folds``): bagging, as RealMLP does it.

The training and validation rows are pooled and cut into K folds (stratified by class for a
classification, `sklearn.model_selection`). Member i is the winner retrained on the other K-1
folds and validated on fold i, so every non-test row trains K-1 of the K members, and the
ensemble's validation figure is out of fold: each validation row is scored by the one member
that did not train on it. The test split is never pooled. The data's encoding (scaler, class
weights, target scaling) stays the one fitted on the training split, so every member reads the
same inputs and the average exports as one model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from supernet.data.datasets import DataBundle
from supernet.errors import UsageError
from supernet.train.retrain import outputs_of, split_figures


@dataclass(frozen=True)
class Fold:
    """Fold `index` of `k` (shuffled with `seed`): `val_rows` index the pooled train+val rows."""

    index: int
    k: int
    seed: int
    val_rows: np.ndarray

    def marker(self) -> dict[str, int]:
        """What a member's ``metrics.json`` records, so a resumed run reuses only the same fold."""
        return {"index": self.index, "k": self.k, "seed": self.seed}


def pooled(bundle: DataBundle) -> tuple[torch.Tensor, torch.Tensor]:
    """The training rows, then the validation rows."""
    return torch.cat([bundle.train_x, bundle.val_x]), torch.cat([bundle.train_y, bundle.val_y])


def make_folds(bundle: DataBundle, k: int, seed: int) -> list[Fold]:
    """`k` folds of `bundle`'s pooled train+val rows; a `UsageError` when there are too few rows."""
    _, y = pooled(bundle)
    y = y.cpu().numpy()
    try:
        splits = list(bundle.task.splitter(k, seed).split(np.zeros(len(y)), bundle.task.strata(y)))
    except ValueError as exc:
        raise UsageError(f"retrain.ensemble={k} folds of {len(y)} train+val rows: {exc}") from None
    return [Fold(i, k, seed, held_out) for i, (_, held_out) in enumerate(splits)]


def fold_bundle(bundle: DataBundle, fold: Fold) -> DataBundle:
    """`bundle` with fold `fold` of the pooled rows as its validation split, the rest as training."""
    x, y = pooled(bundle)
    held_out = torch.zeros(len(y), dtype=torch.bool)
    held_out[torch.as_tensor(fold.val_rows)] = True
    held_out = held_out.to(y.device)
    return replace(bundle, train_x=x[~held_out], train_y=y[~held_out], val_x=x[held_out], val_y=y[held_out])


def out_of_fold_figures(members: list, folds: list[Fold], bundle: DataBundle, batch_size: int) -> dict:
    """The ``val_*`` figures of the validation rows, each scored by the member (in its training
    form) whose fold held it out. The pooled training rows are left out: the supernet, whose
    weights every member starts from, trained on them, so their out-of-fold score would flatter."""
    first_val = len(bundle.train_y)  # pooled row i >= first_val is validation row i - first_val
    outputs = None
    for member, fold in zip(members, folds, strict=True):
        rows = torch.as_tensor(fold.val_rows[fold.val_rows >= first_val] - first_val, device=bundle.val_x.device)
        out = outputs_of(member, bundle.val_x[rows], batch_size)
        if outputs is None:
            outputs = out.new_zeros((len(bundle.val_y), out.shape[1]))
        outputs[rows] = out
    return split_figures("val", outputs, bundle.val_y, bundle)
