"""An exported subnet read back: `load_subnet` (and `Subnet`, the model it returns).

    python -c "from supernet import load_subnet; m = load_subnet('subnets/best'); print(m.arch)"

`load_subnet` never unpickles anything (YAML ``safe_load`` + safetensors), checks every key and
shape against ``arch.yaml`` and the weights' sha256, and names what is wrong. The model and the
format's fields are `supernet.io.mlp` (their names stay importable from here); the layout of an
export directory and how it is written are in `supernet.io.export`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from supernet.data.datasets import first_line
from supernet.errors import UsageError
from supernet.files import load_yaml
from supernet.io.checkpoint import file_sha256
from supernet.io.ensemble import EnsembleSubnet, build_ensemble, checked_ensemble_meta, ensemble_shapes
from supernet.io.mlp import (  # noqa: F401  (the names this module has always offered)
    ARCH_FILE,
    ENSEMBLE_KIND,
    FORMAT,
    FORMAT_VERSION,
    LABEL_KINDS,
    PICKLE_SUFFIXES,
    SUBNET_KIND,
    WEIGHTS_FILE,
    Subnet,
    checked_fields,
    checked_inputs,
    class_labels,
    expected_shapes,
    fold_output_scale,
    label_fields,
    with_tensors,
)


# ---------------------------------------------------------------------------- reading
def load_subnet(path: str | Path, key: str = "subnet") -> Subnet | EnsembleSubnet:
    """Rebuild the exported model from ``arch.yaml`` + ``model.safetensors``; nothing is unpickled.

    An ensemble export (``kind: ensemble``, `supernet.io.ensemble`) comes back as an
    `EnsembleSubnet` that averages its members. Every problem (missing file, a pickle instead of an
    export, a key or shape that disagrees with ``arch.yaml``, weights changed after export) is a
    one-line `UsageError`.
    """
    root = Path(path)
    _check_export_dir(root, path, key)
    meta = _read_meta(root / ARCH_FILE, key)
    tensors = _read_weights(root / WEIGHTS_FILE, key)
    ensemble = meta.get("kind") == ENSEMBLE_KIND
    if ensemble:
        check_tensors(ensemble_shapes(meta), tensors, f"the {len(meta['members'])} members' archs", path, key)
    else:
        check_tensors(expected_shapes(meta), tensors, f"arch {meta['arch']}", path, key)
    recorded = (meta.get("weights") or {}).get("sha256")
    if recorded and recorded != file_sha256(root / WEIGHTS_FILE):
        raise UsageError(
            f"{key}={path}: {WEIGHTS_FILE} does not match the sha256 in {ARCH_FILE} (weights.sha256): it was "
            f"changed after export; re-export it, or delete weights.sha256 from {ARCH_FILE} to accept the new weights"
        )
    return build_ensemble(meta, tensors) if ensemble else with_tensors(Subnet.from_meta(meta), tensors)


def _check_export_dir(root: Path, path: str | Path, key: str) -> None:
    """A directory holding both files; a pickle or a lone file is refused by name."""
    if not root.exists():
        raise UsageError(f"{key}={path} does not exist; pass an export directory written by supernet-export")
    if not root.is_dir():
        if root.suffix.lower() in PICKLE_SUFFIXES or _looks_pickled(root):
            raise UsageError(
                f"{key}={path} is a PyTorch/pickle file; supernet never unpickles model files: pass an export "
                f"directory ({ARCH_FILE} + {WEIGHTS_FILE}) written by supernet-export"
            )
        raise UsageError(f"{key}={path} is a file, not an export directory ({ARCH_FILE} + {WEIGHTS_FILE})")
    for name in (ARCH_FILE, WEIGHTS_FILE):
        if not (root / name).is_file():
            others = sorted(p.name for p in root.glob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
            hint = f" (it holds {others}: pickle files are never loaded)" if others else ""
            raise UsageError(f"{key}={path} is missing {name}{hint}; re-export it with supernet-export")
        _check_readable(root / name, path, key)


def _check_readable(file: Path, path: str | Path, key: str) -> None:
    """A file the reader may not open is named as such, not as a broken export."""
    try:
        with open(file, "rb"):
            pass
    except PermissionError:
        raise UsageError(
            f"{key}={path}: cannot read {file.name} (permission denied); fix its permissions (chmod a+r {file})"
        ) from None


def check_tensors(
    expected: Mapping[str, tuple[int, ...]], tensors: Mapping[str, torch.Tensor], what: str, path: str | Path, key: str
) -> None:
    """Exactly the `expected` keys and shapes (what ``arch.yaml``'s arch, `what`, needs), float dtypes."""
    missing = [k for k in expected if k not in tensors]
    extra = sorted(k for k in tensors if k not in expected)
    if missing or extra:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
        raise UsageError(f"{key}={path}: {WEIGHTS_FILE} does not match {what} in {ARCH_FILE}: {'; '.join(parts)}")
    for name, shape in expected.items():
        got = tuple(tensors[name].shape)
        if got != shape:
            raise UsageError(
                f"{key}={path}: tensor {name} has shape {list(got)} in {WEIGHTS_FILE} but {what} "
                f"in {ARCH_FILE} needs {list(shape)}"
            )
        if not tensors[name].is_floating_point():
            raise UsageError(f"{key}={path}: tensor {name} has dtype {tensors[name].dtype}, expected a float type")


def _looks_pickled(path: Path) -> bool:
    """A torch.save zip or a raw pickle stream (protocol 2+ starts with 0x80)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _read_meta(path: Path, key: str) -> dict[str, Any]:
    try:
        meta = load_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = first_line(exc)[:160]
        raise UsageError(f"{key}={path} is not valid YAML ({reason}); re-export the subnet") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{key}={path} must hold a mapping of export fields, got {type(meta).__name__}")
    if meta.get("format", FORMAT) != FORMAT or int(meta.get("format_version", FORMAT_VERSION)) > FORMAT_VERSION:
        raise UsageError(
            f"{key}={path}: format {meta.get('format')!r} version {meta.get('format_version')} is not "
            f"{FORMAT} <= {FORMAT_VERSION}; re-export with this version of supernet"
        )
    kind = meta.get("kind", SUBNET_KIND)
    if kind == ENSEMBLE_KIND:
        return checked_ensemble_meta(meta, path, key)
    if kind != SUBNET_KIND:
        raise UsageError(
            f"{key}={path}: kind={kind!r} is not {SUBNET_KIND} or {ENSEMBLE_KIND}; "
            "re-export with this version of supernet"
        )
    return checked_fields(meta, path, key)


def _read_weights(path: Path, key: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = first_line(exc)[:160]
        raise UsageError(
            f"{key}={path} is not a valid safetensors file ({reason}); it may be truncated or a pickle: re-export it"
        ) from None
