"""Real tables that installed packages ship, for a tabular benchmark anyone can rerun offline.

    supernet data=bench_table data.set=letter       # any name below
    python -c "from supernet.data.benchmark_sets import available_sets; print(available_sets())"

Each set is a file of a Debian package (Weka's ARFF examples; R packages' data, read without R by
the PyPI package ``rdata``) or a table embedded in scikit-learn. It goes through the same table
code as a user's CSV (`supernet.data.tables.table_raw_data`: leak-free one-hot / median encoding,
``preprocess`` spec), with the same fixed test split: ``data.test_size`` (0.2) of the rows,
stratified for a classification and a seeded shuffle for a regression, drawn with the tables'
fixed seed (`supernet.data.splits.TEST_SEED`) from the rows in the order the package ships them.
A set whose package is missing is a one-line error naming the package; `available_sets` tells a
benchmark which ones it can run.

| set | package | rows | features | task | target |
| --- | --- | ---: | ---: | --- | --- |
| letter | r-cran-mlbench | 20,000 | 16 | classification (26) | lettr |
| satellite | r-cran-mlbench | 6,435 | 36 | classification (6) | classes |
| shuttle | r-cran-mlbench | 58,000 | 9 | classification (7) | Class |
| dna | r-cran-mlbench | 3,186 | 180 | classification (3) | Class |
| vehicle | r-cran-mlbench | 846 | 18 | classification (4) | Class |
| vowel | r-cran-mlbench | 990 | 10 | classification (11) | Class |
| soybean | r-cran-mlbench | 683 | 35 | classification (19) | Class |
| pima | r-cran-mlbench | 768 | 8 | classification (2) | diabetes |
| breast_cancer | r-cran-mlbench | 699 | 9 | classification (2) | Class |
| segment | weka | 2,310 | 19 | classification (7) | class |
| credit_g | weka | 1,000 | 20 | classification (2) | class |
| telco_churn | r-cran-modeldata | 7,043 | 19 | classification (2) | churn |
| digits | scikit-learn | 1,797 | 64 | classification (10) | digit |
| wdbc | scikit-learn | 569 | 30 | classification (2) | diagnosis |
| diamonds | r-cran-ggplot2 | 53,940 | 9 | regression | price |
| ames | r-cran-modeldata | 2,930 | 73 | regression | Sale_Price |
| concrete | r-cran-modeldata | 1,030 | 8 | regression | compressive_strength |
| car_prices | r-cran-modeldata | 804 | 17 | regression | Price |
| boston_housing | r-cran-mlbench | 506 | 13 | regression | medv |

Features are the table's columns before encoding (categorical ones are one-hot encoded, so a net
sees more inputs: dna's 180 binary factors, ames' 40 categorical columns...). ``segment`` is
Weka's segment-challenge.arff followed by segment-test.arff (the full UCI image segmentation set);
``breast_cancer`` is mlbench's BreastCancer (the original Wisconsin set, its ``Id`` left out),
``wdbc`` scikit-learn's diagnostic Wisconsin set. Debian packages:
``apt-get install weka r-cran-mlbench r-cran-modeldata r-cran-ggplot2``.
"""

from __future__ import annotations

import bz2
import logging
import lzma
import struct
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from supernet.core.task import CLASSIFICATION, REGRESSION
from supernet.data.datasets import RawData, first_line
from supernet.errors import UsageError

log = logging.getLogger(__name__)

WEKA = Path("/usr/share/doc/weka/examples")
R_LIBRARY = Path("/usr/lib/R/site-library")  # where Debian's r-cran-* packages install
RDATA_READER = "rdata"  # the PyPI package that reads R data files


@dataclass(frozen=True)
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

    @property
    def files(self) -> list[Path]:
        """The files the set reads (none for a set embedded in a Python package)."""
        if self.reader == "sklearn":
            return []
        if self.reader == "rdb":
            return [Path(self.path + ".rdb"), Path(self.path + ".rdx")]
        return [Path(p) for p in (self.path, *self.more_paths)]


def _mlbench(name: str, obj: str, target: str, rows: int, features: int, text: str, **kw) -> BenchSet:
    path = str(R_LIBRARY / "mlbench" / "data" / f"{obj}.rda")
    task = kw.pop("task", CLASSIFICATION)
    return BenchSet(name, "r-cran-mlbench", "rda", path, obj, target, task, rows, features, text, **kw)


def _lazy(package: str, name: str, obj: str, target: str, rows: int, features: int, text: str, **kw) -> BenchSet:
    path = str(R_LIBRARY / package.removeprefix("r-cran-") / "data" / "Rdata")
    task = kw.pop("task", REGRESSION)
    return BenchSet(name, package, "rdb", path, obj, target, task, rows, features, text, **kw)


def _weka(name: str, files: list[str], target: str, rows: int, features: int, text: str) -> BenchSet:
    paths = [str(WEKA / f) for f in files]
    return BenchSet(
        name, "weka", "arff", paths[0], "", target, CLASSIFICATION, rows, features, text, more_paths=tuple(paths[1:])
    )


def _sklearn(name: str, loader: str, target: str, rows: int, features: int, text: str) -> BenchSet:
    return BenchSet(name, "scikit-learn", "sklearn", "", loader, target, CLASSIFICATION, rows, features, text)


_SETS = [
    _mlbench("letter", "LetterRecognition", "lettr", 20000, 16, "letters A-Z from 16 statistics of glyph images"),
    _mlbench("satellite", "Satellite", "classes", 6435, 36, "Landsat soil type from 3x3 pixels in 4 bands"),
    _mlbench("shuttle", "Shuttle", "Class", 58000, 9, "space shuttle radiator state; 80% one class"),
    _mlbench("dna", "DNA", "Class", 3186, 180, "splice junction type from 60 DNA bases coded as 180 binary factors"),
    _mlbench("vehicle", "Vehicle", "Class", 846, 18, "vehicle type from silhouette shape features"),
    _mlbench("vowel", "Vowel", "Class", 990, 10, "British English vowel from speaker and 9 LPC features"),
    _mlbench("soybean", "Soybean", "Class", 683, 35, "soybean disease from 35 categorical symptoms"),
    _mlbench("pima", "PimaIndiansDiabetes", "diabetes", 768, 8, "diabetes test of Pima women from 8 measurements"),
    _mlbench(
        "breast_cancer", "BreastCancer", "Class", 699, 9, "benign/malignant from 9 graded cell traits", drop=("Id",)
    ),
    _weka(
        "segment",
        ["segment-challenge.arff", "segment-test.arff"],
        "class",
        2310,
        19,
        "outdoor image region class from 19 region statistics",
    ),
    _weka("credit_g", ["credit-g.arff"], "class", 1000, 20, "German credit risk good/bad from 20 mixed attributes"),
    _lazy(
        "r-cran-modeldata",
        "telco_churn",
        "wa_churn",
        "churn",
        7043,
        19,
        "telecom customer churn from contract and usage columns",
        task=CLASSIFICATION,
    ),
    _sklearn("digits", "load_digits", "digit", 1797, 64, "handwritten digits 0-9 from 8x8 pixel counts"),
    _sklearn("wdbc", "load_breast_cancer", "diagnosis", 569, 30, "malignant/benign from 30 cell nucleus features"),
    _lazy(
        "r-cran-ggplot2", "diamonds", "diamonds", "price", 53940, 9, "diamond price from carat, cut, colour, clarity"
    ),
    _lazy("r-cran-modeldata", "ames", "ames", "Sale_Price", 2930, 73, "Ames, Iowa house sale prices"),
    _lazy(
        "r-cran-modeldata",
        "concrete",
        "concrete",
        "compressive_strength",
        1030,
        8,
        "concrete strength from mixture and age",
    ),
    _lazy("r-cran-modeldata", "car_prices", "car_prices", "Price", 804, 17, "used GM car prices (Kelley Blue Book)"),
    _mlbench("boston_housing", "BostonHousing", "medv", 506, 13, "Boston median house value by tract", task=REGRESSION),
]
BENCHMARK_SETS: dict[str, BenchSet] = {s.name: s for s in _SETS}


# ---------------------------------------------------------------------------- availability
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


def available_sets() -> list[tuple[str, str | None]]:
    """Every registered set as (name, the package it still needs or None), in registry order."""
    return [(name, missing_package(bench)) for name, bench in BENCHMARK_SETS.items()]


def install_hint(package: str) -> str:
    if package == RDATA_READER:
        return f"pip install {package}"
    return f"apt-get install {package}"


# ---------------------------------------------------------------------------- reading
def bench_set(name: object) -> BenchSet:
    if name is None or str(name) not in BENCHMARK_SETS:
        raise UsageError(f"data.set={name!r} is unknown; choose one of {', '.join(BENCHMARK_SETS)}")
    return BENCHMARK_SETS[str(name)]


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


# ---------------------------------------------------------------------------- the loader
def load_bench_table(cfg: Mapping) -> RawData:
    """``data=bench_table data.set=<name>``: a registered set through the table path with its
    own target and task (``data.task`` other than ``auto`` or that task is an error), every other
    column a feature, the fixed ``data.test_size`` test split."""
    from supernet.data.tables import table_raw_data

    bench = bench_set(cfg.get("set"))
    df = read_bench_frame(bench)
    fixed = {**dict(cfg), "features": None, "drop": None, "categorical": None, "test_path": None}
    return table_raw_data(df, {**fixed, "task": bench.task}, bench.target, f"data.set={bench.name}")
