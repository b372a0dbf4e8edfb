"""Built-in data sets: MNIST from small IDX files written here, Fashion-MNIST from the Debian
package when it is installed, splits, normalisation, bad input."""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet.data.datasets import DEBIAN_FASHION_MNIST, TensorLoader, load_data
from supernet.errors import UsageError


def write_idx(raw: Path, n_train: int = 300, n_test: int = 50) -> None:
    """The four MNIST IDX files (magic 2051 images, 2049 labels), tiny and deterministic."""
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 50, size=(n, 28, 28), dtype=np.uint8)
        images[np.arange(n), labels, labels] = 255  # a class-dependent bright pixel: learnable
        files = {
            f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes(),
            f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 2049, n) + labels.tobytes(),
        }
        for name, payload in files.items():
            (raw / name).write_bytes(payload)


def test_mnist_from_idx_files(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw")
    bundle = load_data({"name": "mnist", "root": str(tmp_path), "download": False, "val_size": 60})
    assert bundle.in_features == 784 and bundle.num_classes == 10
    assert (len(bundle.train_y), len(bundle.val_y), len(bundle.test_y)) == (240, 60, 50)
    assert bundle.input_shape == [1, 28, 28]
    assert torch.bincount(bundle.val_y).tolist() == [6] * 10  # stratified
    assert abs(float(bundle.train_x.mean())) < 1e-4  # normalised with train statistics
    info = bundle.info()
    assert len(info["normalization"]["mean"]) == 1  # one channel


def test_offline_without_files_is_one_line(tmp_path):
    with pytest.raises(UsageError) as err:
        load_data({"name": "kmnist", "root": str(tmp_path), "download": False})
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "KMNIST" / "raw") in message and "train-images-idx3-ubyte" in message


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_the_debian_package(tmp_path):
    bundle = load_data(
        {
            "name": "fashion_mnist",
            "root": str(tmp_path),
            "download": False,
            "val_size": 10000,
            "limit_train": 2000,
            "limit_val": 500,
            "limit_test": 500,
        }
    )
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").stat().st_size == 16 + 60000 * 784
    assert (len(bundle.train_y), len(bundle.val_y), len(bundle.test_y)) == (2000, 500, 500)
    assert bundle.class_names[0] == "T-shirt/top"


def test_unknown_data_name():
    with pytest.raises(UsageError, match="data.name='cifar' is unknown"):
        load_data({"name": "cifar"})


def test_tensor_loader_shards_and_reshuffles():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    epoch = {"e": 0}
    loaders = [
        TensorLoader(lambda: (x, y), 2, True, seed=1, epoch=lambda: epoch["e"], rank=lambda r=r: (r, 2))
        for r in range(2)
    ]
    seen = [torch.cat([b[1] for b in loader]) for loader in loaders]
    assert sorted(torch.cat(seen).tolist()) == list(range(10))  # disjoint, complete shares
    first = seen[0].tolist()
    epoch["e"] = 1
    assert torch.cat([b[1] for b in loaders[0]]).tolist() != first  # a new order each epoch
    epoch["e"] = 0
    assert torch.cat([b[1] for b in loaders[0]]).tolist() == first  # ... and the same on resume
