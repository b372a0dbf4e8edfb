"""Finding and safely loading supernet checkpoints.

``load_supernet(path)`` accepts a ``.ckpt`` file, a training run directory (its
``checkpoints/last.ckpt``) or ``"last"`` (the newest training run under ``outputs/train/runs``).
Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers only,
nothing is unpickled into code. A truncated or corrupt file is a clear error, never half-loaded.

    from supernet import load_supernet
    sn = load_supernet("outputs/train/runs/<stamp>/checkpoints/last.ckpt")
    logits = sn.model(sn.normalize(raw_x), [256, 128])
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from supernet.core.space import SearchSpace
from supernet.core.supermlp import SuperMLP, configured_heads, configured_norm
from supernet.data.datasets import Normalize
from supernet.errors import UsageError

TRAIN_RUNS = Path("outputs/train/runs")


def resolve_checkpoint(path: str | Path, key: str = "ckpt_path") -> Path:
    """A checkpoint file from a file path, a run dir or ``last``; UsageError when there is none."""
    if str(path) == "last":
        runs = sorted(TRAIN_RUNS.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise UsageError(f"{key}=last: no training run with checkpoints/last.ckpt under {TRAIN_RUNS}/")
        return runs[-1]
    p = Path(path)
    if p.is_dir():
        for candidate in (p / "checkpoints" / "last.ckpt", p / "last.ckpt"):
            if candidate.is_file():
                return candidate
        raise UsageError(f"{key}={path} is a directory without checkpoints/last.ckpt")
    if not p.is_file():
        raise UsageError(f"{key}={path} does not exist; pass a .ckpt file, a training run dir or 'last'")
    return p


def read_checkpoint(path: Path, key: str = "ckpt_path") -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``, turning every failure into a one-line error."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, random bytes...
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
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


def data_config(loaded: LoadedSupernet, overrides: Mapping | None = None) -> dict[str, Any]:
    """The data config the supernet was trained with, with the non-null ``overrides`` on top
    (e.g. ``data.root`` on another machine, ``data.limit_val`` for a quick look)."""
    cfg = dict(loaded.data.get("config") or {"name": loaded.data["name"]})
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return cfg


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
