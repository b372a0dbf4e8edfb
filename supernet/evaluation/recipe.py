"""The recipes as plain data, each checked in one place: the fine-tune recipe (``search.finetune``,
``rank.finetune``) and the short stand-alone training recipe (``rank.*``, ``search.standalone.*``).

Torch-free, so that the commands that only read results (``supernet-report``) never import torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from supernet.errors import UsageError
from supernet.files import conf_node

# The defaults of `search.finetune` (conf/blocks/search.yaml); `rank.finetune` sets its own.
_DEFAULTS = conf_node("blocks/search")["finetune"]

SCORES = ("loss", "acc")


@dataclass(frozen=True)
class FinetuneRecipe:
    """Adam at a constant `lr` for `steps` mini-batches of `batch_size` drawn with replacement,
    then the arch is ranked by its validation `score`: ``loss`` (cross-entropy, lower is better)
    or ``acc``. ``steps=0`` scores the inherited weights as they are."""

    steps: int = _DEFAULTS["steps"]
    lr: float = _DEFAULTS["lr"]
    batch_size: int = _DEFAULTS["batch_size"]
    score: str = _DEFAULTS["score"]

    @classmethod
    def from_cfg(cls, cfg: Mapping | None, prefix: str, other_keys: Sequence[str] = ()) -> FinetuneRecipe:
        """From a ``<prefix>.*`` node (``rank.finetune``, ``search.finetune``) that may also hold
        `other_keys`; missing keys take the defaults. Raises `UsageError` naming ``<prefix>.<key>``."""
        cfg = dict(cfg or {})
        known = ["steps", "lr", "batch_size", "score", *other_keys]
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise UsageError(f"{prefix}.{unknown[0]} is not a fine-tune setting: use {', '.join(known)}")
        values = {k: cfg.get(k, getattr(cls, k)) for k in ("steps", "lr", "batch_size", "score")}
        for key, lo in (("steps", 0), ("batch_size", 1)):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or v < lo:
                raise UsageError(f"{prefix}.{key}={v!r} must be an integer >= {lo}")
            values[key] = int(v)
        lr = values["lr"]
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise UsageError(f"{prefix}.lr={lr!r} must be a number > 0")
        values["lr"] = float(lr)
        if values["score"] not in SCORES:
            raise UsageError(f"{prefix}.score={values['score']!r} must be one of {', '.join(SCORES)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return {"optimizer": "adam", "schedule": "constant", **asdict(self)}

    def rank_value(self, scores: Mapping[str, float]) -> float:
        """Higher is better: the accuracy, or minus the loss."""
        return scores["acc"] if self.score == "acc" else -scores["loss"]


@dataclass(frozen=True)
class Recipe:
    """The fixed short training recipe every stand-alone net gets."""

    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0

    @classmethod
    def from_cfg(cls, cfg: Mapping, prefix: str = "rank", batch_size_default: int | None = None) -> Recipe:
        """From a config node (``rank.*`` or ``search.standalone.*``); raises `UsageError` naming
        ``<prefix>.<key>`` for a recipe that cannot train. A null batch_size takes the data's."""
        batch_size = cfg.get("batch_size")
        if batch_size is None:
            batch_size = batch_size_default if batch_size_default is not None else cls.batch_size
        values = {
            "epochs": cfg.get("epochs", cls.epochs),
            "batch_size": batch_size,
            "lr": cfg.get("lr", cls.lr),
            "weight_decay": cfg.get("weight_decay", cls.weight_decay),
        }
        for key in ("epochs", "batch_size"):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or v < 1:
                raise UsageError(f"{prefix}.{key}={v!r} must be an integer >= 1 (a recipe with no steps cannot train)")
            values[key] = int(v)
        for key, lo_ok in (("lr", lambda v: v > 0), ("weight_decay", lambda v: v >= 0)):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo_ok(float(v)):
                bound = "> 0" if key == "lr" else ">= 0"
                raise UsageError(f"{prefix}.{key}={v!r} must be a number {bound}")
            values[key] = float(v)
        return cls(**values)

    def to_dict(self) -> dict:
        return {"optimizer": "adam", "schedule": "cosine", **asdict(self)}

    def digest(self) -> str:
        """Short hash of everything that changes a result (part of the cache key)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
