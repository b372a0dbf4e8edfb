"""Finding and safely loading supernet checkpoints.

``load_supernet(path)`` accepts a ``.ckpt`` file, a training run directory (its
``checkpoints/last.ckpt``, or its newest complete ``epochNNN.ckpt`` when training was killed before
writing ``last.ckpt``) or ``"last"`` (the newest training run under ``outputs/train/runs``); an
export folder is refused with what to pass instead.
Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers only,
nothing is unpickled into code. A truncated or corrupt file is a clear error, never half-loaded.

    from supernet import load_supernet
    sn = load_supernet("outputs/train/runs/<stamp>/checkpoints/last.ckpt")
    logits = sn.model(sn.normalize(raw_x), [256, 128])
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from supernet.core.space import SearchSpace
from supernet.core.supermlp import SuperMLP, configured_heads, configured_norm
from supernet.data.datasets import Normalize, first_line
from supernet.errors import UsageError
from supernet.files import process_alive

TRAIN_RUNS = Path("outputs/train/runs")


def resolve_checkpoint(path: str | Path, key: str = "ckpt_path") -> Path:
    """A checkpoint file from a file path, a run dir or ``last``; UsageError when there is none.

    A run dir gives its ``checkpoints/last.ckpt``, or, when training was killed between writing
    an epoch's checkpoint and ``last.ckpt``, its newest complete ``epochNNN.ckpt``."""
    if str(path) == "last":
        runs = sorted(TRAIN_RUNS.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise UsageError(f"{key}=last: no training run with checkpoints/last.ckpt under {TRAIN_RUNS}/")
        return runs[-1]
    p = Path(path)
    if p.is_dir():
        _refuse_export(p, key, path)
        found = run_dir_checkpoint(p)
        if found is None:
            raise UsageError(
                f"{key}={path} is a directory without checkpoints/last.ckpt or a complete checkpoints/epochNNN.ckpt; "
                "pass a training run dir, a .ckpt file or 'last'"
            )
        return found
    if not p.is_file():
        raise UsageError(f"{key}={path} does not exist; pass a .ckpt file, a training run dir or 'last'")
    if p.suffix.lower() in EXPORT_SUFFIXES:
        _refuse_export(p.parent, key, path)
    return p


EXPORT_MARKER_FILE = "arch.yaml"  # supernet.io.mlp.ARCH_FILE (io.subnet, which reads it, imports this module)
EXPORT_SUFFIXES = (".yaml", ".safetensors", ".onnx")  # the files of an export folder
EPOCH_CKPT = re.compile(r"epoch(\d+)\.ckpt")
# A write in progress (`supernet.files.atomic_write_bytes`): .<name>.<writer pid>.tmp
ATOMIC_TMP = re.compile(r"\..+\.ckpt\.(\d+)\.tmp")


def run_dir_checkpoint(run_dir: Path) -> Path | None:
    """``last.ckpt`` of a run dir (``checkpoints/`` or the dir itself), else the highest-numbered
    ``epochNNN.ckpt`` that loads. Temporary files a killed write left in ``checkpoints/`` are
    removed: they are never complete."""
    checkpoints = run_dir / "checkpoints"
    _remove_leftover_tmp(checkpoints)
    for candidate in (checkpoints / "last.ckpt", run_dir / "last.ckpt"):
        if candidate.is_file():
            return candidate
    epochs = [(int(m[1]), p) for p in checkpoints.glob("epoch*.ckpt") if (m := EPOCH_CKPT.fullmatch(p.name))]
    for _, candidate in sorted(epochs, reverse=True):
        try:
            read_checkpoint(candidate)
        except UsageError:
            continue
        return candidate
    return None


def _remove_leftover_tmp(checkpoints: Path) -> None:
    """Delete the temporary checkpoint files of writers that are gone (a live one keeps its own)."""
    if not checkpoints.is_dir():
        return
    for tmp in checkpoints.glob("*.tmp"):
        m = ATOMIC_TMP.fullmatch(tmp.name)
        if m is None and not tmp.name.endswith(".ckpt.tmp"):
            continue  # not a checkpoint's
        if m is not None and process_alive(int(m[1])):
            continue
        tmp.unlink(missing_ok=True)


def _refuse_export(directory: Path, key: str, path: str | Path) -> None:
    """An export folder (``arch.yaml``) passed where a supernet checkpoint is needed."""
    if (directory / EXPORT_MARKER_FILE).is_file() and not (directory / "checkpoints").is_dir():
        raise UsageError(
            f"{key}={path} is an exported subnet ({EXPORT_MARKER_FILE}), not a supernet: pass a supernet .ckpt, "
            f"a training run dir or 'last' (supernet-retrain subnet={directory} takes exports)"
        )


def read_checkpoint(path: Path, key: str = "ckpt_path") -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``, turning every failure into a one-line error."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as exc:
        raise UsageError(f"{key}={path}: cannot read the checkpoint (permission denied); fix its permissions") from exc
    except Exception as exc:  # truncated zip, pickle with code, random bytes...
        reason = first_line(exc)[:160]
        raise UsageError(
            f"{key}={path} is corrupt, truncated or not a safe checkpoint ({reason}); "
            "use another checkpoint (e.g. an earlier epoch) or retrain"
        ) from exc
    if not isinstance(ckpt, dict) or "supernet" not in ckpt or "state_dict" not in ckpt:
        raise UsageError(
            f"{key}={path} is not a supernet checkpoint (no 'supernet' section); pass one written by supernet-train"
        )
    return ckpt


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadedSupernet:
    model: SuperMLP
    space: SearchSpace
    data: dict[str, Any]  # DataBundle.info(): input shape, classes, normalisation, preprocess
    hparams: dict[str, Any]
    path: Path
    sha256: str

    @property
    def normalize(self) -> Normalize:
        n = self.data["normalization"]
        return Normalize(n["mean"], n["std"])


def merged_data_config(data: Mapping[str, Any], overrides: Mapping | None = None) -> dict[str, Any]:
    """A saved data section's config (``config``, else just its ``name``) with the non-null
    ``overrides`` on top (e.g. ``data.root`` on another machine, ``data.limit_val`` for a quick
    look). `data` is a checkpoint's ``supernet.data`` or an export's ``arch.yaml`` ``data``."""
    cfg = dict(data.get("config") or {"name": data.get("name")})
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return cfg


def data_config(loaded: LoadedSupernet, overrides: Mapping | None = None) -> dict[str, Any]:
    """The data config the supernet was trained with, with the non-null ``overrides`` on top."""
    return merged_data_config(loaded.data, overrides)


def saved_heads(meta: Mapping[str, Any]) -> str:
    """The ``model.heads`` a checkpoint's ``supernet`` section was trained with. Checkpoints from
    before per-depth heads have no "model" section: they share one head."""
    return (meta.get("model") or {}).get("heads", "shared")


def saved_norm(meta: Mapping[str, Any]) -> str:
    """The ``model.norm`` a checkpoint was trained with (``none`` for checkpoints from before it)."""
    return (meta.get("model") or {}).get("norm", "none")


def resume_target(ckpt_path: str | None, model_cfg: Mapping | None) -> tuple[Path | None, Path | None]:
    """(checkpoint file, run dir to continue in). Resuming from a run dir or `last` continues in
    that run's dir, so its checkpoints, TensorBoard curves and result.json stay in one place.
    The checkpoint's ``model`` settings must be the ones asked for: they shape the weights."""
    if not ckpt_path:
        return None, None
    ckpt = resolve_checkpoint(ckpt_path)
    meta = read_checkpoint(ckpt)["supernet"]  # corrupt or foreign files stop here, before any work
    for key, saved, asked in (
        ("heads", saved_heads(meta), configured_heads(model_cfg)),
        ("norm", saved_norm(meta), configured_norm(model_cfg)),
    ):
        if saved != asked:
            raise UsageError(
                f"ckpt_path={ckpt_path} was trained with model.{key}={saved}; resume it with model.{key}={saved}"
            )
    in_place = str(ckpt_path) == "last" or Path(ckpt_path).is_dir()
    return ckpt, (ckpt.parent.parent if in_place else None)


def load_supernet(path: str | Path, key: str = "ckpt_path") -> LoadedSupernet:
    ckpt_file = resolve_checkpoint(path, key)
    ckpt = read_checkpoint(ckpt_file, key)
    meta = ckpt["supernet"]
    space = SearchSpace.from_dict(meta["space"])
    model = SuperMLP(space, heads=saved_heads(meta), norm=saved_norm(meta))
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UsageError(
            f"{key}={ckpt_file}: weights do not match the saved space ({str(exc).splitlines()[0]})"
        ) from exc
    model.eval()
    return LoadedSupernet(
        model, space, meta["data"], dict(ckpt.get("hyper_parameters", {})), ckpt_file, file_sha256(ckpt_file)
    )
