"""Plain files written safely: atomic text/JSON writes and plain-data conversion.

Every file a job writes goes through `atomic_write_text` (a temporary sibling, fsync, rename), so a
reader or a resumed job never sees half a file. `to_plain` turns configs, tensors and tuples into
JSON/YAML-safe data; it is the one converter the checkpoints, states and exports use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def to_plain(obj: Any) -> Any:
    """Plain JSON/YAML-safe data: OmegaConf nodes resolved, tuples as lists, numpy/torch scalars
    as Python numbers; anything else unknown as its string."""
    if type(obj).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return to_plain(OmegaConf.to_container(obj, resolve=True))
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [to_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return str(obj)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a hidden temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, payload: Mapping) -> None:
    """Atomic JSON write: a reader never sees half a file."""
    atomic_write_text(path, json.dumps(to_plain(payload), indent=2) + "\n")
