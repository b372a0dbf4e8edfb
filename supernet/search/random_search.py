"""Random search, the baseline every other strategy must beat at the same number of evaluations.

    supernet-search ckpt_path=... search=random search.budget=1000

Each batch holds `batch` archs drawn uniformly (depth, then each width) among those within the
budgets (`base.sample_within`), each not scored before where the space allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from supernet.core.space import Arch, SearchSpace
from supernet.search.base import Strategy, StrategySettings, check_range, strategy_defaults


@dataclass(frozen=True)
class RandomSettings(StrategySettings):
    """``search=random``'s own key (conf/search/random.yaml), checked."""

    batch: int

    @classmethod
    def check(cls, cfg: Mapping, space: SearchSpace) -> None:
        check_range("batch", cfg["batch"], 1, integer=True)


class RandomStrategy(Strategy):
    name = "random"
    defaults = strategy_defaults("random")
    settings_class = RandomSettings
    settings: RandomSettings

    def ask(self) -> list[Arch]:
        avoid = set(self.seen)
        batch: list[Arch] = []
        for _ in range(self.settings.batch):
            batch.append(self.sample_feasible(avoid))
            avoid.add(batch[-1])
        return batch
