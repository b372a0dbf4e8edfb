"""The supernet: an MLP of maximal-width elastic linear layers with elastic depth.

A subnet ``arch = (w1, ..., wd)`` uses the first ``w_i`` units of hidden layer ``i`` and the shared
classifier head reads the first ``wd`` units of its last active layer. Using a prefix of the units
is exactly a 0/1 width mask on the maximal layer; we *slice* the weights (``weight[:out, :in]``)
instead of multiplying by a mask, so a subnet step costs its own compute, never the largest net's.

    >>> import torch
    >>> from supernet import SearchSpace, SuperMLP
    >>> space = SearchSpace(in_features=64, num_classes=10, depth_max=3, width_max=256, width_min=8, width_step=8)
    >>> net = SuperMLP(space)
    >>> x = torch.randn(5, 64)
    >>> torch.allclose(net(x, (32, 16)), net.extract((32, 16))(x), atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

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
        return F.linear(x, self.weight[:out, :in_], self.bias[:out])

    def sliced(self, out_features: int, in_features: int) -> nn.Linear:
        """A plain `nn.Linear` holding a copy of the active block (what `extract` returns)."""
        layer = nn.Linear(in_features, out_features)
        with torch.no_grad():
            layer.weight.copy_(self.weight[:out_features, :in_features])
            layer.bias.copy_(self.bias[:out_features])
        return layer


class SuperMLP(nn.Module):
    """Weight-sharing MLP over a `SearchSpace`.

    ``forward(x, arch)`` runs one subnet; ``extract(arch)`` returns a stand-alone ``nn.Sequential``
    with sliced copies of the weights whose output equals ``forward(x, arch)``.
    Inputs are already normalised and flattened to ``(batch, in_features)``.
    """

    def __init__(self, space: SearchSpace, dropout: float = 0.0) -> None:
        super().__init__()
        self.space = space
        dims_in = [space.in_features] + [space.width_max] * (space.depth_max - 1)
        self.hidden = nn.ModuleList(ElasticLinear(d, space.width_max) for d in dims_in)
        self.head = ElasticLinear(space.width_max, space.num_classes)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None) -> torch.Tensor:
        arch = self.space.largest() if arch is None else arch
        h = x
        for layer, width in zip(self.hidden, arch):
            h = F.relu(layer(h, width))
            if self.dropout and self.training:
                h = F.dropout(h, self.dropout, training=True)
        return self.head(h)

    def extract(self, arch: Sequence[int]) -> nn.Sequential:
        """The subnet as a plain model: ``Linear, ReLU, ..., Linear`` with copied weights."""
        arch = self.space.validate(arch)
        layers: list[nn.Module] = []
        width_in = self.space.in_features
        for layer, width in zip(self.hidden, arch):
            layers += [layer.sliced(width, width_in), nn.ReLU()]
            width_in = width
        layers.append(self.head.sliced(self.space.num_classes, width_in))
        return nn.Sequential(*layers).to(self.head.weight.device)
