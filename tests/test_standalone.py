"""Stand-alone training and its cache (supernet/evaluation/standalone.py, standalone_cache.py) on
digits. The tests that train are marked slow.

    .venv/bin/python -m pytest tests/test_standalone.py -q
"""

from __future__ import annotations

import copy

import pytest
import torch

from supernet.core.space import SearchSpace
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.evaluation import standalone
from supernet.evaluation.standalone import Recipe, StandaloneCache, data_identity, train_standalone
from supernet.fidelity.metrics import stratified_sample

pytestmark = pytest.mark.usefixtures("one_thread")

MNIST_LIKE = SearchSpace(in_features=784, num_classes=10, depth_min=1, depth_max=4, width_min=16, width_max=1024)


def test_recipe_that_cannot_train():
    with pytest.raises(UsageError, match=r"rank.epochs=0 must be an integer >= 1"):
        Recipe.from_cfg({"epochs": 0})
    with pytest.raises(UsageError, match=r"search.standalone.lr=0"):
        Recipe.from_cfg({"epochs": 1, "lr": 0}, "search.standalone")
    assert Recipe.from_cfg({"epochs": 2, "batch_size": None}, batch_size_default=16).batch_size == 16
    assert Recipe(epochs=2).digest() != Recipe(epochs=3).digest()


@pytest.mark.slow
def test_standalone_beats_chance_and_cache_avoids_retraining(digits, digits_space, tmp_path):
    archs = [(8,), (64,), (128, 32)]
    recipe = Recipe(epochs=3, batch_size=64, lr=3e-3)
    cache = StandaloneCache(tmp_path / "cache.json")
    first = train_standalone(archs, digits_space, digits, recipe, [0, 1], cache=cache)
    assert cache.misses == 6 and cache.hits == 0
    assert all(acc > 0.25 for acc in first.values())  # chance is 0.1 on 10 classes
    assert first[((128, 32), 0)] > 0.8

    again = StandaloneCache(tmp_path / "cache.json")  # a later run reads the file
    second = train_standalone(archs, digits_space, digits, recipe, [0, 1], cache=again)
    assert again.misses == 0 and again.hits == 6
    assert second == first
    # A new recipe is a new key: trained again.
    train_standalone(archs[:1], digits_space, digits, Recipe(epochs=1, batch_size=64), [0], cache=again)
    assert again.misses == 1


@pytest.mark.slow
def test_standalone_is_deterministic_and_independent_of_group(digits, digits_space):
    recipe = Recipe(epochs=1, batch_size=64)
    group = train_standalone([(16,), (48, 8), (96,)], digits_space, digits, recipe, [3])
    alone = train_standalone([(48, 8)], digits_space, digits, recipe, [3])
    assert alone[((48, 8), 3)] == group[((48, 8), 3)]


@pytest.mark.slow
def test_padded_stack_trains_like_the_loop(digits, digits_space):
    archs = [(16,), (40,), (24, 8), (64, 32), (8, 128)]  # two depths, mixed widths: real padding
    recipe = Recipe(epochs=1, batch_size=64)
    loop = train_standalone(archs, digits_space, digits, recipe, [0], padded=False)
    stacked = train_standalone(archs, digits_space, digits, recipe, [0], padded=True)
    # Same init, same batches, same maths; only the matmuls' summation order differs.
    assert max(abs(loop[k] - stacked[k]) for k in loop) <= 2 / len(digits.val_y)


def test_cpu_groups_are_small_enough_to_keep_progress():
    """On a CPU a killed rank run keeps whole groups only: the 50 archs `supernet-rank` draws from
    the Fashion-MNIST space must not be one group, and no group may exceed the bound unless it is
    a single net."""
    assert standalone.group_bound(torch.device("cpu")) == standalone.CPU_GROUP_PARAMS
    assert standalone.group_bound(torch.device("cuda")) == standalone.GROUP_PARAMS
    archs = stratified_sample(MNIST_LIKE, 50, seed=0)
    groups = standalone._groups(archs, MNIST_LIKE, standalone.CPU_GROUP_PARAMS)
    assert sorted(a for g in groups for a in g) == sorted(archs)
    assert len(groups) >= 10
    assert all(len(g) == 1 or sum(map(MNIST_LIKE.params, g)) <= standalone.CPU_GROUP_PARAMS for g in groups)
    assert len(standalone._groups(archs, MNIST_LIKE, standalone.GROUP_PARAMS)) < len(groups)


def test_data_identity_survives_float_noise_but_not_a_new_split(digits):
    """Cached stand-alone results move between machines: CPU and GPU normalise to different last
    bits, which must not change the key; a different split, labels or normalisation must."""
    key = data_identity(digits)
    noisy = copy.copy(digits)
    noisy.train_x = digits.train_x * (1 + 1e-7) + 1e-9
    assert data_identity(noisy) == key
    other_split = load_data({"name": "digits", "split_seed": 1})
    assert data_identity(other_split) != key
    renormalised = copy.copy(digits)
    renormalised.std = [s * 1.01 for s in digits.std]
    assert data_identity(renormalised) != key


def test_corrupt_cache_is_a_usage_error(tmp_path):
    bad = tmp_path / "cache.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="rank.cache=.*is not a stand-alone cache"):
        StandaloneCache(bad)
