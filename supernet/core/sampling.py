"""Which subnets a training step trains (``conf/sampler/``).

- ``uniform``: one random path per step (single-path one-shot).
- ``sandwich``: the largest, the smallest and ``n_random`` random paths per step (``smallest:
  per_depth`` takes the narrowest net of a random depth instead of the space's smallest); with
  ``distill: true`` the largest net learns from the labels and the others from its detached
  soft predictions (in-place distillation, as in BigNAS/AttentiveNAS).

``distribution`` says how the random paths of either rule are drawn: ``uniform`` (a uniform
depth, then a uniform width per layer) or ``log_params`` (spread evenly over log(parameter
count), the way ``supernet-rank`` samples; uniform widths give small nets few steps).

The archs of a step are drawn from a generator seeded by ``(seed, epoch, batch)``, so a resumed
run and every DDP rank draw exactly the same archs without any communication.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from supernet.core.space import Arch, SearchSpace
from supernet.errors import UsageError

SAMPLERS = ("uniform", "sandwich")
DISTRIBUTIONS = ("uniform", "log_params")  # how random paths are drawn: uniform widths, or even over log(params)
SMALLEST = ("global", "per_depth")  # the sandwich's smallest path: the space's, or the narrowest of a random depth


@dataclass(frozen=True)
class ArchSampler:
    space: SearchSpace
    name: str = "sandwich"
    n_random: int = 2
    distill: bool = True
    temperature: float = 1.0
    seed: int = 0
    smallest: str = "global"
    distribution: str = "uniform"

    @classmethod
    def from_config(cls, space: SearchSpace, cfg: Mapping, seed: int) -> ArchSampler:
        check_sampler_config(cfg)
        return cls(
            space,
            name=cfg["name"],
            n_random=int(cfg.get("n_random", 2)),
            distill=bool(cfg.get("distill", True)),
            temperature=float(cfg.get("temperature", 1.0)),
            seed=seed,
            smallest=str(cfg.get("smallest", "global")),
            distribution=str(cfg.get("distribution", "uniform")),
        )

    def archs(self, epoch: int, batch: int) -> list[Arch]:
        """The paths of one step. For sandwich, element 0 is the largest (the teacher)."""
        rng = random.Random((self.seed * 1_000_003 + epoch) * 1_000_003 + batch)
        draw = self.space.sample_log_params if self.distribution == "log_params" else self.space.sample
        if self.name == "uniform":
            return [draw(rng)]
        randoms = [draw(rng) for _ in range(self.n_random)]
        if self.smallest == "per_depth":
            smallest = (self.space.width_min,) * rng.randint(self.space.depth_min, self.space.depth_max)
        else:
            smallest = self.space.smallest()
        return [self.space.largest(), smallest, *randoms]

    @property
    def teacher_first(self) -> bool:
        return self.name == "sandwich" and self.distill


def check_sampler_config(cfg: Mapping) -> None:
    name = cfg.get("name")
    if name not in SAMPLERS:
        raise UsageError(f"sampler.name={name!r} is unknown; choose one of {list(SAMPLERS)}")
    if int(cfg.get("n_random", 0)) < 0:
        raise UsageError(f"sampler.n_random={cfg.get('n_random')} must be >= 0")
    if cfg.get("smallest", "global") not in SMALLEST:
        raise UsageError(f"sampler.smallest={cfg.get('smallest')!r} is unknown; choose one of {list(SMALLEST)}")
    if cfg.get("distribution", "uniform") not in DISTRIBUTIONS:
        raise UsageError(
            f"sampler.distribution={cfg.get('distribution')!r} is unknown; choose one of {list(DISTRIBUTIONS)}"
        )
    if float(cfg.get("temperature", 1.0)) <= 0:
        raise UsageError(f"sampler.temperature={cfg.get('temperature')} must be > 0")
