"""The supernet: an MLP of maximal-width elastic linear layers with elastic depth.

A subnet ``arch = (w1, ..., wd)`` uses the first ``w_i`` units of hidden layer ``i`` and a
classifier head reads the first ``wd`` units of its last active layer: one head per depth
(``heads="per_depth"``, the default: a depth-1 and a depth-3 subnet feed it different features) or
one head shared by all depths (``heads="shared"``, checkpoints written before the choice existed).
Using a prefix of the units is exactly a 0/1 width mask on the maximal layer; we *slice* the
weights (``weight[:out, :in]``) instead of multiplying by a mask, so a subnet step costs its own
compute, never the largest net's.

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

from .space import SearchSpace


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


def configured_heads(model_cfg: Mapping | None) -> str:
    """``model.heads`` of a config (``per_depth`` when the section or key is absent)."""
    return (model_cfg or {}).get("heads", HEADS[0])


class SuperMLP(nn.Module):
    """Weight-sharing MLP over a `SearchSpace`.

    ``forward(x, arch)`` runs one subnet; ``extract(arch)`` returns a stand-alone ``nn.Sequential``
    with sliced copies of the weights whose output equals ``forward(x, arch)``.
    Inputs are already normalised and flattened to ``(batch, in_features)``.
    """

    def __init__(self, space: SearchSpace, dropout: float = 0.0, heads: str = HEADS[0]) -> None:
        super().__init__()
        if heads not in HEADS:
            raise ValueError(f"heads={heads!r} is unknown; choose one of {list(HEADS)}")
        self.space, self.heads_kind = space, heads
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
        self.dropout = dropout

    def head_for(self, depth: int) -> ElasticLinear:
        """The classifier a depth-``depth`` subnet ends with."""
        return self.head if self.heads_kind == "shared" else self.heads[str(depth)]

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None) -> torch.Tensor:
        arch = self.space.largest() if arch is None else arch
        h = x
        for layer, width in zip(self.hidden, arch):
            h = F.relu(layer(h, width))
            if self.dropout and self.training:
                h = F.dropout(h, self.dropout, training=True)
        return self.head_for(len(arch))(h)

    def extract(self, arch: Sequence[int]) -> nn.Sequential:
        """The subnet as a plain model: ``Linear, ReLU, ..., Linear`` with copied weights."""
        arch = self.space.validate(arch)
        layers: list[nn.Module] = []
        width_in = self.space.in_features
        for layer, width in zip(self.hidden, arch):
            layers += [layer.sliced(width, width_in), nn.ReLU()]
            width_in = width
        head = self.head_for(len(arch))
        layers.append(head.sliced(self.space.num_classes, width_in))
        return nn.Sequential(*layers).to(head.weight.device)
