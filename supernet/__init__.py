"""supernet: one-shot (weight-sharing) architecture search for MLPs.

from supernet import SearchSpace, SuperMLP, load_supernet, load_subnet
"""

from .checkpoint import load_supernet
from .errors import UsageError
from .model import SuperMLP
from .space import Arch, SearchSpace

__all__ = ["Arch", "SearchSpace", "SuperMLP", "UsageError", "load_supernet", "load_subnet"]
__version__ = "0.1.0"


def __getattr__(name: str):  # load_subnet lives in export.py, which pulls in safetensors
    if name == "load_subnet":
        from .export import load_subnet

        return load_subnet
    raise AttributeError(name)
