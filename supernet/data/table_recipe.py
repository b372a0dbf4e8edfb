"""What ``auto`` stands for in the tables' defaults: a recipe by the size of the training split
(and, for a small classification, its class count).

A table whose training split has fewer than `SMALL_TABLE_ROWS` rows, classification or regression,
gets standard scaling (``data.scaler``), a search of 50 candidates (``search.budget``), and its
winner is retrained without label smoothing and with dropout 0.2 (``retrain.label_smoothing``,
``retrain.dropout``) and bagged: retrained on 5 folds of the training and validation rows and
averaged (``retrain.ensemble``, ``retrain.ensemble_from``), the members of a two-class table
trained from scratch (``retrain.init``). Any other table gets the quantile transform, 500
candidates, label smoothing 0.1, no dropout and the winner alone, and a regression also 8 periodic
features per numeric column (``data.periodic``).

What each rule was chosen on, and its figures: docs/experiments/tabular.md and docs/decisions.md.
"""

from __future__ import annotations

from typing import Any

SMALL_TABLE_ROWS = 1000  # training rows; the benchmark's small tables have 364-640, the others 1,150 and up
SMALL = {
    "scaler": "standard",
    "label_smoothing": 0.0,
    "dropout": 0.2,
    "periodic": None,
    "search_budget": 50,
    "retrain_init": "inherited",
    "ensemble": 5,
    "ensemble_from": "folds",
}
SMALL_TWO_CLASS = {**SMALL, "retrain_init": "scratch"}
OTHER = {
    "scaler": "quantile",
    "label_smoothing": 0.1,
    "dropout": 0.0,
    "periodic": None,
    "search_budget": 500,
    "retrain_init": "inherited",
    "ensemble": 1,
    "ensemble_from": "top",
}
LARGE_REGRESSION = {**OTHER, "periodic": 8}
RECIPES = (SMALL, SMALL_TWO_CLASS, OTHER, LARGE_REGRESSION)
AUTO = "auto"


def is_small(rows: int) -> bool:
    """A table, classification or regression, with fewer than `SMALL_TABLE_ROWS` training rows."""
    return rows < SMALL_TABLE_ROWS


def _recipe(rows: int, regression: bool, classes: int | None) -> dict[str, Any]:
    if not is_small(rows):
        return LARGE_REGRESSION if regression else OTHER
    return SMALL_TWO_CLASS if not regression and classes == 2 else SMALL


def resolve(key: str, value: Any, rows: int, regression: bool, classes: int | None = None) -> Any:
    """`value` itself, or what ``auto`` stands for as `key` (scaler, label_smoothing, dropout,
    periodic, search_budget, retrain_init, ensemble, ensemble_from) on `rows` training rows of a
    classification of `classes` classes (only ``retrain_init`` depends on them) or, `regression`,
    a regression."""
    if value != AUTO:
        return value
    return _recipe(rows, regression, classes)[key]
