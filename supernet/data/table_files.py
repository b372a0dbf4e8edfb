"""Reading one table file by its suffix (CSV/TSV, Parquet, ARFF) into a DataFrame, with one-line errors."""

from __future__ import annotations

import csv
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from supernet.data.datasets import first_line
from supernet.errors import UsageError

# Logged under the tables' name, where these lines have always come from (users filter on it).
log = logging.getLogger("supernet.data.tables")

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".arff": "arff"}


def read_table(path: Path, source: str, sep: str | None = None, na_values: Any = None) -> pd.DataFrame:
    """Read a CSV/TSV, Parquet or ARFF file (by suffix); rows are labelled 1, 2, ... for messages."""
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{source}: unsupported suffix {path.suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    _check_readable(path, source)
    if kind == "parquet":
        try:
            df = pd.read_parquet(path)
        except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError
            raise UsageError(f"{source}: cannot read as Parquet ({first_line(exc)})") from exc
    elif kind == "arff":
        df = _read_arff(path, source)
    else:
        sep = sep or ("\t" if path.suffix.lower() == ".tsv" else ",")
        df = _read_csv(path, source, sep, na_values)
    if len(df) == 0:
        raise UsageError(f"{source}: the table has no data rows")
    df.columns = [str(c) for c in df.columns]
    _check_unique_columns(_csv_header(path, sep) if kind == "csv" else list(df.columns), source)
    df.index = pd.RangeIndex(1, len(df) + 1)
    return df


def _read_arff(path: Path, source: str) -> pd.DataFrame:
    """An ARFF file (Weka's format) by scipy: numeric attributes as floats (``?``: missing),
    nominal ones as pandas categoricals with their declared values (so one-hot encoded, even
    when the values look like numbers). String, date and sparse data are not supported."""
    from scipy.io import arff

    try:
        data, meta = arff.loadarff(path)
    except (arff.ArffError, NotImplementedError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{source}: cannot read as ARFF ({first_line(exc)})") from exc
    _check_unique_columns(list(meta.names()), source)
    df = pd.DataFrame({name: data[name] for name in meta.names()})
    for name in meta.names():
        kind, values = meta[name]
        if kind == "nominal":
            text = [None if v == b"?" else v.decode("utf-8", errors="replace") for v in df[name]]
            df[name] = pd.Categorical(text, categories=list(values))
    return df


def _check_readable(path: Path, source: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise UsageError(f"{source}: cannot read the file (permission denied); fix its permissions") from None


def _csv_header(path: Path, sep: str) -> list[str]:
    """The header row as written: pandas renames a repeated name ``a`` to ``a.1``. (A separator of
    several characters is a regex to pandas; the csv module cannot split by it: nothing checked.)"""
    if len(sep) != 1:
        return []
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f, delimiter=sep), [])


def _check_unique_columns(names: list[str], source: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UsageError(
                f"{source}: column {name!r} appears more than once in the header; rename or remove the repeat"
            )
        seen.add(name)


def _read_csv(path: Path, source: str, sep: str, na_values: Any) -> pd.DataFrame:
    na = None if na_values is None else [str(v) for v in na_values]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # index_col=False: a first row with an extra field must not turn column 1 into an index.
            df = pd.read_csv(path, sep=sep, index_col=False, na_values=na)
    except pd.errors.EmptyDataError as exc:
        raise UsageError(f"{source}: the file is empty") from exc
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise UsageError(
                f"{source}: line {m[2]} has {m[3]} fields but the header has {m[1]}; fix or remove that row"
            ) from exc
        raise UsageError(f"{source}: cannot parse as CSV ({first_line(exc)})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    # pandas pads short rows with NaN (and only warns about some long ones): when that could have
    # happened, count the fields of every record to name the row.
    if len(df) and (caught or df.iloc[:, -1].isna().any()):
        ragged = _ragged_line(path, sep)
        if ragged:
            line, fields, expected = ragged
            raise UsageError(
                f"{source}: line {line} has {fields} fields but the header has {expected}; fix or remove that row"
            )
    return df


def _ragged_line(path: Path, sep: str) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first record whose field count differs, else None."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=sep)
        header = next(reader, None)
        if header is None:
            return None
        for record in reader:
            if record and len(record) != len(header):  # pandas skips blank lines too
                return reader.line_num, len(record), len(header)
    return None
