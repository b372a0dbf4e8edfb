"""What ``auto`` stands for in the tables' defaults: a recipe by the task and the size of the
training split.

A classification whose training split has fewer than `SMALL_TABLE_ROWS` rows gets standard
scaling (``data.scaler``), and is retrained without label smoothing and with dropout 0.2
(``retrain.label_smoothing``, ``retrain.dropout``); any other table gets the quantile transform,
label smoothing 0.1 and no dropout; a regression also 8 periodic features per numeric column
(``data.periodic``). On the benchmark's validation splits the quantile transform paid on the
larger tables (letter, segment) and on 4 of the 5 regressions, label smoothing on letter,
satellite and dna, the periodic features on 4 of the 5 regressions (and cost the classification
tables accuracy), while the small classification tables, whose few rows make noisy quantiles and
overfit a fine-tune, did better without either and with dropout
(docs/experiments/tabular.md).
"""

from __future__ import annotations

from typing import Any

SMALL_TABLE_ROWS = 1000  # training rows; the benchmark's small tables have 364-640, the others 1,150 and up
SMALL = {"scaler": "standard", "label_smoothing": 0.0, "dropout": 0.2, "periodic": None}
OTHER = {"scaler": "quantile", "label_smoothing": 0.1, "dropout": 0.0, "periodic": None}
REGRESSION = {**OTHER, "periodic": 8}
AUTO = "auto"


def is_small(rows: int, regression: bool) -> bool:
    """A classification with fewer than `SMALL_TABLE_ROWS` training rows."""
    return not regression and rows < SMALL_TABLE_ROWS


def resolve(key: str, value: Any, rows: int, regression: bool) -> Any:
    """`value` itself, or what ``auto`` stands for as `key` (scaler, label_smoothing, dropout,
    periodic) on `rows` training rows of a classification (or, `regression`, a regression)."""
    if value != AUTO:
        return value
    return (REGRESSION if regression else SMALL if is_small(rows, regression) else OTHER)[key]
