"""What ``auto`` stands for in the tables' defaults: a recipe by the size of the training split
and the task.

No table's retraining smooths its labels (``retrain.label_smoothing``; the larger tables' 0.1
went when the `confirm` group did not support it: docs/decisions.md). A table whose training split
has fewer than `SMALL_TABLE_ROWS` rows, classification or regression, gets standard scaling
(``data.scaler``), a search of 50 candidates (``search.budget``), and its winner is retrained with
dropout 0.2 (``retrain.dropout``) and bagged: retrained on 5 folds of the training and validation rows and
averaged (``retrain.ensemble``, ``retrain.ensemble_from``), each member fine-tuned from the
inherited weights (``retrain.init``; the two-class tables' members trained from scratch until the
`confirm` group did not support it: docs/decisions.md). Any other table gets the quantile transform, 500
candidates, no dropout and the winner alone, and a regression also 8 periodic
features per numeric column (``data.periodic``).

What each rule was chosen on, and its figures: docs/experiments/tabular.md and docs/decisions.md.

It is also the run's one ``auto`` step: `decide` is the one function every ``auto`` goes through
(the loader's ``data.task``, ``data.scaler``, ``data.periodic``, where the table is read; the
pipeline's ``search.budget`` and ``retrain.*`` once the data is known) and returns what it became
and why, an `Auto`. The loader keeps its decisions with the data (``RawData.autos``,
``DataBundle.autos``) and logs each one where it is made (`report`), unless a caller reports them
in its own line (`reported_later`: the pipeline, whose one line, `auto_line`, lists every ``auto``
of the run).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
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
OTHER = {
    "scaler": "quantile",
    "label_smoothing": 0.0,
    "dropout": 0.0,
    "periodic": None,
    "search_budget": 500,
    "retrain_init": "inherited",
    "ensemble": 1,
    "ensemble_from": "top",
}
LARGE_REGRESSION = {**OTHER, "periodic": 8}
RECIPES = (SMALL, OTHER, LARGE_REGRESSION)
AUTO = "auto"


def is_small(rows: int) -> bool:
    """A table, classification or regression, with fewer than `SMALL_TABLE_ROWS` training rows."""
    return rows < SMALL_TABLE_ROWS


def _recipe(rows: int, regression: bool) -> dict[str, Any]:
    if not is_small(rows):
        return LARGE_REGRESSION if regression else OTHER
    return SMALL


def resolve(key: str, value: Any, rows: int, regression: bool) -> Any:
    """`value` itself, or what ``auto`` stands for as `key` (scaler, label_smoothing, dropout,
    periodic, search_budget, retrain_init, ensemble, ensemble_from) on `rows` training rows of a
    classification or, `regression`, a regression."""
    if value != AUTO:
        return value
    return _recipe(rows, regression)[key]


# ---------------------------------------------------------------------------- the one auto step
# Each key that may be auto -> its name in the recipes above (data.task has its own rule).
RECIPE_KEYS = {
    "data.scaler": "scaler",
    "data.periodic": "periodic",
    "search.budget": "search_budget",
    "retrain.init": "retrain_init",
    "retrain.ensemble": "ensemble",
    "retrain.ensemble_from": "ensemble_from",
    "retrain.dropout": "dropout",
    "retrain.label_smoothing": "label_smoothing",
}


@dataclass(frozen=True)
class Auto:
    """One ``auto`` resolved: its config key, what it became, and why: the counts it was decided
    on (`counted`: ``364 training rows, 2 classes``) or its rule's reason (`reason`: data.task's)."""

    key: str
    value: Any
    counted: str = ""
    reason: str = ""

    @property
    def shown(self) -> str:
        return "off" if self.value is None else str(self.value)

    def __str__(self) -> str:
        """The decision alone, as the loader logs it."""
        text = f"{self.key}=auto -> {self.shown}" + (f": {self.reason}" if self.reason else "")
        return text + (f" ({self.counted})" if self.counted else "")


def counted(rows: int, regression: bool, classes: int | None = None) -> str:
    """What the recipe's choices hang on (the rows; the class count, shown, decides nothing), as
    the line says it."""
    return f"{rows} training rows" + ("" if regression or classes is None else f", {classes} classes")


def decide(
    key: str,
    value: Any,
    rows: int = 0,
    regression: bool = False,
    classes: int | None = None,
    rule: Callable[[], tuple[Any, str]] | None = None,
) -> tuple[Any, Auto | None]:
    """`value`, and None, when it is not ``auto``; else what ``auto`` stands for as `key` (a key of
    `RECIPE_KEYS`, by `rows` training rows of a classification (of `classes` classes, which the
    line shows) or, `regression`, a regression) and the `Auto` that says so. `rule`: a key whose ``auto`` hangs
    on more than the counts (``data.task``: the target column's values), its choice and reason."""
    if value != AUTO:
        return value, None
    if rule is not None:
        chosen, reason = rule()
        return chosen, Auto(key, chosen, reason=reason)
    chosen = resolve(RECIPE_KEYS[key], value, rows, regression)
    if key == "retrain.label_smoothing" and regression:
        chosen = 0.0  # no labels to smooth
    return chosen, Auto(key, chosen, counted(rows, regression, classes))


RECIPE_AUTO_KEYS = ("dropout", "label_smoothing")  # the retraining recipe's keys that may be auto


def recipe_autos(recipe: Mapping[str, Any], rows: int, regression: bool) -> tuple[dict[str, Any], list[Auto]]:
    """A retraining recipe with each ``auto`` of `RECIPE_AUTO_KEYS` decided (`decide`) on `rows`
    training rows, and what each became; a regression's label smoothing is 0 (no labels to smooth:
    what the record and summary.md show). A recipe the run's settings resolved has no auto left."""
    out, autos = dict(recipe), []
    for key in RECIPE_AUTO_KEYS:
        out[key], auto = decide(f"retrain.{key}", out.get(key, 0.0), rows, regression)
        autos += [auto] if auto is not None else []
    if regression:
        out["label_smoothing"] = 0.0
    return out, autos


def auto_line(autos: Sequence[Auto]) -> str | None:
    """The one line that says what each ``auto`` became and why (None: no auto): the decisions in
    order, the counts most of them were decided on once, at the end."""
    if not autos:
        return None
    common = next((a.counted for a in reversed(autos) if a.counted), "")
    parts = []
    for a in autos:
        why = a.reason or (a.counted if a.counted != common else "")
        parts.append(f"{a.key}=auto -> {a.shown}" + (f" ({why})" if why else ""))
    return ", ".join(parts) + (f" ({common})" if common else "")


_LATER: ContextVar[bool] = ContextVar("supernet_autos_reported_later", default=False)


@contextlib.contextmanager
def reported_later() -> Iterator[None]:
    """Inside, the loader's decisions are not logged one by one: the caller reports them in its one
    line (the pipeline's `resolved_settings`, from ``DataBundle.autos``)."""
    token = _LATER.set(True)
    try:
        yield
    finally:
        _LATER.reset(token)


def report(log: logging.Logger, source: str, auto: Auto | None) -> None:
    """A loader's decision, logged where it is made (``<source>: data.scaler=auto -> ...``),
    unless a caller reports it later (`reported_later`)."""
    if auto is not None and not _LATER.get():
        log.info("%s: %s", source, auto, stacklevel=2)
