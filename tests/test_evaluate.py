"""Batched prefix-tree scoring equals one-at-a-time scoring; cache and latency work."""

import random

import pytest
import torch

from supernet import SearchSpace, SuperMLP
from supernet.evaluation.inherited import InheritedEvaluator

SPACE = SearchSpace(in_features=64, num_classes=10, depth_min=1, depth_max=3, width_min=8, width_max=64, width_step=8)


def make_evaluator(norm="none", **kwargs):
    torch.manual_seed(0)
    x = torch.randn(500, 64)
    net = SuperMLP(SPACE, norm=norm).calibrate(torch.randn(300, 64) * 2 + 0.5).eval()
    y = net(x, SPACE.largest()).argmax(1)  # labels the largest net gets right: accuracies spread out
    return InheritedEvaluator(net, SPACE, x, y, **kwargs)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_batched_equals_naive(norm):
    """The prefix tree shares each node's activations and, with ``norm="batch"``, its calibrated
    statistics; the naive path extracts each subnet with its statistics folded in."""
    ev = make_evaluator(norm, chunk_size=128)
    rng = random.Random(0)
    archs = list(dict.fromkeys([SPACE.smallest(), SPACE.largest()] + [SPACE.sample(rng) for _ in range(60)]))
    batched = ev.accuracies(archs)
    naive = ev.accuracies_naive(archs, batch_size=100)
    for arch, a, b in zip(archs, batched, naive):
        assert abs(a - b) <= 1 / 500, (arch, a, b)
    assert batched[1] == 1.0  # the largest net defines the labels


def test_node_statistics_are_kept_and_do_not_depend_on_the_batch():
    """Each prefix-tree node is calibrated once per evaluator; scoring archs in two batches (the
    second sharing the first's prefixes) gives exactly the scores of one batch, or of a fresh
    evaluator: what a resumed search relies on."""
    rng = random.Random(1)
    archs = list(dict.fromkeys(SPACE.sample(rng) for _ in range(80)))
    first, second = archs[:40], archs[40:]
    split = make_evaluator("batch")
    scores = split.outputs(first) + split.outputs(second)
    kept = dict(split.stats_cache)
    assert set(kept) == {a[:d] for a in archs for d in range(len(a))}
    split.outputs(archs)  # nothing new to measure: the same tensors stay
    assert all(split.stats_cache[p] is kept[p] for p in kept)
    at_once = make_evaluator("batch").outputs(archs)
    assert all(torch.equal(a, b) for a, b in zip(scores, at_once, strict=True))
    assert split.subset(range(100)).stats_cache is split.stats_cache  # statistics come from the calibration inputs


def test_cache_and_records():
    ev = make_evaluator(latency={"batch_size": 8, "warmup": 1, "repeats": 3})
    first = ev.evaluate([(8,), (16, 8)])
    assert ev.n_scored == 2
    again = ev.evaluate([(16, 8), (8,)])
    assert ev.n_scored == 2  # cache hits cost nothing
    assert again[0] == first[1]
    assert first[0]["params"] == SPACE.params((8,)) and first[0]["flops"] == SPACE.flops((8,))
    assert first[0]["latency_ms"] > 0
