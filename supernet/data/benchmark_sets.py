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

| set | package | rows | features | task | target | group |
| --- | --- | ---: | ---: | --- | --- | --- |
| letter | r-cran-mlbench | 20,000 | 16 | classification (26) | lettr | tune |
| satellite | r-cran-mlbench | 6,435 | 36 | classification (6) | classes | tune |
| shuttle | r-cran-mlbench | 58,000 | 9 | classification (7) | Class | tune |
| dna | r-cran-mlbench | 3,186 | 180 | classification (3) | Class | tune |
| vehicle | r-cran-mlbench | 846 | 18 | classification (4) | Class | tune |
| vowel | r-cran-mlbench | 990 | 10 | classification (11) | Class | tune |
| soybean | r-cran-mlbench | 683 | 35 | classification (19) | Class | tune |
| pima | r-cran-mlbench | 768 | 8 | classification (2) | diabetes | tune |
| breast_cancer | r-cran-mlbench | 699 | 9 | classification (2) | Class | tune |
| segment | weka | 2,310 | 19 | classification (7) | class | tune |
| credit_g | weka | 1,000 | 20 | classification (2) | class | tune |
| telco_churn | r-cran-modeldata | 7,043 | 19 | classification (2) | churn | tune |
| digits | scikit-learn | 1,797 | 64 | classification (10) | digit | tune |
| wdbc | scikit-learn | 569 | 30 | classification (2) | diagnosis | tune |
| diamonds | r-cran-ggplot2 | 53,940 | 9 | regression | price | tune |
| ames | r-cran-modeldata | 2,930 | 73 | regression | Sale_Price | tune |
| concrete | r-cran-modeldata | 1,030 | 8 | regression | compressive_strength | tune |
| car_prices | r-cran-modeldata | 804 | 17 | regression | Price | tune |
| boston_housing | r-cran-mlbench | 506 | 13 | regression | medv | tune |
| glass | r-cran-mlbench | 214 | 9 | classification (6) | Type | tune |
| house_votes | r-cran-mlbench | 435 | 16 | classification (2) | Class | confirm |
| ionosphere | r-cran-mlbench | 351 | 34 | classification (2) | Class | confirm |
| sonar | r-cran-mlbench | 208 | 60 | classification (2) | Class | confirm |
| servo | r-cran-mlbench | 167 | 4 | regression | Class | tune |
| attrition | r-cran-modeldata | 1,470 | 30 | classification (2) | Attrition | confirm |
| cells | r-cran-modeldata | 2,019 | 56 | classification (2) | class | confirm |
| credit_data | r-cran-modeldata | 4,454 | 13 | classification (2) | Status | confirm |
| hpc | r-cran-modeldata | 4,331 | 7 | classification (4) | class | confirm |
| lending_club | r-cran-modeldata | 9,857 | 22 | classification (2) | Class | confirm |
| mlc_churn | r-cran-modeldata | 5,000 | 18 | classification (2) | churn | confirm |
| penguins | r-cran-modeldata | 344 | 6 | classification (3) | species | tune |
| sacramento | r-cran-modeldata | 932 | 7 | regression | price | confirm |
| biomass | r-cran-modeldata | 536 | 5 | regression | HHV | confirm |
| chicago | r-cran-modeldata | 5,698 | 49 | regression | ridership | confirm |
| mpg | r-cran-ggplot2 | 234 | 9 | regression | hwy | tune |
| hmda | r-cran-aer | 2,380 | 13 | classification (2) | deny | confirm |
| credit_card | r-cran-aer | 1,319 | 11 | classification (2) | card | confirm |
| bank_wages | r-cran-aer | 474 | 3 | classification (3) | job | tune |
| cps1985 | r-cran-aer | 534 | 10 | regression | wage | confirm |
| house_prices | r-cran-aer | 546 | 11 | regression | price | confirm |
| ca_schools | r-cran-aer | 420 | 10 | regression | read | confirm |
| teaching_ratings | r-cran-aer | 463 | 10 | regression | eval | confirm |
| college_distance | r-cran-aer | 4,739 | 13 | regression | score | confirm |
| titanic | r-cran-cardata | 1,309 | 3 | classification (2) | survived | confirm |
| mroz | r-cran-cardata | 753 | 7 | classification (2) | lfp | confirm |
| salaries | r-cran-cardata | 397 | 5 | regression | salary | confirm |
| crabs | r-cran-mass | 200 | 6 | classification (2) | sp | confirm |
| nlschools | r-cran-mass | 2,287 | 4 | regression | lang | confirm |
| olive | r-cran-dslabs | 572 | 8 | classification (9) | area | confirm |
| ljubljana_breast | weka | 286 | 9 | classification (2) | Class | confirm |
| unbalanced | weka | 856 | 32 | classification (2) | Outcome | confirm |
| cpu | weka | 209 | 6 | regression | class | tune |
| iris | scikit-learn | 150 | 4 | classification (3) | species | confirm |
| wine | scikit-learn | 178 | 13 | classification (3) | cultivar | tune |
| diabetes | scikit-learn | 442 | 10 | regression | progression | tune |

Features are the table's columns before encoding (categorical ones are one-hot encoded, so a net
sees more inputs: dna's 180 binary factors, ames' 40 categorical columns...). ``segment`` is
Weka's segment-challenge.arff followed by segment-test.arff (the full UCI image segmentation set);
``breast_cancer`` is mlbench's BreastCancer (the original Wisconsin set, its ``Id`` left out),
``wdbc`` scikit-learn's diagnostic Wisconsin set; ``ljubljana_breast`` is Weka's breast-cancer.arff
(recurrence, another table). A few columns are left out where they give the target away (``mpg``'s
city mileage, ``ca_schools``' maths score) or are row ids. Debian packages (MASS installs under
/usr/lib/R/library): ``apt-get install --no-install-recommends weka r-cran-mlbench r-cran-modeldata
r-cran-ggplot2 r-cran-aer r-cran-cardata r-cran-mass r-cran-dslabs``.

Groups (`group_of`, the rule written once): the 19 sets the tabular recipe was tuned on before
issue 41 (`TUNED_ON`) are ``tune``; in each band of task and size (under 2,000 rows or not) the
other sets, ordered by the sha256 of their names, fill ``tune`` up to half the band and the rest
are ``confirm``. Every default is chosen on ``tune``; ``confirm`` says whether it holds.
`group_balance` counts each group's sets by kind (``supernet-bench suite=tabular tabular.list=true``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping

from supernet.core.task import CLASSIFICATION, REGRESSION
from supernet.data.benchmark_files import (
    RDATA_READER,
    install_hint,
    missing_package,
    read_bench_frame,
)
from supernet.data.benchmark_set import LARGE_ROWS, R_BASE_LIBRARY, R_LIBRARY, WEKA, BenchSet
from supernet.data.datasets import RawData
from supernet.errors import UsageError

__all__ = [  # BenchSet lives in supernet.data.benchmark_set, the readers in supernet.data.benchmark_files
    "BENCHMARK_SETS",
    "GROUPS",
    "LARGE_ROWS",
    "RDATA_READER",
    "TUNED_ON",
    "BenchSet",
    "available_sets",
    "bench_set",
    "group_balance",
    "group_of",
    "install_hint",
    "load_bench_table",
    "missing_package",
    "name_hash",
    "read_bench_frame",
]


def _rda(package: str, name: str, obj: str, target: str, rows: int, features: int, text: str, **kw) -> BenchSet:
    """A set in an R data file ``<package dir>/data/<obj>.rda`` (mlbench, AER)."""
    folder = kw.pop("folder", package.removeprefix("r-cran-"))
    path = str(R_LIBRARY / folder / "data" / f"{obj}.rda")
    task = kw.pop("task", CLASSIFICATION)
    return BenchSet(name, package, "rda", path, obj, target, task, rows, features, text, **kw)


def _mlbench(name: str, obj: str, target: str, rows: int, features: int, text: str, **kw) -> BenchSet:
    return _rda("r-cran-mlbench", name, obj, target, rows, features, text, **kw)


def _lazy(package: str, name: str, obj: str, target: str, rows: int, features: int, text: str, **kw) -> BenchSet:
    """A set in an R package's lazy-load database; `folder` and `library` where the package's
    directory is not ``R_LIBRARY/<package without r-cran->`` (MASS installs beside base R)."""
    folder = kw.pop("folder", package.removeprefix("r-cran-"))
    path = str(kw.pop("library", R_LIBRARY) / folder / "data" / "Rdata")
    task = kw.pop("task", REGRESSION)
    return BenchSet(name, package, "rdb", path, obj, target, task, rows, features, text, **kw)


def _weka(name: str, files: list[str], target: str, rows: int, features: int, text: str, **kw) -> BenchSet:
    paths = [str(WEKA / f) for f in files]
    task = kw.pop("task", CLASSIFICATION)
    return BenchSet(
        name, "weka", "arff", paths[0], "", target, task, rows, features, text, more_paths=tuple(paths[1:]), **kw
    )


def _sklearn(name: str, loader: str, target: str, rows: int, features: int, text: str, **kw) -> BenchSet:
    task = kw.pop("task", CLASSIFICATION)
    return BenchSet(name, "scikit-learn", "sklearn", "", loader, target, task, rows, features, text, **kw)


_SETS = [
    _mlbench("letter", "LetterRecognition", "lettr", 20000, 16, "letters A-Z from 16 statistics of glyph images"),
    _mlbench("satellite", "Satellite", "classes", 6435, 36, "Landsat soil type from 3x3 pixels in 4 bands"),
    _mlbench("shuttle", "Shuttle", "Class", 58000, 9, "space shuttle radiator state; 80% one class"),
    _mlbench("dna", "DNA", "Class", 3186, 180, "splice junction type from 60 DNA bases coded as 180 binary factors"),
    _mlbench("vehicle", "Vehicle", "Class", 846, 18, "vehicle type from silhouette shape features"),
    _mlbench("vowel", "Vowel", "Class", 990, 10, "British English vowel from speaker and 9 LPC features"),
    _mlbench("soybean", "Soybean", "Class", 683, 35, "soybean disease from 35 categorical symptoms"),
    _mlbench("pima", "PimaIndiansDiabetes", "diabetes", 768, 8, "diabetes test of Pima women from 8 measurements"),
    _mlbench("breast_cancer", "BreastCancer", "Class", 699, 9, "benign/malignant from 9 graded cell traits",
        drop=("Id",)),
    _weka("segment", ["segment-challenge.arff", "segment-test.arff"], "class", 2310, 19,
        "outdoor image region class from 19 region statistics"),
    _weka("credit_g", ["credit-g.arff"], "class", 1000, 20, "German credit risk good/bad from 20 mixed attributes"),
    _lazy("r-cran-modeldata", "telco_churn", "wa_churn", "churn", 7043, 19,
        "telecom customer churn from contract and usage columns", task=CLASSIFICATION),
    _sklearn("digits", "load_digits", "digit", 1797, 64, "handwritten digits 0-9 from 8x8 pixel counts"),
    _sklearn("wdbc", "load_breast_cancer", "diagnosis", 569, 30, "malignant/benign from 30 cell nucleus features"),
    _lazy("r-cran-ggplot2", "diamonds", "diamonds", "price", 53940, 9,
        "diamond price from carat, cut, colour, clarity"),
    _lazy("r-cran-modeldata", "ames", "ames", "Sale_Price", 2930, 73, "Ames, Iowa house sale prices"),
    _lazy("r-cran-modeldata", "concrete", "concrete", "compressive_strength", 1030, 8,
        "concrete strength from mixture and age"),
    _lazy("r-cran-modeldata", "car_prices", "car_prices", "Price", 804, 17, "used GM car prices (Kelley Blue Book)"),
    _mlbench("boston_housing", "BostonHousing", "medv", 506, 13, "Boston median house value by tract", task=REGRESSION),
    _mlbench("glass", "Glass", "Type", 214, 9, "glass type from refractive index and 8 oxides"),
    _mlbench("house_votes", "HouseVotes84", "Class", 435, 16,
        "party from 16 votes of the 1984 US Congress (y/n/missing)"),
    _mlbench("ionosphere", "Ionosphere", "Class", 351, 34, "good/bad radar returns from 34 pulse features"),
    _mlbench("sonar", "Sonar", "Class", 208, 60, "rock or mine from 60 sonar band energies"),
    _mlbench("servo", "Servo", "Class", 167, 4, "servo rise time from motor, screw and 2 gains", task=REGRESSION),
    _lazy("r-cran-modeldata", "attrition", "attrition", "Attrition", 1470, 30, "employee attrition (IBM HR)",
        task=CLASSIFICATION),
    _lazy("r-cran-modeldata", "cells", "cells", "class", 2019, 56, "well/poorly segmented cells from image features",
        task=CLASSIFICATION, drop=("case",)),
    _lazy("r-cran-modeldata", "credit_data", "credit_data", "Status", 4454, 13,
        "credit status good/bad from 13 mixed columns", task=CLASSIFICATION),
    _lazy("r-cran-modeldata", "hpc", "hpc_data", "class", 4331, 7,
        "compute job run-time class (VF/F/M/L) from job settings", task=CLASSIFICATION),
    _lazy("r-cran-modeldata", "lending_club", "lending_club", "Class", 9857, 22, "Lending Club loans good/bad",
        task=CLASSIFICATION),
    _lazy("r-cran-modeldata", "mlc_churn", "mlc_churn", "churn", 5000, 18,
        "telephone customer churn (MLC++); the 51 states left out", task=CLASSIFICATION, drop=("state",)),
    _lazy("r-cran-modeldata", "penguins", "penguins", "species", 344, 6,
        "Palmer penguin species from bill, flipper, mass", task=CLASSIFICATION),
    _lazy("r-cran-modeldata", "sacramento", "Sacramento", "price", 932, 7,
        "Sacramento house sale prices; the zip codes left out", drop=("zip",)),
    _lazy("r-cran-modeldata", "biomass", "biomass", "HHV", 536, 5, "biomass heating value from elemental analysis",
        drop=("sample", "dataset")),
    _lazy("r-cran-modeldata", "chicago", "Chicago", "ridership", 5698, 49,
        "Chicago L ridership at Clark/Lake from lagged stations, weather, games"),
    _lazy("r-cran-ggplot2", "mpg", "mpg", "hwy", 234, 9, "car highway mileage (city mileage left out)", drop=("cty",)),
    _rda("r-cran-aer", "hmda", "HMDA", "deny", 2380, 13, "Boston mortgage denial from applicant ratios and history",
        folder="AER"),
    _rda("r-cran-aer", "credit_card", "CreditCard", "card", 1319, 11,
        "credit card application accepted from income and reports", folder="AER"),
    _rda("r-cran-aer", "bank_wages", "BankWages", "job", 474, 3, "bank job category from education, gender, minority",
        folder="AER"),
    _rda("r-cran-aer", "cps1985", "CPS1985", "wage", 534, 10, "hourly wage from the 1985 Current Population Survey",
        folder="AER", task=REGRESSION),
    _rda("r-cran-aer", "house_prices", "HousePrices", "price", 546, 11, "Windsor (Canada) house prices", folder="AER",
        task=REGRESSION),
    _rda("r-cran-aer", "ca_schools", "CASchools", "read", 420, 10, "California district reading score (math left out)",
        folder="AER", task=REGRESSION, drop=("district", "school", "math")),
    _rda("r-cran-aer", "teaching_ratings", "TeachingRatings", "eval", 463, 10,
        "course evaluation score from instructor traits", folder="AER", task=REGRESSION, drop=("prof",)),
    _rda("r-cran-aer", "college_distance", "CollegeDistance", "score", 4739, 13,
        "high-school test score from family and region", folder="AER", task=REGRESSION),
    _lazy("r-cran-cardata", "titanic", "TitanicSurvival", "survived", 1309, 3, "Titanic survival from sex, age, class",
        folder="carData", task=CLASSIFICATION),
    _lazy("r-cran-cardata", "mroz", "Mroz", "lfp", 753, 7, "married women's labour force participation (1975)",
        folder="carData", task=CLASSIFICATION),
    _lazy("r-cran-cardata", "salaries", "Salaries", "salary", 397, 5, "US professors' 9-month salaries",
        folder="carData"),
    _lazy("r-cran-mass", "crabs", "crabs", "sp", 200, 6, "crab colour form from sex and 5 shell measurements",
        folder="MASS", library=R_BASE_LIBRARY, task=CLASSIFICATION, drop=("index",)),
    _lazy("r-cran-mass", "nlschools", "nlschools", "lang", 2287, 4,
        "Dutch pupils' language score from IQ, class size, SES", folder="MASS", library=R_BASE_LIBRARY,
        drop=("class",)),
    _lazy("r-cran-dslabs", "olive", "olive", "area", 572, 8, "Italian olive oil area (9) from 8 fatty acids",
        task=CLASSIFICATION, drop=("region",)),
    _weka("ljubljana_breast", ["breast-cancer.arff"], "Class", 286, 9,
        "breast cancer recurrence from 9 categorical traits"),
    _weka("unbalanced", ["unbalanced.arff"], "Outcome", 856, 32, "Weka's unbalanced example: a 1-in-8 outcome"),
    _weka("cpu", ["cpu.arff"], "class", 209, 6, "CPU relative performance from 6 hardware columns", task=REGRESSION),
    _sklearn("iris", "load_iris", "species", 150, 4, "iris species from 4 flower measurements"),
    _sklearn("wine", "load_wine", "cultivar", 178, 13, "wine cultivar from 13 chemical measurements"),
    _sklearn("diabetes", "load_diabetes", "progression", 442, 10, "diabetes progression after a year", task=REGRESSION),
]  # fmt: skip
# (classes, smallest class's share, categorical columns) of each set, as `read_bench_frame` reads it
_PROFILES = {
    "letter": (26, 0.037, 0), "satellite": (6, 0.097, 0), "shuttle": (7, 0.0002, 0), "dna": (3, 0.240, 180),
    "vehicle": (4, 0.235, 0), "vowel": (11, 0.091, 1), "soybean": (19, 0.012, 35), "pima": (2, 0.349, 0),
    "breast_cancer": (2, 0.345, 9), "segment": (7, 0.143, 0), "credit_g": (2, 0.300, 13),
    "telco_churn": (2, 0.265, 10), "digits": (10, 0.097, 0), "wdbc": (2, 0.373, 0), "diamonds": (0, 0, 3),
    "ames": (0, 0, 40), "concrete": (0, 0, 0), "car_prices": (0, 0, 0), "boston_housing": (0, 0, 1),
    "glass": (6, 0.042, 0), "house_votes": (2, 0.386, 16), "ionosphere": (2, 0.359, 2), "sonar": (2, 0.466, 0),
    "servo": (0, 0, 4), "attrition": (2, 0.161, 14), "cells": (2, 0.356, 0), "credit_data": (2, 0.282, 4),
    "hpc": (4, 0.060, 2), "lending_club": (2, 0.052, 5), "mlc_churn": (2, 0.141, 3), "penguins": (3, 0.198, 2),
    "sacramento": (0, 0, 2), "biomass": (0, 0, 0), "chicago": (0, 0, 0), "mpg": (0, 0, 6),
    "hmda": (2, 0.120, 9), "credit_card": (2, 0.224, 2), "bank_wages": (3, 0.057, 2), "cps1985": (0, 0, 7),
    "house_prices": (0, 0, 6), "ca_schools": (0, 0, 2), "teaching_ratings": (0, 0, 6),
    "college_distance": (0, 0, 8), "titanic": (2, 0.382, 2), "mroz": (2, 0.432, 2), "salaries": (0, 0, 3),
    "crabs": (2, 0.500, 1), "nlschools": (0, 0, 1), "olive": (9, 0.044, 0), "ljubljana_breast": (2, 0.297, 9),
    "unbalanced": (2, 0.014, 0), "cpu": (0, 0, 0), "iris": (3, 0.333, 0), "wine": (3, 0.270, 0),
    "diabetes": (0, 0, 0),
}  # fmt: skip
_SETS = [dataclasses.replace(s, **dict(zip(("classes", "minority", "categorical"), _PROFILES[s.name]))) for s in _SETS]


# ---------------------------------------------------------------------------- the two groups
GROUPS = ("confirm", "tune")  # the order the benchmark reports them in
# The sets of the benchmark before issue 41: every rule of the tabular recipe was chosen on them.
TUNED_ON = (
    "letter", "satellite", "shuttle", "dna", "vehicle", "vowel", "soybean", "pima", "breast_cancer", "segment",
    "credit_g", "telco_churn", "digits", "wdbc", "diamonds", "ames", "concrete", "car_prices", "boston_housing",
)  # fmt: skip


def name_hash(name: str) -> str:
    """A stable order of set names, the same on every machine and Python (not `hash`)."""
    return hashlib.sha256(name.encode()).hexdigest()


def group_of(sets: list[BenchSet]) -> dict[str, str]:
    """The registry's rule, written once: the sets a rule was already chosen on (`TUNED_ON`) are
    ``tune``; then in each band of task and size (under / from `LARGE_ROWS` rows) the other sets,
    in the order of the sha256 of their names, join ``tune`` until it holds half the band
    (rounded down), and the rest are ``confirm``: no rule has seen them."""
    groups = {s.name: "tune" for s in sets if s.name in TUNED_ON}
    for band in dict.fromkeys((s.task, s.size) for s in sets):
        members = [s for s in sets if (s.task, s.size) == band]
        room = len(members) // 2 - sum(s.name in groups for s in members)
        fresh = sorted((s.name for s in members if s.name not in groups), key=name_hash)
        groups |= {name: "tune" if i < room else "confirm" for i, name in enumerate(fresh)}
    return groups


_GROUPS = group_of(_SETS)
BENCHMARK_SETS: dict[str, BenchSet] = {s.name: dataclasses.replace(s, group=_GROUPS[s.name]) for s in _SETS}


def group_balance(sets: list[BenchSet] | None = None) -> dict[str, dict[str, int]]:
    """For each kind (`BenchSet.kinds`), how many sets each group holds: the rule's check."""
    balance: dict[str, dict[str, int]] = {}
    for s in BENCHMARK_SETS.values() if sets is None else sets:
        for kind in ["all", *s.kinds]:
            counts = balance.setdefault(kind, dict.fromkeys(GROUPS, 0))
            counts[s.group] += 1
    return balance


def available_sets() -> list[tuple[str, str | None]]:
    """Every registered set as (name, the package it still needs or None), in registry order."""
    return [(name, missing_package(bench)) for name, bench in BENCHMARK_SETS.items()]


def bench_set(name: object) -> BenchSet:
    if name is None or str(name) not in BENCHMARK_SETS:
        raise UsageError(f"data.set={name!r} is unknown; choose one of {', '.join(BENCHMARK_SETS)}")
    return BENCHMARK_SETS[str(name)]


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
