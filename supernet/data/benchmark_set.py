"""BenchSet: one benchmark table's record (its package, where the file lies, how to read it, what to predict)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

WEKA = Path("/usr/share/doc/weka/examples")
R_LIBRARY = Path("/usr/lib/R/site-library")  # where Debian's r-cran-* packages install
R_BASE_LIBRARY = Path("/usr/lib/R/library")  # ...and the recommended ones (MASS) that R itself ships
LARGE_ROWS = 2000  # the size bands of the groups: under 2,000 rows (small) and the rest


@dataclasses.dataclass(frozen=True)
class BenchSet:
    """One benchmark table: where it lives, how to read it and what to predict.

    `reader`: ``arff`` (`path` and then `more_paths`, row-bound), ``rda`` (an R data file holding
    the data frame `obj`), ``rdb`` (an R package's lazy-load database ``<path>.rdb/.rdx``, object
    `obj`) or ``sklearn`` (`obj` names the scikit-learn loader)."""

    name: str
    package: str  # the Debian package that ships the file (or the PyPI package, for sklearn)
    reader: str
    path: str
    obj: str
    target: str
    task: str
    rows: int
    features: int
    description: str
    drop: tuple[str, ...] = ()
    more_paths: tuple[str, ...] = ()
    classes: int = 0  # classification: distinct target values (regression: 0)
    minority: float = 0.0  # classification: the smallest class's share of the rows
    categorical: int = 0  # feature columns that are categories (one-hot encoded), not numbers
    group: str = ""  # tune | confirm (`group_of`); set once the registry is complete

    @property
    def size(self) -> str:
        """``small`` (under `LARGE_ROWS` rows) or ``large``: the two size bands of the groups."""
        return "small" if self.rows < LARGE_ROWS else "large"

    @property
    def kinds(self) -> list[str]:
        """What the set stands for in the group balance: task and size, and for a classification
        two-class or many-class, imbalanced (smallest class under half its even share), and
        whether any column is categorical."""
        kinds = [self.task, f"{self.task}:{self.size}", "categorical" if self.categorical else "numeric"]
        if self.classes:  # a classification (a regression has no classes)
            kinds.append("two-class" if self.classes == 2 else "many-class")
            kinds.append("imbalanced" if self.minority * self.classes < 0.5 else "balanced")
        return kinds

    @property
    def files(self) -> list[Path]:
        """The files the set reads (none for a set embedded in a Python package)."""
        if self.reader == "sklearn":
            return []
        if self.reader == "rdb":
            return [Path(self.path + ".rdb"), Path(self.path + ".rdx")]
        return [Path(p) for p in (self.path, *self.more_paths)]
