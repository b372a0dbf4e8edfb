"""Data sets as device-resident tensors, with a fixed seeded train/validation split.

Built-in sets (``conf/data/``): ``digits`` (scikit-learn's embedded 8x8 digits, offline, the
default), ``mnist``, ``fashion_mnist``, ``kmnist`` (torchvision); the regression sets ``friedman``,
``diabetes``, ``linnerud`` (3 targets), ``cpu`` and ``cpu_vendor`` (Weka's ARFF tables) and the
imbalanced ``imbalanced`` (`supernet.data.builtin`); ``bench_table`` reads the real tables of
`supernet.data.benchmark_sets` (``data.set=<name>``). Tables (`supernet.data.tables`: CSV, Parquet,
ARFF) and image folders (`supernet.data.image_folder`) register here under ``csv``,
``tabular_demo`` and ``image_folder``.

Every loader returns *raw* features (images as floats in [0, 1], flattened) and its targets
(class labels, or regression targets in their own units); this module carves the validation split
from the training set (stratified for classes, a seeded shuffle for regression targets; seeded by
``data.split_seed``, never the run seed, so every run and every search sees the same split),
computes the normalisation, the class weights (``data.class_weight``) and a regression's target
standardisation from the training split only, and applies them to all splits once. The official
test split is kept apart and is only read for final reports (retrain, ``supernet-score split=test``).

    python -c "from supernet.data.datasets import load_data; b = load_data({'name': 'digits'}); print(b.summary())"
"""

from __future__ import annotations

import gzip
import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from supernet.core.task import CLASSIFICATION, KINDS, REGRESSION, Task, balanced_weights, check_class_weight
from supernet.data.bundle import DataBundle, Normalize, per_feature
from supernet.data.periodic import check_periodic
from supernet.data.scalers import check_scaler
from supernet.data.table_recipe import Auto
from supernet.data.tensor_loader import TensorLoader
from supernet.errors import UsageError
from supernet.files import atomic_write_bytes

__all__ = [  # DataBundle, Normalize, per_feature: supernet.data.bundle; TensorLoader: supernet.data.tensor_loader
    "DEBIAN_FASHION_MNIST",
    "LOADERS",
    "DataBundle",
    "Normalize",
    "RawData",
    "TensorLoader",
    "bundle_from_raw",
    "check_data_config",
    "first_line",
    "holdout_indices",
    "load_data",
    "per_feature",
    "random_split",
    "stratified_split",
    "warn_absent_classes",
]

log = logging.getLogger(__name__)

# The Debian package `dataset-fashion-mnist` installs the original gz files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

TORCHVISION_SETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass
class RawData:
    """What a loader returns: raw float features ``(N, F)``, the targets, and how to read them.

    Classification: int64 labels ``(N,)`` and `class_names`. Regression: float targets ``(N, T)``
    in their own units, `targets` naming the T columns, and no `class_names`."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    input_shape: list[int]
    class_names: list[str]
    # How raw inputs were built from the user's files (tabular encodings...); saved with exports.
    preprocess: dict[str, Any] = field(default_factory=dict)
    # "channel": one mean/std per image channel; "feature": one per input feature (tabular).
    normalize: str = "channel"
    targets: list[str] = field(default_factory=list)  # regression: the target columns
    autos: tuple[Auto, ...] = ()  # what the loader's autos became (data.task, data.scaler, data.periodic)

    @property
    def kind(self) -> str:
        return REGRESSION if self.train_y.is_floating_point() else CLASSIFICATION


# ---------------------------------------------------------------------------- registry
def _load_digits(cfg: Mapping) -> RawData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0  # pixel values are 0..16
    y = torch.tensor(digits.target, dtype=torch.int64)
    # digits has no official test split: carve a fixed stratified one.
    train_idx, test_idx = stratified_split(y, float(cfg.get("test_size", 0.2)), seed=12345)
    return RawData(x[train_idx], y[train_idx], x[test_idx], y[test_idx], [1, 8, 8], [str(i) for i in range(10)])


def _load_torchvision(cfg: Mapping) -> RawData:
    import torchvision.datasets as tvd

    name = cfg["name"]
    cls = getattr(tvd, TORCHVISION_SETS[name])
    root = Path(cfg.get("root") or "data")
    raw_dir = root / cls.__name__ / "raw"
    if name == "fashion_mnist":
        _unpack_debian_fashion_mnist(raw_dir)
    have_files = all((raw_dir / f).exists() for f in IDX_FILES)
    download = bool(cfg.get("download", True)) and not have_files
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except (RuntimeError, OSError) as exc:  # torchvision raises RuntimeError("Dataset not found")
        raise UsageError(
            f"data={name}: no local copy in {raw_dir} and the download failed ({first_line(exc)}); "
            f"put the IDX files {', '.join(IDX_FILES)} (or their .gz) into {raw_dir}"
        ) from exc

    def flat(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return ds.data.reshape(len(ds.data), -1).float().div_(255.0), ds.targets.long()

    train_x, train_y = flat(train)
    test_x, test_y = flat(test)
    return RawData(train_x, train_y, test_x, test_y, [1, 28, 28], [str(c) for c in train.classes])


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unpack_debian_fashion_mnist(raw_dir: Path) -> None:
    """Debian recompressed the .gz files, so torchvision's md5 check fails on them; the
    decompressed IDX files are byte-identical to the originals and torchvision reads those."""
    if not DEBIAN_FASHION_MNIST.is_dir() or all((raw_dir / f).exists() for f in IDX_FILES):
        return
    raw_dir.mkdir(parents=True, exist_ok=True)
    for stem in IDX_FILES:
        src = DEBIAN_FASHION_MNIST / f"{stem}.gz"
        if src.exists() and not (raw_dir / stem).exists():
            with gzip.open(src, "rb") as fin:
                atomic_write_bytes(raw_dir / stem, fin.read())
    log.info("using Fashion-MNIST from %s (decompressed into %s)", DEBIAN_FASHION_MNIST, raw_dir)


def _in_memory(cfg: Mapping) -> RawData:
    """``data=sklearn``: the rows a scikit-learn estimator's ``fit(X, y)`` was given (its config
    names them; `bundle_from_raw` takes the rows): nothing to read from disk."""
    raise UsageError(
        "data=sklearn holds the rows given to fit(X, y) of supernet.sklearn's estimators and cannot be read "
        "again: save them as a table (DataFrame.to_csv) and pass data=csv data.path=... data.target=..."
    )


# name -> loader; loaders for user files are imported lazily (pandas is only needed there).
LOADERS: dict[str, Callable[[Mapping], RawData] | str] = {
    "digits": _load_digits,
    "mnist": _load_torchvision,
    "fashion_mnist": _load_torchvision,
    "kmnist": _load_torchvision,
    "csv": "supernet.data.tables:load_table",
    "tabular_demo": "supernet.data.tables:load_tabular_demo",
    "image_folder": "supernet.data.image_folder:load_image_folder",
    "friedman": "supernet.data.builtin:load_friedman",
    "diabetes": "supernet.data.builtin:load_diabetes",
    "linnerud": "supernet.data.builtin:load_linnerud",
    "imbalanced": "supernet.data.builtin:load_imbalanced",
    "cpu": "supernet.data.builtin:load_weka_table",
    "cpu_vendor": "supernet.data.builtin:load_weka_table",
    "bench_table": "supernet.data.benchmark_sets:load_bench_table",
    "sklearn": _in_memory,
}


def _resolve_loader(name: str) -> Callable[[Mapping], RawData]:
    if name not in LOADERS:
        raise UsageError(f"data.name={name!r} is unknown; choose one of {sorted(LOADERS)}")
    loader = LOADERS[name]
    if isinstance(loader, str):
        module, func = loader.split(":")
        loader = getattr(importlib.import_module(module), func)
    return loader


def check_data_config(cfg: Mapping) -> None:
    """Cheap checks before any data is read (the CLI calls this first)."""
    name = cfg.get("name")
    if name not in LOADERS:
        raise UsageError(f"data.name={name!r} is unknown; choose one of {sorted(LOADERS)}")
    val_size = cfg.get("val_size", 0.2)
    if val_size is None or float(val_size) <= 0 or (float(val_size) >= 1 and float(val_size) % 1):
        raise UsageError(f"data.val_size={val_size} must be a fraction in (0, 1) or a count >= 1")
    for key in ("batch_size", "eval_batch_size"):
        if key in cfg and (cfg[key] is None or int(cfg[key]) < 1):
            raise UsageError(f"data.{key}={cfg[key]} must be a positive integer")
    if cfg.get("loader", "tensor") not in ("tensor", "dataloader"):
        raise UsageError(f"data.loader={cfg.get('loader')!r} must be 'tensor' or 'dataloader'")
    check_scaler(cfg)
    check_periodic(cfg)


# ---------------------------------------------------------------------------- splits
def stratified_split(y: torch.Tensor, holdout: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, holdout): `holdout` is a fraction in (0, 1) or a count; per-class proportional."""
    n = len(y)
    n_hold = int(round(holdout * n)) if holdout < 1 else int(holdout)
    if not 0 < n_hold < n:
        raise UsageError(f"cannot hold out {holdout} of {n} samples")
    g = torch.Generator().manual_seed(seed)
    keep, hold = [], []
    classes = torch.unique(y)
    for c in classes.tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(len(idx) * n_hold / n))
        hold.append(idx[:k])
        keep.append(idx[k:])
    keep_t, hold_t = torch.cat(keep), torch.cat(hold)
    # Shuffle across classes too (a class-sorted split would make index-order batches skewed).
    return keep_t[torch.randperm(len(keep_t), generator=g)], hold_t[torch.randperm(len(hold_t), generator=g)]


def warn_absent_classes(
    class_names: list[str], all_y: torch.Tensor, split_y: torch.Tensor, source: str, split: str, fix: str
) -> None:
    """Warn, naming them, about classes with rows in `all_y` but none in the `split` rows (a class
    too small for its proportional share to round up to one row): nothing measures them there.
    `fix` says what to do, e.g. ``raise data.val_size or add rows of it``."""
    present = set(torch.unique(split_y).tolist())
    counts = torch.bincount(all_y, minlength=len(class_names)).tolist()
    absent = [
        f"{name!r} ({n} rows)"
        for i, (name, n) in enumerate(zip(class_names, counts, strict=True))
        if n and i not in present
    ]
    if absent:
        log.warning(
            "%s: class %s too small to appear in the %s split, whose accuracy does not measure it: %s",
            source,
            ", ".join(absent),
            split,
            fix,
        )


def _limit(x: torch.Tensor, y: torch.Tensor, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if limit is None or limit >= len(y):
        return x, y
    return x[:limit], y[:limit]


def random_split(n: int, holdout: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, holdout) of a seeded shuffle: the split of regression targets."""
    n_hold = int(round(holdout * n)) if holdout < 1 else int(holdout)
    if not 0 < n_hold < n:
        raise UsageError(f"cannot hold out {holdout} of {n} samples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_hold:], perm[:n_hold]


def holdout_indices(y: torch.Tensor, holdout: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified by class for labels, a seeded shuffle for regression targets."""
    if y.is_floating_point():
        return random_split(len(y), holdout, seed)
    return stratified_split(y, holdout, seed)


def load_data(cfg: Mapping) -> DataBundle:
    """Load ``cfg['name']``, split, normalise: the one entry point every command uses."""
    check_data_config(cfg)
    return bundle_from_raw(_resolve_loader(cfg["name"])(cfg), cfg)


def bundle_from_raw(raw: RawData, cfg: Mapping, val: tuple[torch.Tensor, torch.Tensor] | None = None) -> DataBundle:
    """What `load_data` does after the loader: carve the validation split, build the task, normalise.

    `val`: a validation split given apart (raw features and targets, like ``raw.train_*``), used
    instead of one carved from ``raw.train_*`` (the scikit-learn estimators' ``eval_set``)."""
    check_task(cfg, raw)
    if val is None:
        seed = int(cfg.get("split_seed", 0))
        train_idx, val_idx = holdout_indices(raw.train_y, float(cfg.get("val_size", 0.2)), seed)
        val = raw.train_x[val_idx], raw.train_y[val_idx]
        train = raw.train_x[train_idx], raw.train_y[train_idx]
    else:
        train = raw.train_x, raw.train_y
    train_x, train_y = _limit(*train, cfg.get("limit_train"))
    val_x, val_y = _limit(*val, cfg.get("limit_val"))
    test_x, test_y = raw.test_x, raw.test_y
    if test_x is not None:
        test_x, test_y = _limit(test_x, test_y, cfg.get("limit_test"))
    if raw.kind == CLASSIFICATION:
        fix = "raise data.val_size or add rows of it"
        warn_absent_classes(raw.class_names, raw.train_y, val_y, f"data={cfg['name']}", "validation", fix)
    task = build_task(cfg, raw, train_y)
    train_y, val_y = task.standardise(train_y), task.standardise(val_y)  # a classification's labels: as they are
    test_y = None if test_y is None else task.standardise(test_y)

    groups = raw.input_shape[0] if raw.normalize == "channel" else train_x.shape[1]
    by_group = train_x.reshape(len(train_x), groups, -1)
    mean = by_group.mean(dim=(0, 2))
    std = by_group.std(dim=(0, 2)).clamp_min(1e-6)  # constant features must not divide by zero
    norm = Normalize(mean.tolist(), std.tolist())
    bundle = DataBundle(
        name=cfg["name"],
        train_x=norm(train_x),
        train_y=train_y,
        val_x=norm(val_x),
        val_y=val_y,
        test_x=None if test_x is None else norm(test_x),
        test_y=test_y,
        input_shape=list(raw.input_shape),
        class_names=list(raw.class_names),
        mean=mean.tolist(),
        std=std.tolist(),
        preprocess=raw.preprocess,
        task=task,
        autos=tuple(raw.autos),
    )
    log.info(bundle.summary())
    return bundle


# ---------------------------------------------------------------------------- the task
def check_task(cfg: Mapping, raw: RawData) -> None:
    """``data.task`` against what the loader found (tables apply the ``auto`` rule themselves)."""
    wanted = str(cfg.get("task") or "auto")
    if wanted not in ("auto", *KINDS):
        raise UsageError(f"data.task={wanted!r} must be auto, classification or regression")
    if wanted != "auto" and wanted != raw.kind:
        raise UsageError(f"data.task={wanted} but data={cfg['name']} is a {raw.kind} data set")
    check_class_weight(raw.kind, cfg.get("class_weight"))


def build_task(cfg: Mapping, raw: RawData, train_y: torch.Tensor) -> Task:
    """The task, its class weights or its target scaling measured on the training split."""
    weights = class_weights(cfg.get("class_weight"), raw.class_names, train_y)  # None for a regression
    return Task.for_training(raw.kind, train_y, raw.targets, weights)


def class_weights(spec: Any, class_names: list[str], train_y: torch.Tensor) -> tuple[float, ...] | None:
    """``data.class_weight``: null (unweighted), ``balanced`` (from the training split) or a
    mapping ``{class name: weight}`` (classes it leaves out weigh 1)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec != "balanced":
            raise UsageError(f"data.class_weight={spec!r} must be balanced, null or a mapping {{class: weight}}")
        return tuple(balanced_weights(train_y, len(class_names)))
    if not isinstance(spec, Mapping):
        raise UsageError(f"data.class_weight={spec!r} must be balanced, null or a mapping {{class: weight}}")
    weights = [1.0] * len(class_names)
    for name, w in spec.items():
        if str(name) not in class_names:
            raise UsageError(f"data.class_weight names class {name!r}, which is not one of {class_names}")
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not w > 0:
            raise UsageError(f"data.class_weight.{name}={w!r} must be a positive number")
        weights[class_names.index(str(name))] = float(w)
    return tuple(weights)
