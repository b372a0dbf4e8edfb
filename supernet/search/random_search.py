"""Random search, the baseline every other strategy must beat at the same number of evaluations.

    supernet-search ckpt_path=... search=random search.budget=1000

Each batch holds `batch` archs drawn uniformly (depth, then each width) among those within the
budgets (`base.sample_within`), each not scored before where the space allows.
"""

from __future__ import annotations

from collections.abc import Mapping

from supernet.core.space import Arch, SearchSpace
from supernet.search.base import Strategy, check_range, strategy_defaults


class RandomStrategy(Strategy):
    name = "random"
    defaults = strategy_defaults("random")

    @classmethod
    def check_config(cls, cfg: Mapping, space: SearchSpace) -> None:
        check_range("batch", cfg["batch"], 1, integer=True)

    def ask(self) -> list[Arch]:
        avoid = set(self.seen)
        batch: list[Arch] = []
        for _ in range(int(self.cfg["batch"])):
            batch.append(self.sample_feasible(avoid))
            avoid.add(batch[-1])
        return batch
