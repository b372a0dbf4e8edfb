"""The search space: elastic depth and per-layer width of an MLP, as plain data.

An architecture (`Arch`) is a tuple of hidden-layer widths, e.g. ``(256, 128)``: a subnet of the
supernet that uses the first 256 units of hidden layer 1, the first 128 of layer 2, and the shared
classifier head on top of layer 2. Everything here is pure Python (no torch), so the search
strategies can use it without touching a model.

    >>> s = SearchSpace(in_features=784, num_classes=10, depth_min=1, depth_max=4,
    ...                 width_min=16, width_max=1024, width_step=16)
    >>> s.params((256, 128)) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from supernet.errors import UsageError

Arch = tuple[int, ...]


def as_arch(widths: Iterable[int]) -> Arch:
    """Normalise a list/tuple/ListConfig of widths into a hashable `Arch`."""
    try:
        return tuple(int(w) for w in widths)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"an arch is a list of integer widths, got {widths!r}") from exc


def arch_str(arch: Iterable[int]) -> str:
    """An arch as its display and file name, ``256-128``."""
    return "-".join(str(int(w)) for w in arch)


def parse_arch(text: str) -> Arch:
    """``256-128`` (an `arch_str`) back into an `Arch`."""
    try:
        return tuple(int(w) for w in str(text).strip().split("-"))
    except ValueError:
        raise UsageError(f"arch {text!r} is not widths joined by '-', e.g. 256-128") from None


@dataclass(frozen=True)
class SearchSpace:
    """Depth in ``[depth_min, depth_max]``; each width in ``range(width_min, width_max + 1, width_step)``."""

    in_features: int
    num_classes: int
    depth_min: int = 1
    depth_max: int = 4
    width_min: int = 16
    width_max: int = 1024
    width_step: int = 16
    _widths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checks = [
            (self.depth_min >= 1, f"space.depth.min={self.depth_min} must be >= 1"),
            (
                self.depth_max >= self.depth_min,
                f"space.depth.max={self.depth_max} is below space.depth.min={self.depth_min}",
            ),
            (self.width_min >= 1, f"space.width.min={self.width_min} must be >= 1"),
            (
                self.width_max >= self.width_min,
                f"space.width.min={self.width_min} is above space.width.max={self.width_max}: "
                "swap them or raise width.max",
            ),
            (self.width_step >= 1, f"space.width.step={self.width_step} must be >= 1"),
            (self.in_features >= 1, f"in_features={self.in_features} must be >= 1"),
            # Outputs: classes, or regression targets (one is fine); loaders refuse a single class.
            (self.num_classes >= 1, f"num_classes={self.num_classes} must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if (self.width_max - self.width_min) % self.width_step:
            raise UsageError(
                f"space.width.step={self.width_step} does not divide the range "
                f"{self.width_min}..{self.width_max}: pick a step that divides "
                f"{self.width_max - self.width_min} or move width.max"
            )
        object.__setattr__(self, "_widths", tuple(range(self.width_min, self.width_max + 1, self.width_step)))

    # ------------------------------------------------------------------ description
    @property
    def widths(self) -> tuple[int, ...]:
        """All width choices of one layer, ascending."""
        return self._widths

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(range(self.depth_min, self.depth_max + 1))

    def size(self) -> int:
        """Number of distinct architectures in the space."""
        n = len(self._widths)
        return sum(n**d for d in self.depths)

    def smallest(self) -> Arch:
        return (self.width_min,) * self.depth_min

    def largest(self) -> Arch:
        return (self.width_max,) * self.depth_max

    def middle(self) -> Arch:
        """A reference arch halfway between smallest and largest (used for `val/acc_mid`)."""
        depth = (self.depth_min + self.depth_max + 1) // 2
        return (self._widths[len(self._widths) // 2],) * depth

    def to_dict(self) -> dict:
        return {
            "in_features": self.in_features,
            "num_classes": self.num_classes,
            "depth_min": self.depth_min,
            "depth_max": self.depth_max,
            "width_min": self.width_min,
            "width_max": self.width_max,
            "width_step": self.width_step,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SearchSpace:
        return cls(**{k: int(d[k]) for k in cls.__dataclass_fields__ if not k.startswith("_")})

    # ------------------------------------------------------------------ cost in closed form
    def params(self, arch: Sequence[int]) -> int:
        """Parameter count of the extracted subnet (weights and biases, head included)."""
        dims = [self.in_features, *arch, self.num_classes]
        return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))

    def flops(self, arch: Sequence[int]) -> int:
        """FLOPs of one forward pass of one sample, counted as torch's FlopCounterMode does
        (2 per multiply-add of each matmul; bias adds and ReLUs are not counted)."""
        dims = [self.in_features, *arch, self.num_classes]
        return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))

    # ------------------------------------------------------------------ membership
    def check(self, arch: Sequence[int]) -> str | None:
        """Why `arch` is not in the space, or None when it is."""
        if not 1 <= len(arch) or not self.depth_min <= len(arch) <= self.depth_max:
            return f"arch {list(arch)} has depth {len(arch)}, outside space.depth=[{self.depth_min}, {self.depth_max}]"
        for i, w in enumerate(arch):
            if not self.width_min <= w <= self.width_max:
                return (
                    f"arch {list(arch)}: layer {i} width {w} is outside "
                    f"space.width=[{self.width_min}, {self.width_max}]"
                )
            if (w - self.width_min) % self.width_step:
                return f"arch {list(arch)}: layer {i} width {w} is not on the grid {self.width_min}+k*{self.width_step}"
        return None

    def validate(self, arch: Sequence[int]) -> Arch:
        """Return `arch` as an `Arch`, or raise `UsageError` naming the bound it breaks."""
        arch = as_arch(arch)
        problem = self.check(arch)
        if problem:
            raise UsageError(problem)
        return arch

    def contains(self, arch: Sequence[int]) -> bool:
        return self.check(as_arch(arch)) is None

    # ------------------------------------------------------------------ random operators
    def sample(self, rng: random.Random | None = None) -> Arch:
        """Uniform depth, then a uniform width per layer (the single-path-one-shot rule)."""
        rng = rng or random.Random()
        depth = rng.randint(self.depth_min, self.depth_max)
        return tuple(rng.choice(self._widths) for _ in range(depth))

    def sample_log_params(self, rng: random.Random | None = None, bins: int = 8) -> Arch:
        """An arch whose parameter count is spread evenly over log(params) from the smallest net
        to the largest: one of `bins` equal log-width bins is picked uniformly, then archs are
        proposed until one falls in it.

        `sample` draws widths uniformly, so most of its archs are large (in the 16-1024 space of a
        28x28 data set, 74% have over 400k parameters and 5% under 100k); a supernet trained on
        them ranks its small subnets poorly. Proposals alternate between `sample` and log-uniform
        widths, which between them reach every bin within a few dozen tries."""
        rng = rng or random.Random()
        lo, hi = math.log(self.params(self.smallest())), math.log(self.params(self.largest()))
        if hi - lo < 1e-9:
            return self.sample(rng)
        target = rng.randrange(bins)
        best, best_gap = self.sample(rng), math.inf
        for attempt in range(1000):
            arch = self.sample(rng) if attempt % 2 else self._sample_log_widths(rng)
            position = (math.log(self.params(arch)) - lo) / (hi - lo) * bins
            gap = max(target - position, position - (target + 1), 0.0)
            if gap == 0.0:
                return arch
            if gap < best_gap:
                best, best_gap = arch, gap
        return best  # a bin no arch of this space reaches (a very narrow space): the nearest seen

    def _sample_log_widths(self, rng: random.Random) -> Arch:
        depth = rng.randint(self.depth_min, self.depth_max)
        lo, hi = math.log(self.width_min), math.log(self.width_max)
        n = len(self._widths)
        return tuple(
            self._widths[min(n - 1, round((math.exp(rng.uniform(lo, hi)) - self.width_min) / self.width_step))]
            for _ in range(depth)
        )

    def mutate(self, arch: Sequence[int], rng: random.Random | None = None, prob: float = 0.3) -> Arch:
        """Each layer's width is resampled with probability `prob` (to a neighbour half the time,
        anywhere otherwise); then, with probability `prob`, a layer is added or dropped. The result
        always differs from `arch` (when the space has more than one member) and is in the space."""
        rng = rng or random.Random()
        arch = list(self.validate(arch))
        for _ in range(32):
            child = list(arch)
            for i in range(len(child)):
                if rng.random() < prob:
                    child[i] = self._mutate_width(child[i], rng)
            if rng.random() < prob:
                child = self._mutate_depth(child, rng)
            if child != arch or self.size() == 1:
                return tuple(child)
        # Nothing changed by chance 32 times in a row: force a single width change.
        i = rng.randrange(len(arch))
        child = list(arch)
        child[i] = rng.choice([w for w in self._widths if w != arch[i]] or [arch[i]])
        return tuple(child)

    def _mutate_width(self, width: int, rng: random.Random) -> int:
        if rng.random() < 0.5:
            idx = self._widths.index(width) + rng.choice((-1, 1))
            return self._widths[min(max(idx, 0), len(self._widths) - 1)]
        return rng.choice(self._widths)

    def _mutate_depth(self, layers: list[int], rng: random.Random) -> list[int]:
        can_add = len(layers) < self.depth_max
        can_drop = len(layers) > self.depth_min
        if can_add and (not can_drop or rng.random() < 0.5):
            pos = rng.randint(0, len(layers))
            return layers[:pos] + [rng.choice(self._widths)] + layers[pos:]
        if can_drop:
            pos = rng.randrange(len(layers))
            return layers[:pos] + layers[pos + 1 :]
        return layers

    def crossover(self, a: Sequence[int], b: Sequence[int], rng: random.Random | None = None) -> Arch:
        """Layer-wise uniform crossover: the child's depth is one parent's, each layer's width is
        taken from either parent at that position (from the longer one where only it has a layer)."""
        rng = rng or random.Random()
        a, b = self.validate(a), self.validate(b)
        depth = rng.choice((len(a), len(b)))
        child = []
        for i in range(depth):
            options = [p[i] for p in (a, b) if i < len(p)]
            child.append(rng.choice(options))
        return tuple(child)
