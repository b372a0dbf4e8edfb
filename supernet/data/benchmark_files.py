"""Reading a benchmark set from its package's files: ARFF, R data files, R lazy-load databases, scikit-learn."""

from __future__ import annotations

import bz2
import logging
import lzma
import struct
import warnings
import zlib

import numpy as np
import pandas as pd

from supernet.core.task import REGRESSION
from supernet.data.benchmark_set import BenchSet
from supernet.data.datasets import first_line
from supernet.errors import UsageError

log = logging.getLogger("supernet.data.benchmark_sets")  # the logger these lines have always come from

RDATA_READER = "rdata"  # the PyPI package that reads R data files


def missing_package(bench: BenchSet) -> str | None:
    """The package to install before `bench` can be read (Debian, or PyPI ``rdata`` for R
    files), or None when it is ready."""
    if any(not f.is_file() for f in bench.files):
        return bench.package
    if bench.reader in ("rda", "rdb"):
        try:
            import rdata  # noqa: F401
        except ImportError:
            return RDATA_READER
    return None


def install_hint(package: str) -> str:
    if package == RDATA_READER:
        return f"pip install {package}"
    return f"apt-get install {package}"


def read_bench_frame(bench: BenchSet) -> pd.DataFrame:
    """The set as one DataFrame (features and target, `drop` columns left out), rows 1, 2, ..."""
    missing = missing_package(bench)
    if missing is not None:
        absent = next((f for f in bench.files if not f.is_file()), None)
        where = f" ({absent} not found)" if absent is not None and missing != RDATA_READER else ""
        raise UsageError(f"data.set={bench.name} needs the package {missing}: {install_hint(missing)}{where}")
    source = f"data.set={bench.name}"
    if bench.reader == "arff":
        from supernet.data.tables import read_table

        df = pd.concat([read_table(f, source) for f in bench.files], ignore_index=True)
    elif bench.reader == "sklearn":
        df = _sklearn_frame(bench)
    else:
        df = _r_frame(bench, source)
    df.columns = [str(c) for c in df.columns]  # rdata names them with numpy strings
    df = df.drop(columns=list(bench.drop))
    df = df.astype({c: np.float64 for c in df.columns if _nullable_number(df[c])})
    df.index = pd.RangeIndex(1, len(df) + 1)
    if len(df) != bench.rows or len(df.columns) != bench.features + 1:
        log.warning(
            "%s: %d rows, %d features; the registry says %d, %d (another version of %s?)",
            source,
            len(df),
            len(df.columns) - 1,
            bench.rows,
            bench.features,
            bench.package,
        )
    return df


def _nullable_number(s: pd.Series) -> bool:
    """pandas' nullable integers (R integer vectors) and booleans: plain floats for the encoder."""
    return isinstance(s.dtype, pd.api.extensions.ExtensionDtype) and s.dtype.kind in "iub"


def _sklearn_frame(bench: BenchSet) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, bench.obj)(as_frame=True)
    df = bunch.data.copy()
    if bench.task == REGRESSION:
        df[bench.target] = bunch.target.to_numpy(np.float64)
        return df
    names = np.asarray(bunch.target_names).astype(str)
    df[bench.target] = names[bunch.target.to_numpy()]
    return df


def _r_frame(bench: BenchSet, source: str) -> pd.DataFrame:
    import rdata

    try:
        with warnings.catch_warnings():
            # rdata names the R classes it maps to a plain data frame (tibbles) and guesses formats
            warnings.simplefilter("ignore", UserWarning)
            if bench.reader == "rda":
                objects = rdata.read_rda(bench.path)
            else:
                objects = {bench.obj: rdata.conversion.convert(rdata.parser.parse_data(_lazy_load(bench)))}
    except (ValueError, OSError, EOFError, KeyError, NotImplementedError, lzma.LZMAError, zlib.error) as exc:
        raise UsageError(f"{source}: cannot read {bench.obj} from {bench.path} ({first_line(exc)})") from exc
    df = objects.get(bench.obj)
    if not isinstance(df, pd.DataFrame):
        raise UsageError(f"{source}: {bench.path} holds no data frame {bench.obj!r}")
    return df.reset_index(drop=True)


def _lazy_load(bench: BenchSet) -> bytes:
    """The serialized object `bench.obj` of an R lazy-load database (``Rdata.rdx`` index and
    ``Rdata.rdb`` records, as R packages install their data): R's own record format, a 4-byte
    length and then zlib (compressed=1), or a type byte and bzip2 / raw LZMA2 / nothing."""
    import rdata

    index = rdata.conversion.convert(rdata.parser.parse_file(bench.path + ".rdx"))
    if bench.obj not in index["variables"]:
        raise KeyError(f"no object {bench.obj!r} in {bench.path}.rdx")
    offset, length = (int(v) for v in index["variables"][bench.obj])
    with open(bench.path + ".rdb", "rb") as f:
        f.seek(offset)
        record = f.read(length)
    compressed = int(np.asarray(index["compressed"]).ravel()[0])
    if compressed <= 1:
        return zlib.decompress(record[4:]) if compressed else record
    size, kind, body = struct.unpack(">I", record[:4])[0], record[4:5], record[5:]
    if kind == b"Z":
        filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
        data = lzma.decompress(body, format=lzma.FORMAT_RAW, filters=filters)
    elif kind == b"2":
        data = bz2.decompress(body)
    elif kind == b"1":
        data = zlib.decompress(body)
    elif kind == b"0":
        data = body
    else:
        raise ValueError(f"unknown lazy-load compression {kind!r}")
    if len(data) != size:
        raise ValueError(f"record of {len(data)} bytes, its header says {size}")
    return data
