"""Turning the composed Hydra config into objects, with every check done before any work.

Each command calls its ``check_*`` functions first, so a typo costs a second, not a training run.
`SpaceSettings` and `TrainingSettings` are the space and the supernet's training sections as
frozen objects, built by those checks once (the pipeline's `RunSettings` holds them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

import torch
from omegaconf import DictConfig

from supernet.core.optim import check_optim_config
from supernet.core.sampling import check_sampler_config
from supernet.core.space import SearchSpace
from supernet.core.supermlp import HEADS, NORMS, configured_heads, configured_norm
from supernet.data.datasets import check_data_config
from supernet.errors import UsageError
from supernet.files import to_plain

log = logging.getLogger(__name__)


def check_min_steps(value: Any, key: str) -> None:
    """``<key>`` is null (off) or a whole number of steps >= 1."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{key}={value!r} must be a whole number of optimizer steps >= 1, or null (off)")


def space_settings(space_cfg: Mapping, data_cfg: Mapping) -> dict[str, int]:
    """``space.*`` with nulls filled from ``data.default_space``."""
    default = data_cfg.get("default_space") or {}
    out = {}
    for group, key in (("depth", "min"), ("depth", "max"), ("width", "min"), ("width", "max"), ("width", "step")):
        value = (space_cfg.get(group) or {}).get(key)
        if value is None:
            value = (default.get(group) or {}).get(key)
        if value is None:
            raise UsageError(f"space.{group}.{key} is not set and data={data_cfg.get('name')} has no default")
        try:
            out[f"{group}_{key}"] = int(value)
        except (TypeError, ValueError):
            raise UsageError(f"space.{group}.{key}={value!r} must be an integer") from None
    return out


@dataclass(frozen=True)
class SpaceSettings:
    """``space.*`` checked, nulls filled from ``data.default_space``; `space` makes the
    `SearchSpace` once the input and class counts are known."""

    depth_min: int
    depth_max: int
    width_min: int
    width_max: int
    width_step: int

    @classmethod
    def build(cls, space_cfg: Mapping, data_cfg: Mapping) -> SpaceSettings:
        """The settings, the ranges checked against the placeholder sizes (before data loads)."""
        settings = cls(**space_settings(space_cfg, data_cfg))
        settings.space()
        return settings

    def space(self, in_features: int = 1, num_classes: int = 2) -> SearchSpace:
        return SearchSpace(in_features=in_features, num_classes=num_classes, **asdict(self))


def build_space(space_cfg: Mapping, data_cfg: Mapping, in_features: int = 1, num_classes: int = 2) -> SearchSpace:
    """The space; with the placeholder sizes it only validates the ranges (before data loads)."""
    return SpaceSettings(**space_settings(space_cfg, data_cfg)).space(in_features, num_classes)


def check_trainer_config(cfg: Mapping) -> None:
    epochs = cfg.get("max_epochs")
    if epochs is None or int(epochs) < 1:
        raise UsageError(f"trainer.max_epochs={epochs} must be >= 1")
    accelerator = str(cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"trainer.accelerator={accelerator} but no CUDA device is visible; use trainer.accelerator=cpu or auto"
        )
    devices = cfg.get("devices", 1)
    if isinstance(devices, int) and devices < 1:
        raise UsageError(f"trainer.devices={devices} must be >= 1 (or 'auto')")
    if accelerator in ("gpu", "cuda") and isinstance(devices, int) and devices > torch.cuda.device_count():
        raise UsageError(f"trainer.devices={devices} but only {torch.cuda.device_count()} GPUs are visible")


def check_model_config(cfg: Mapping | None) -> None:
    heads = configured_heads(cfg)
    if heads not in HEADS:
        raise UsageError(f"model.heads={heads!r} is unknown; choose one of {list(HEADS)}")
    norm = configured_norm(cfg)
    if norm not in NORMS:
        raise UsageError(f"model.norm={norm!r} is unknown; choose one of {list(NORMS)}")


def check_train_config(cfg: DictConfig) -> None:
    check_model_config(cfg.get("model"))
    check_data_config(cfg.data)
    batch = cfg.data.get("batch_size")
    if configured_norm(cfg.get("model")) == "batch" and batch is not None and int(batch) < 2:
        raise UsageError(
            f"data.batch_size={batch} has no batch statistics for model.norm=batch: use >= 2 or model.norm=none"
        )
    check_memory(build_space(cfg.space, cfg.data), str(cfg.trainer.get("accelerator", "auto")))
    check_sampler_config(cfg.sampler)
    check_optim_config(cfg.optim)
    check_trainer_config(cfg.trainer)
    check_ema_decay((cfg.get("train") or {}).get("ema_decay"))
    check_min_steps((cfg.get("train") or {}).get("min_steps"), "train.min_steps")


def frozen(node: Any) -> Mapping[str, Any]:
    """A config section as a read-only plain mapping (a settings object's field)."""
    return MappingProxyType(to_plain(node or {}))


@dataclass(frozen=True)
class TrainingSettings:
    """The supernet's training sections once `check_train_config` passed: the model's heads and
    norm, the data, sampler, optimiser and trainer sections, ``train.*``."""

    heads: str
    norm: str
    data: Mapping[str, Any]
    sampler: Mapping[str, Any]
    optim: Mapping[str, Any]
    trainer: Mapping[str, Any]
    train: Mapping[str, Any]

    @classmethod
    def build(cls, cfg: DictConfig) -> TrainingSettings:
        check_train_config(cfg)
        model = cfg.get("model")
        return cls(
            heads=configured_heads(model),
            norm=configured_norm(model),
            **{key: frozen(cfg.get(key)) for key in ("data", "sampler", "optim", "trainer", "train")},
        )


# Bytes per supernet weight while training: the weight, its gradient, AdamW's two moments and the
# weight EMA, in float32.
TRAIN_BYTES_PER_WEIGHT = 5 * 4


def supernet_weights(space: SearchSpace) -> int:
    """Weights of the supernet of `space` (its largest subnet plus one head per shallower depth),
    counted with the placeholder input and class sizes when the data is not loaded yet: a lower bound."""
    heads = (space.depth_max - space.depth_min) * (space.width_max * space.num_classes + space.num_classes)
    return space.params(space.largest()) + heads


def device_memory_bytes(accelerator: str) -> tuple[int, str]:
    """Total memory of the device the supernet trains on, and its name for messages."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory, "GPU memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "RAM"


def check_memory(space: SearchSpace, accelerator: str = "auto") -> None:
    """Refuse a space whose supernet cannot be trained in the device's memory; warn above half."""
    weights = supernet_weights(space)
    need = weights * TRAIN_BYTES_PER_WEIGHT
    total, name = device_memory_bytes(accelerator)
    where = f"space.depth.max={space.depth_max} space.width.max={space.width_max}"
    if need > total:
        raise UsageError(
            f"{where} makes a supernet of {weights:,} weights, about {need / 2**30:.1f} GiB to train, more "
            f"than the {total / 2**30:.1f} GiB of {name}: lower space.depth.max or space.width.max"
        )
    if need > total / 2:
        log.warning(
            "%s makes a supernet of %s weights, about %.1f GiB to train: over half of the %.1f GiB of %s",
            where,
            f"{weights:,}",
            need / 2**30,
            total / 2**30,
            name,
        )


def check_ema_decay(decay: Any) -> None:
    """``train.ema_decay``: null (no average) or a number strictly between 0 and 1."""
    if decay is None:
        return
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < float(decay) < 1.0:
        raise UsageError(f"train.ema_decay={decay} must be in (0, 1), e.g. 0.99; null turns the average off")


def trainer_kwargs(cfg: Mapping) -> dict[str, Any]:
    """``conf/trainer`` as ``pl.Trainer`` kwargs, resolving ``precision: auto``."""
    kwargs = {k: v for k, v in to_plain(cfg).items() if v is not None}
    if kwargs.get("strategy") == "ddp":
        # A sampled path shallower than the supernet leaves deeper layers without gradients.
        kwargs["strategy"] = "ddp_find_unused_parameters_true"
    if kwargs.get("precision", "auto") == "auto":
        # float32, with TF32 matmuls where the GPU has them (the jobs set matmul precision "high").
        # An MNIST-scale step is launch-bound on a GPU, and bf16 autocast adds a cast kernel for
        # every sliced weight, input and gradient (`supernet-bench`: bf16_ops_over_fp32 1.48 for a
        # sandwich step) to save math that took microseconds. Ask for trainer.precision=bf16-mixed
        # when the layers are wide or the batches large enough for the math to dominate.
        kwargs["precision"] = "32-true"
    return kwargs
