"""What a table and an image folder share: the input path check, the fixed test split, the class report.

Kept apart from `supernet.data.tables` and `supernet.data.image_folder` so that both read it and
neither imports the other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from supernet.data.datasets import holdout_indices
from supernet.errors import UsageError

# Logged under the tables' name, where these lines have always come from (users filter on it).
log = logging.getLogger("supernet.data.tables")

TEST_SEED = 12345  # the carved test split never moves (the same fixed seed as digits' test split)


def input_path(cfg: Mapping, key: str, directory: bool = False) -> Path:
    """``data.<key>`` as an existing file (tables) or folder (image folders), else a UsageError."""
    value = cfg.get(key)
    if not value:
        raise UsageError(f"data.{key} is not set: pass data.{key}=<your file or folder>")
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise UsageError(f"data.{key}={value}: no such {'folder' if directory else 'file'}")
    if directory and not path.is_dir():
        raise UsageError(f"data.{key}={value} is a file; image_folder needs a folder of classes")
    if not directory and path.is_dir():
        raise UsageError(f"data.{key}={value} is a folder; data=csv reads one .csv/.parquet file")
    return path


def test_seed(cfg: Mapping) -> int:
    """``data.test_seed``: the seed of the test split carved from a table or an image folder
    (`TEST_SEED` unless a benchmark repeats its splits: `supernet-bench suite=tabular tabular.repeats=R`)."""
    seed = cfg.get("test_seed", TEST_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"data.test_seed={seed!r} must be an integer")
    return seed


def holdout_split(
    y: torch.Tensor, holdout: float, seed: int, source: str, key: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """`holdout_indices` (stratified for class labels, a seeded shuffle for regression targets),
    its error prefixed with the source and the config key that set `holdout`."""
    try:
        return holdout_indices(y, holdout, seed)
    except UsageError as exc:
        raise UsageError(f"{source}: {key}={holdout}: {exc}") from exc


def report_classes(
    source: str, classes: Sequence[str], train_y: torch.Tensor, test_y: torch.Tensor | None = None
) -> None:
    """Log class counts (train + validation rows, and test) and the largest/smallest ratio."""
    counts = torch.bincount(train_y, minlength=len(classes)).tolist()
    ratio = max(counts) / max(min(counts), 1)
    pairs = [f"{c}={n}" for c, n in zip(classes, counts, strict=True)]
    shown = ", ".join(pairs[:20]) + (", ..." if len(pairs) > 20 else "")
    test = ""
    if test_y is not None:
        test = f"; test: {len(test_y)} rows"
    log.info("%s: class counts (train+val) %s; largest/smallest %.2f%s", source, shown, ratio, test)
    if ratio >= 10:
        log.warning(
            "%s: classes are imbalanced (largest/smallest %.1f); accuracy can hide a poor minority class", source, ratio
        )
