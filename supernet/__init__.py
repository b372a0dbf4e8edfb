"""supernet: one-shot (weight-sharing) architecture search for MLPs.

    from supernet import load_subnet
    model = load_subnet("subnets/best")        # a plain torch.nn.Module
    model.predict(rows)

Names load on first use, so ``import supernet`` (and every command's ``--help``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; the package layout is in docs/architecture.md
_API = {
    "Arch": "supernet.core.space",
    "SearchSpace": "supernet.core.space",
    "SuperMLP": "supernet.core.supermlp",
    "UsageError": "supernet.errors",
    "load_supernet": "supernet.io.checkpoint",
    "data_config": "supernet.io.checkpoint",
    "load_subnet": "supernet.io.subnet",
    "EnsembleSubnet": "supernet.io.ensemble",
    "load_data": "supernet.data.datasets",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'supernet' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
