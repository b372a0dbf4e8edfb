"""Which torch device a job runs on: ``device=auto|cpu|cuda[:N]``."""

from __future__ import annotations

import torch

from supernet.errors import UsageError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device={name} but no CUDA device is visible; use device=cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UsageError(f"device={name!r} must be auto, cpu or cuda[:N]")
    return torch.device(name)
