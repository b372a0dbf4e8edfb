"""SuperMLP: a subnet's forward equals its extracted stand-alone model's."""

import random

import pytest
import torch

from supernet import SearchSpace, SuperMLP

SPACE = SearchSpace(in_features=64, num_classes=10, depth_min=1, depth_max=3, width_min=8, width_max=256, width_step=8)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return SuperMLP(SPACE).eval()


def archs():
    rng = random.Random(0)
    return [SPACE.smallest(), SPACE.largest(), SPACE.middle()] + [SPACE.sample(rng) for _ in range(20)]


def test_extract_equals_supernet(net):
    x = torch.randn(32, 64)
    for arch in archs():
        sub = net.extract(arch)
        diff = (sub(x) - net(x, arch)).abs().max().item()
        assert diff < 1e-5, (arch, diff)
        assert isinstance(sub, torch.nn.Sequential)
        assert sum(p.numel() for p in sub.parameters()) == SPACE.params(arch)


def test_extract_copies_weights(net):
    sub = net.extract((8,))
    with torch.no_grad():
        sub[0].weight.zero_()
    assert net.hidden[0].weight[:8].abs().sum() > 0


def test_subnet_uses_only_its_units(net):
    """Changing weights outside an arch's slice never changes its output (a true prefix mask)."""
    x = torch.randn(4, 64)
    arch = (16, 8)
    before = net(x, arch)
    probe = SuperMLP(SPACE)
    probe.load_state_dict(net.state_dict())
    with torch.no_grad():
        probe.hidden[0].weight[16:] += 1.0
        probe.hidden[1].weight[8:] += 1.0
        probe.hidden[2].weight += 1.0
        probe.head.weight[:, 8:] += 1.0
    assert torch.equal(probe(x, arch), before)
