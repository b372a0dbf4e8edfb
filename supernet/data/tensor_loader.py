"""TensorLoader: seeded batches of device-resident tensors by index (DDP shares, repeated passes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


class TensorLoader:
    """Batches of device-resident tensors by index: no per-sample Python in the hot loop.

    The permutation of epoch ``e`` is drawn from ``seed + e`` so a resumed run sees the same
    batches. Under DDP each rank takes an equal, disjoint share of every epoch's permutation. An
    epoch of ``passes`` > 1 is that many permutations from the same generator, each batched alone.
    """

    def __init__(
        self,
        tensors: Callable[[], tuple[torch.Tensor, torch.Tensor]],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: Callable[[], tuple[int, int]] = lambda: (0, 1),
        passes: int = 1,
    ) -> None:
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.seed, self.epoch, self.rank, self.passes = seed, epoch, rank, passes

    def _indices(self) -> list[torch.Tensor]:
        """Each pass's row indices (this rank's share)."""
        x, _ = self.tensors()
        n = len(x)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch()) if self.shuffle else None
        rank, world = self.rank()
        passes = []
        for _ in range(self.passes):
            idx = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
            if world > 1:
                idx = idx[: n - n % world][rank::world]
            passes.append(idx.to(x.device))
        return passes

    def __len__(self) -> int:
        x, _ = self.tensors()
        n = len(x) // self.rank()[1]
        return self.passes * ((n + self.batch_size - 1) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.tensors()
        for indices in self._indices():
            for idx in indices.split(self.batch_size):
                yield x[idx], y[idx]
