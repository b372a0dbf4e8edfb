"""Data: built-in sets, tables and image folders, one split rule, the device-resident loader.

from supernet.data import load_data
bundle = load_data({"name": "digits", ...})   # train/val/test tensors, normalised
"""

from supernet.data.datasets import (
    DEBIAN_FASHION_MNIST,
    DataBundle,
    Normalize,
    RawData,
    TensorLoader,
    check_data_config,
    load_data,
    stratified_split,
)

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "DataBundle",
    "Normalize",
    "RawData",
    "TensorLoader",
    "check_data_config",
    "load_data",
    "stratified_split",
]
