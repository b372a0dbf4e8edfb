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
        probe.heads["2"].weight[:, 8:] += 1.0
        probe.heads["1"].weight += 1.0  # other depths' heads are not this arch's
        probe.heads["3"].weight += 1.0
    assert torch.equal(probe(x, arch), before)


@pytest.mark.parametrize("heads", ["per_depth", "shared"])
def test_heads_layouts(heads):
    """One head per depth (default) or a single shared head (older checkpoints): both extract exactly."""
    torch.manual_seed(0)
    net = SuperMLP(SPACE, heads=heads).eval()
    names = {k for k in net.state_dict() if not k.startswith("hidden.")}
    if heads == "shared":
        assert names == {"head.weight", "head.bias"}
    else:
        assert names == {f"heads.{d}.{p}" for d in (1, 2, 3) for p in ("weight", "bias")}
        assert net.head_for(1) is not net.head_for(3)
    x = torch.randn(8, 64)
    for arch in [(8,), (40, 8), (256, 256, 256)]:
        assert (net.extract(arch)(x) - net(x, arch)).abs().max() < 1e-5


def test_unknown_heads_layout():
    with pytest.raises(ValueError, match="heads='tied'"):
        SuperMLP(SPACE, heads="tied")
