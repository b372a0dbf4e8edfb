"""SearchSpace: membership, operators stay in the space, closed-form params and FLOPs are exact."""

import math
import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from supernet import SearchSpace, SuperMLP, UsageError

SPACE = SearchSpace(
    in_features=784, num_classes=10, depth_min=1, depth_max=4, width_min=16, width_max=1024, width_step=16
)


def test_size_and_extremes():
    assert SPACE.smallest() == (16,)
    assert SPACE.largest() == (1024,) * 4
    assert SPACE.size() == sum(64**d for d in range(1, 5))
    assert SPACE.contains(SPACE.middle())


def test_operators_stay_in_space():
    rng = random.Random(0)
    for _ in range(500):
        a, b = SPACE.sample(rng), SPACE.sample(rng)
        assert SPACE.contains(a)
        child = SPACE.mutate(a, rng)
        assert SPACE.contains(child) and child != a
        assert SPACE.contains(SPACE.crossover(a, b, rng))


def test_mutation_changes_depth_sometimes():
    rng = random.Random(1)
    depths = {len(SPACE.mutate((256, 128), rng, prob=0.5)) for _ in range(200)}
    assert depths == {1, 2, 3}


def test_sampling_is_seeded():
    assert [SPACE.sample(random.Random(5)) for _ in range(3)] == [SPACE.sample(random.Random(5)) for _ in range(3)]


def test_log_params_sampling_spreads_over_log_parameter_count():
    rng = random.Random(0)
    archs = [SPACE.sample_log_params(rng) for _ in range(2000)]
    assert all(SPACE.contains(a) for a in archs)
    lo, hi = math.log(SPACE.params(SPACE.smallest())), math.log(SPACE.params(SPACE.largest()))
    counts = [0] * 8
    for a in archs:
        counts[min(7, int((math.log(SPACE.params(a)) - lo) / (hi - lo) * 8))] += 1
    assert all(180 < c < 320 for c in counts), counts  # 250 expected in each of the 8 bins
    uniform = [SPACE.params(SPACE.sample(rng)) for _ in range(2000)]
    small = sum(SPACE.params(a) < 100_000 for a in archs) / 2000
    assert small > 0.3 and sum(p < 100_000 for p in uniform) / 2000 < 0.08  # why it exists
    assert [SPACE.sample_log_params(random.Random(5)) for _ in range(3)] == [
        SPACE.sample_log_params(random.Random(5)) for _ in range(3)
    ]


def test_log_params_sampling_on_a_one_arch_space():
    one = SearchSpace(in_features=4, num_classes=2, depth_min=2, depth_max=2, width_min=8, width_max=8, width_step=8)
    assert one.sample_log_params(random.Random(0)) == (8, 8)


@pytest.mark.parametrize("arch", [(16,), (1024, 1024, 1024, 1024), (256, 128), (48, 992, 16)])
def test_params_and_flops_match_the_extracted_model(arch):
    small = SearchSpace(in_features=784, num_classes=10)
    net = SuperMLP(small).extract(arch)
    assert small.params(arch) == sum(p.numel() for p in net.parameters())
    with FlopCounterMode(display=False) as counter:
        net(torch.zeros(3, 784))
    assert small.flops(arch) * 3 == counter.get_total_flops()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"width_min": 64, "width_max": 32}, "width.min=64 is above space.width.max=32"),
        ({"width_step": 10}, "does not divide the range"),
        ({"depth_min": 0}, "space.depth.min=0 must be >= 1"),
        ({"depth_min": 3, "depth_max": 2}, "depth.max=2 is below"),
    ],
)
def test_bad_spaces_name_the_key(kwargs, fragment):
    with pytest.raises(UsageError, match=fragment):
        SearchSpace(in_features=4, num_classes=2, **kwargs)


def test_validate_names_the_bound():
    with pytest.raises(UsageError, match="width 2000 is outside"):
        SPACE.validate([2000])
    with pytest.raises(UsageError, match="depth 5"):
        SPACE.validate([16] * 5)
    with pytest.raises(UsageError, match="not on the grid"):
        SPACE.validate([17])
