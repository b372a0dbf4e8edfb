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


def batch_norm_net(seed: int = 0) -> SuperMLP:
    """A supernet with ``norm="batch"`` whose affine parameters are not the identity."""
    torch.manual_seed(seed)
    net = SuperMLP(SPACE, norm="batch")
    with torch.no_grad():
        for bn in net.norms:
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
    return net


def test_batch_norm_extract_folds_the_subnets_statistics():
    """Outside training each subnet is normalised with its own statistics on the calibration
    inputs, and `extract` folds them into plain Linear layers with the same outputs."""
    net = batch_norm_net().calibrate(torch.randn(500, 64) * 3 + 1).eval()
    x = torch.randn(32, 64)
    for arch in archs():
        sub = net.extract(arch)
        assert all(isinstance(m, (torch.nn.Linear, torch.nn.ReLU)) for m in sub)
        assert sum(p.numel() for p in sub.parameters()) == SPACE.params(arch)
        diff = (sub(x) - net(x, arch)).abs().max().item()
        assert diff < 1e-4, (arch, diff)


def test_batch_norm_unfolded_extract_keeps_the_normalisation():
    """``fold=False`` (what the fine-tune trains): BatchNorm1d layers with the subnet's statistics
    as running statistics: the supernet's outputs in eval mode, batch statistics in train mode."""
    net = batch_norm_net().calibrate(torch.randn(500, 64) * 3 + 1).eval()
    x = torch.randn(32, 64)
    for arch in [(8,), (40, 256), (64, 8, 128)]:
        sub = net.extract(arch, fold=False).eval()
        assert [type(m).__name__ for m in sub[:3]] == ["Linear", "BatchNorm1d", "ReLU"]
        assert (sub(x) - net(x, arch)).abs().max() < 1e-4
        assert not torch.allclose(sub.train()(x), net(x, arch), atol=1e-3)
        assert torch.allclose(sub(x), net.train()(x, arch), atol=1e-4)
        net.eval()


def test_batch_norm_statistics_belong_to_the_subnet():
    """A unit's statistics depend on the units that feed it: with gamma=1, beta=0 the first
    hidden layer of every subnet has mean 0 and variance 1 over the calibration inputs."""
    torch.manual_seed(0)
    net = SuperMLP(SPACE, norm="batch")
    calibration = torch.randn(400, 64) * 2 - 1
    net.calibrate(calibration).eval()
    for arch in [(8, 16), (256, 8), (64, 64, 64)]:
        folded = net.extract(arch)
        second = folded[2](folded[1](folded[0](calibration)))  # the second hidden layer, before its ReLU
        assert second.mean(0).abs().max() < 1e-4
        assert (second.var(0, unbiased=False) - 1).abs().max() < 1e-2  # var / (var + eps), small var
    # Two subnets sharing layer 1 but not its width give layer 2's first units different statistics.
    a, b = net.layer_stats((8, 16)), net.layer_stats((256, 16))
    assert not torch.allclose(a[1][0][:16], b[1][0][:16])


def test_batch_norm_calibration_is_a_seeded_subset():
    net = SuperMLP(SPACE, norm="batch")
    x = torch.randn(5000, 64)
    first = net.calibrate(x, size=300).calibration
    assert first.shape == (300, 64)
    assert torch.equal(first, SuperMLP(SPACE, norm="batch").calibrate(x, size=300).calibration)
    assert net.calibrate(x[:100], size=300).calibration.shape == (100, 64)  # fewer inputs: all of them


def test_batch_norm_trains_on_batch_statistics():
    """In training mode the batch's own statistics normalise, and no calibration is needed."""
    net = batch_norm_net().train()
    x = torch.randn(64, 64)
    out = net(x, (16,))
    z = net.hidden[0](x, 16)
    manual = torch.nn.functional.batch_norm(z, None, None, net.norms[0].weight[:16], net.norms[0].bias[:16], True)
    expected = net.heads["1"](torch.relu(manual), 10)
    assert torch.allclose(out, expected, atol=1e-5)


def test_batch_norm_needs_calibration():
    net = SuperMLP(SPACE, norm="batch").eval()
    with pytest.raises(RuntimeError, match="model.norm=batch: call model.calibrate"):
        net(torch.randn(4, 64), (8,))
    with pytest.raises(RuntimeError, match="model.norm=batch"):
        net.extract((8,))


def test_batch_norm_subnet_uses_only_its_units():
    x, calibration = torch.randn(4, 64), torch.randn(300, 64)
    net = batch_norm_net().calibrate(calibration).eval()
    arch = (16, 8)
    before = net(x, arch)
    with torch.no_grad():
        net.hidden[0].weight[16:] += 1.0
        net.norms[0].weight[16:] += 1.0
        net.norms[1].bias[8:] += 1.0
        net.norms[2].weight += 1.0
    assert torch.allclose(net(x, arch), before, atol=1e-6)


def test_unknown_norm():
    with pytest.raises(ValueError, match="norm='layer'"):
        SuperMLP(SPACE, norm="layer")
