"""The supernet: an MLP of maximal-width elastic linear layers with elastic depth.

A subnet ``arch = (w1, ..., wd)`` uses the first ``w_i`` units of hidden layer ``i`` and a
classifier head reads the first ``wd`` units of its last active layer: one head per depth
(``heads="per_depth"``, the default: a depth-1 and a depth-3 subnet feed it different features) or
one head shared by all depths (``heads="shared"``, checkpoints written before the choice existed).
Using a prefix of the units is exactly a 0/1 width mask on the maximal layer; we *slice* the
weights (``weight[:out, :in]``) instead of multiplying by a mask, so a subnet step costs its own
compute, never the largest net's.

With ``norm="batch"`` (the default of ``supernet-train``) each hidden layer is followed by a batch
normalisation whose statistics belong to the subnet, not to the supernet: training normalises with
each batch's statistics, and outside training a subnet's are measured on a few thousand training
images given to `SuperMLP.calibrate` (BN recalibration, as in BigNAS and Once-for-All). `extract`
folds them into the linear layers, so every exported subnet is still a plain ``Linear, ReLU``
stack, the same family the stand-alone baselines train.

    >>> import torch
    >>> from supernet import SearchSpace, SuperMLP
    >>> space = SearchSpace(in_features=64, num_classes=10, depth_max=3, width_max=256, width_min=8, width_step=8)
    >>> net = SuperMLP(space)
    >>> x = torch.randn(5, 64)
    >>> torch.allclose(net(x, (32, 16)), net.extract((32, 16))(x), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from supernet.core.space import SearchSpace


class ElasticLinear(nn.Linear):
    """A maximal-width linear layer whose active subnet is its top-left ``[:out, :in]`` block.

    The input width is read from the input itself, so the previous layer's choice flows through.
    """

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        out = self.out_features if out_features is None else out_features
        in_ = x.shape[-1]
        weight, bias = self.weight, self.bias
        # Slice only what is narrower than the layer: each slice adds a zero-fill and a copy to the
        # backward pass, which is what a launch-bound GPU step pays for (the first layer's input and
        # the largest net's layers are full width).
        if out < self.out_features:
            weight, bias = weight[:out], bias[:out]
        if in_ < self.in_features:
            weight = weight[:, :in_]
        return F.linear(x, weight, bias)

    def sliced(self, out_features: int, in_features: int) -> nn.Linear:
        """A plain `nn.Linear` holding a copy of the active block (what `extract` returns)."""
        layer = nn.Linear(in_features, out_features)
        with torch.no_grad():
            layer.weight.copy_(self.weight[:out_features, :in_features])
            layer.bias.copy_(self.bias[:out_features])
        return layer


HEADS = ("per_depth", "shared")
NORMS = ("none", "batch")
# Images whose statistics normalise a subnet outside training. On the 293 pooled Fashion-MNIST
# archs (README) 2,048 rank within +-0.005 tau of 10,000 and cost a fifth of the time; 512 lose up
# to 0.007.
CALIBRATION_SIZE = 2048


def configured_heads(model_cfg: Mapping | None) -> str:
    """``model.heads`` of a config (``per_depth`` when the section or key is absent)."""
    return (model_cfg or {}).get("heads", HEADS[0])


def configured_norm(model_cfg: Mapping | None) -> str:
    """``model.norm`` of a config (``none`` when the section or key is absent: older configs)."""
    return (model_cfg or {}).get("norm", NORMS[0])


def batch_stats(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased variance) of each column of ``z``: what batch normalisation divides by."""
    return z.mean(0), z.var(0, unbiased=False)


class SuperMLP(nn.Module):
    """Weight-sharing MLP over a `SearchSpace`.

    ``forward(x, arch)`` runs one subnet; ``extract(arch)`` returns a stand-alone ``nn.Sequential``
    with sliced copies of the weights whose output equals ``forward(x, arch)``.
    Inputs are already normalised and flattened to ``(batch, in_features)``.
    """

    def __init__(self, space: SearchSpace, heads: str = HEADS[0], norm: str = NORMS[0]) -> None:
        super().__init__()
        if heads not in HEADS:
            raise ValueError(f"heads={heads!r} is unknown; choose one of {list(HEADS)}")
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is unknown; choose one of {list(NORMS)}")
        self.space, self.heads_kind, self.norm = space, heads, norm
        dims_in = [space.in_features] + [space.width_max] * (space.depth_max - 1)
        self.hidden = nn.ModuleList(ElasticLinear(d, space.width_max) for d in dims_in)
        if heads == "shared":
            self.head = ElasticLinear(space.width_max, space.num_classes)
        else:
            # Why one head per depth: with a shared head, the first units of layer 1 (trained by
            # every shallow path) and of layer 3 must mean the same thing to the classifier, which
            # ranks deep subnets with a narrow last layer far below their stand-alone accuracy.
            self.heads = nn.ModuleDict(
                {str(d): ElasticLinear(space.width_max, space.num_classes) for d in space.depths}
            )
        if norm == "batch":
            # Only the affine part is a parameter. Running statistics would mix every subnet's: a
            # unit's mean and variance depend on how many units feed it, so they are measured per
            # subnet (`layer_stats`), never tracked.
            self.norms = nn.ModuleList(nn.BatchNorm1d(space.width_max, track_running_stats=False) for _ in dims_in)
        self.calibration: torch.Tensor | None = None  # a plain attribute: weight swaps (EMA) keep it

    def calibrate(self, x: torch.Tensor, size: int = CALIBRATION_SIZE, seed: int = 0) -> SuperMLP:
        """Keep `size` of the (normalised, flattened) training inputs ``x``, drawn with `seed`, to
        measure each subnet's normalisation statistics on outside training. Needed with
        ``norm="batch"`` before `forward` in eval mode, `extract` or scoring; harmless otherwise."""
        if len(x) > size:
            x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:size].to(x.device)]
        self.calibration = x.detach()
        return self

    def calibration_inputs(self, device: torch.device | str) -> torch.Tensor:
        """The inputs given to `calibrate`, on `device`; a clear error when there are none."""
        if self.calibration is None:
            raise RuntimeError(
                "this supernet was trained with model.norm=batch: call model.calibrate(<training inputs>) "
                "before scoring or extracting a subnet"
            )
        return self.calibration.to(device)

    def normalize(self, layer: int, z: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Hidden layer `layer`'s pre-activations ``z`` (``batch x width``) normalised with `stats`
        (mean, variance; at least ``width`` wide) or, when None, with the batch's own statistics."""
        if self.norm == "none":
            return z
        bn, width = self.norms[layer], z.shape[1]
        weight, bias = bn.weight[:width], bn.bias[:width]
        if stats is None:
            return F.batch_norm(z, None, None, weight, bias, training=True, eps=bn.eps)
        mean, var = stats
        return F.batch_norm(z, mean[:width], var[:width], weight, bias, training=False, eps=bn.eps)

    @torch.no_grad()
    def layer_stats(self, arch: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(mean, biased variance) of each hidden layer's pre-activations of `arch` over the
        calibration inputs, each layer fed by the ones before it normalised the same way."""
        h = self.calibration_inputs(self.hidden[0].weight.device)
        stats = []
        for i, (layer, width) in enumerate(zip(self.hidden, arch)):
            z = layer(h, width)
            stats.append(batch_stats(z))
            h = F.relu(self.normalize(i, z, stats[-1]))
        return stats

    def head_for(self, depth: int) -> ElasticLinear:
        """The classifier a depth-``depth`` subnet ends with."""
        return self.head if self.heads_kind == "shared" else self.heads[str(depth)]

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None) -> torch.Tensor:
        arch = self.space.largest() if arch is None else arch
        # Training normalises with the batch's statistics, anything else with the subnet's own.
        stats = self.layer_stats(arch) if self.norm == "batch" and not self.training else None
        h = x
        for i, (layer, width) in enumerate(zip(self.hidden, arch)):
            h = F.relu(self.normalize(i, layer(h, width), stats[i] if stats else None))
        return self.head_for(len(arch))(h)

    def extract(self, arch: Sequence[int], fold: bool = True) -> nn.Sequential:
        """The subnet as a plain model: ``Linear, ReLU, ..., Linear`` with copied weights (and, with
        ``norm="batch"``, the subnet's calibrated normalisation folded into each Linear).

        ``fold=False`` keeps each normalisation as a ``BatchNorm1d`` after its Linear, holding the
        subnet's affine weights and its calibrated statistics as running statistics: the same
        outputs in eval mode, and in train mode it trains the way the supernet did (a fine-tune)."""
        arch = self.space.validate(arch)
        stats = self.layer_stats(arch) if self.norm == "batch" else None
        layers: list[nn.Module] = []
        width_in = self.space.in_features
        for i, (layer, width) in enumerate(zip(self.hidden, arch)):
            linear = layer.sliced(width, width_in)
            if stats and fold:
                self._fold(linear, i, stats[i])
                layers.append(linear)
            elif stats:
                layers += [linear, self._batch_norm(i, width, stats[i])]
            else:
                layers.append(linear)
            layers.append(nn.ReLU())
            width_in = width
        head = self.head_for(len(arch))
        layers.append(head.sliced(self.space.num_classes, width_in))
        return nn.Sequential(*layers).to(head.weight.device)

    @torch.no_grad()
    def _batch_norm(self, layer: int, width: int, stats: tuple[torch.Tensor, torch.Tensor]) -> nn.BatchNorm1d:
        source = self.norms[layer]
        bn = nn.BatchNorm1d(width, eps=source.eps)
        bn.weight.copy_(source.weight[:width])
        bn.bias.copy_(source.bias[:width])
        bn.running_mean.copy_(stats[0][:width])
        bn.running_var.copy_(stats[1][:width])
        return bn

    def folded(
        self, layer: int, weight: torch.Tensor, bias: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden layer `layer`'s (sliced) `weight` and `bias` with its normalisation by `stats`
        folded in: ``gamma * (Wx + b - mean) / sqrt(var + eps) + beta`` is again a linear map."""
        bn, width = self.norms[layer], weight.shape[0]
        mean, var = stats[0][:width], stats[1][:width]
        scale = bn.weight[:width] / torch.sqrt(var + bn.eps)
        return weight * scale[:, None], (bias - mean) * scale + bn.bias[:width]

    @torch.no_grad()
    def _fold(self, linear: nn.Linear, layer: int, stats: tuple[torch.Tensor, torch.Tensor]) -> None:
        device = stats[0].device
        weight, bias = self.folded(layer, linear.weight.to(device), linear.bias.to(device), stats)
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
