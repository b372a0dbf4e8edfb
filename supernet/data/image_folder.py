"""Image folders (``data=image_folder``): torchvision's `ImageFolder` layout, read once into tensors.

    supernet data=image_folder data.path=my_images/ data.image_size=28
    supernet data=image_folder data.path=train/ data.test_path=test/ data.grayscale=false

One sub-folder per class (hidden folders such as ``.ipynb_checkpoints`` skipped); every image is
resized to ``data.image_size`` square, grayscale (``data.grayscale``) or RGB, scaled to [0, 1] and
flattened channel-first. `image_to_tensor` applies the same steps to one PIL image. With no
``data.test_path`` a stratified ``data.test_size`` share is held out as the test split (fixed seed).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.data.datasets import RawData, first_line, warn_absent_classes
from supernet.data.splits import holdout_split, input_path, report_classes, test_seed
from supernet.errors import UsageError

log = logging.getLogger(__name__)


def image_to_tensor(image: Any, spec: Mapping[str, Any]) -> torch.Tensor:
    """A PIL image -> flattened float32 ``(C*H*W,)`` in [0, 1], as `load_image_folder` reads it."""
    from PIL import Image

    size = int(spec["image_size"])
    img = image.convert(spec["mode"]).resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # channel first
    return torch.from_numpy(arr.reshape(-1).astype(np.float32) / 255.0)


def _image_folder(path: Path, source: str) -> tuple[list[str], list[tuple[str, int]]]:
    """torchvision's ImageFolder discovery (class sub-folders, image suffixes), hidden folders
    such as .ipynb_checkpoints skipped."""
    from torchvision.datasets import ImageFolder

    class _Folder(ImageFolder):
        def find_classes(self, directory):  # noqa: ANN001 - torchvision's signature
            classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
            if not classes:
                raise FileNotFoundError("no class folders")
            return classes, {c: i for i, c in enumerate(classes)}

    try:
        folder = _Folder(str(path), loader=lambda p: p)
    except FileNotFoundError as exc:
        if "no class folders" in str(exc):
            raise UsageError(
                f"{source}: no class sub-folders; put each class's images in {path}/<class name>/"
            ) from exc
        raise UsageError(f"{source}: {first_line(exc)}") from exc
    return list(folder.classes), list(folder.samples)


def _read_images(samples: list[tuple[str, int]], spec: Mapping[str, Any]) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    def one(file: str) -> torch.Tensor:
        try:
            with Image.open(file) as img:
                return image_to_tensor(img, spec)
        except (UnidentifiedImageError, OSError) as exc:
            raise UsageError(f"image {file}: cannot be read ({first_line(exc)}); fix or remove it") from exc

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return torch.stack(list(pool.map(one, [f for f, _ in samples])))


def _image_spec(cfg: Mapping) -> dict[str, Any]:
    """The saved ``preprocess`` spec of an image folder: how raw images become model inputs."""
    size = cfg.get("image_size", 28)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise UsageError(f"data.image_size={size!r} must be a positive integer (pixels per side)")
    return {
        "kind": "image",
        "image_size": size,
        "mode": "L" if cfg.get("grayscale", True) else "RGB",
        "resize": "bilinear",
        "scale": "pixel / 255",
        "layout": "channel-first, flattened",
    }


def _test_folder(cfg: Mapping, classes: list[str], spec: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``data.test_path``: its class folders must be among the training ones; labels follow those."""
    test_path = input_path(cfg, "test_path", directory=True)
    test_classes, test_samples = _image_folder(test_path, f"data.test_path={test_path}")
    unknown = [c for c in test_classes if c not in classes]
    if unknown:
        raise UsageError(
            f"data.test_path={test_path}: class folder(s) {unknown} are not in data.path ({', '.join(classes)})"
        )
    remap = [classes.index(c) for c in test_classes]
    test_x = _read_images(test_samples, spec)
    return test_x, torch.tensor([remap[label] for _, label in test_samples], dtype=torch.int64)


def load_image_folder(cfg: Mapping) -> RawData:
    """``data=image_folder``: ``data.path/<class>/<image>`` (optionally ``data.test_path``)."""
    path = input_path(cfg, "path", directory=True)
    spec = _image_spec(cfg)
    size = spec["image_size"]
    source = f"data.path={path}"
    t0 = time.perf_counter()
    classes, samples = _image_folder(path, source)
    if len(classes) < 2:
        raise UsageError(f"{source}: one class folder ({classes[0]!r}); a classifier needs two")
    train_x = _read_images(samples, spec)
    train_y = torch.tensor([label for _, label in samples], dtype=torch.int64)
    if cfg.get("test_path"):
        test_x, test_y = _test_folder(cfg, classes, spec)
    else:  # carve a fixed test split, as for tables, so final reports have one
        keep, hold = holdout_split(train_y, float(cfg.get("test_size", 0.2)), test_seed(cfg), source, "data.test_size")
        test_x, test_y = train_x[hold], train_y[hold]
        train_x, train_y = train_x[keep], train_y[keep]
    hint = "add images of it to data.test_path" if cfg.get("test_path") else "raise data.test_size or add images of it"
    warn_absent_classes(classes, train_y, test_y, source, "test", hint)
    channels = 1 if spec["mode"] == "L" else 3
    log.info(
        "%s: read %d images (%dx%d %s) in %.1f s",
        source,
        len(train_y) + len(test_y),
        size,
        size,
        spec["mode"],
        time.perf_counter() - t0,
    )
    report_classes(source, classes, train_y, test_y)
    return RawData(
        train_x, train_y, test_x, test_y, [channels, size, size], classes, preprocess=spec, normalize="channel"
    )
