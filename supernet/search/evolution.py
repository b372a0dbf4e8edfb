"""Evolutionary search: a population of archs, parent selection, layer-wise crossover and
mutation (a width changes, a layer is added or dropped), survival of the fittest; NSGA-II
(non-dominated sorting + crowding distance) when there is more than one objective.

    supernet-search ckpt_path=... search=evolution search.population=50 search.budget=1000
    supernet-search ckpt_path=... search.aging=true                 # regularized evolution
    supernet-search ckpt_path=... search.objectives=[val_acc,params] # NSGA-II, a Pareto front

Fitness is the search metric in its direction (higher accuracy, lower RMSE; `base.fitness_key`).

Generation 0 samples `population` archs within the budgets. Every later generation breeds
`offspring` children (default: `population`): each picks a parent by `selection` (a tournament of
`tournament` members, or uniformly among the best `parents`), crosses it with a second parent
with probability `crossover_prob`, then mutates it (`mutation_prob` per layer, the arch always
changes). Survivors: the best `population` of parents + children (mu + lambda), or, with `aging`,
the `population` youngest (regularized evolution: selection pressure only from the tournaments,
which keeps the search from collapsing on one lucky arch). Children avoid archs already scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from supernet.core.space import Arch, SearchSpace, as_arch
from supernet.errors import UsageError
from supernet.search.base import (
    Strategy,
    StrategySettings,
    check_range,
    constrained_ranks,
    fitness_key,
    propose,
    strategy_defaults,
)


@dataclass(frozen=True)
class EvolutionSettings(StrategySettings):
    """``search=evolution``'s own keys (conf/search/evolution.yaml), checked."""

    population: int
    offspring: int | None
    selection: str
    tournament: int
    parents: int
    mutation_prob: float
    crossover_prob: float
    aging: bool

    @classmethod
    def check(cls, cfg: Mapping, space: SearchSpace) -> None:
        check_range("population", cfg["population"], 2, integer=True)
        if cfg["offspring"] is not None:
            check_range("offspring", cfg["offspring"], 1, integer=True)
        if cfg["selection"] not in ("tournament", "truncation"):
            raise UsageError(f"search.selection={cfg['selection']!r} is unknown: use tournament or truncation")
        check_range("tournament", cfg["tournament"], 1, cfg["population"], integer=True)
        check_range("parents", cfg["parents"], 1, cfg["population"], integer=True)
        check_range("mutation_prob", cfg["mutation_prob"], 0.0, 1.0)
        check_range("crossover_prob", cfg["crossover_prob"], 0.0, 1.0)
        if cfg["budget"] < cfg["population"]:
            raise UsageError(
                f"search.budget={cfg['budget']} is below search.population={cfg['population']}: "
                "raise search.budget or lower search.population"
            )


class EvolutionStrategy(Strategy):
    name = "evolution"
    defaults = strategy_defaults("evolution")
    settings_class = EvolutionSettings
    settings: EvolutionSettings

    def __init__(self, space, settings, constraints, objectives, seed) -> None:
        super().__init__(space, settings, constraints, objectives, seed)
        self.pop_size = self.settings.population
        self.n_offspring = self.settings.offspring or self.pop_size
        # Members in birth order: [arch, record]; aging drops from the front.
        self.population: list[tuple[Arch, dict]] = []
        self.generation = 0

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> list[Arch]:
        batch: list[Arch] = []
        avoid = set(self.seen)
        if not self.population:
            for _ in range(self.pop_size):
                batch.append(self.sample_feasible(avoid))
                avoid.add(batch[-1])
            return batch
        self._prepare_selection()
        for _ in range(self.n_offspring):
            batch.append(propose(self.space, self.constraints, self._breed, avoid))
            avoid.add(batch[-1])
        return batch

    def tell(self, archs: list[Arch], records: list[dict]) -> None:
        super().tell(archs, records)
        born = [(as_arch(a), dict(r)) for a, r in zip(archs, records, strict=True)]
        if not self.population:
            self.population = born
        elif self.settings.aging:
            self.population = (self.population + born)[-self.pop_size :]
        else:
            self.population = self._survivors(self.population + born)
        self.generation += 1

    # ------------------------------------------------------------------ operators
    def _prepare_selection(self) -> None:
        """Rank the current population once per generation (the ranks do not change while
        children are bred, because children join only at `tell`)."""
        records = [r for _, r in self.population]
        if self.multi_objective:
            ranks, crowd = constrained_ranks(records, self.objectives)
            # Larger is better, like `fitness_key`: lower front first, then less crowded.
            self._keys = [(-r, c) for r, c in zip(ranks, crowd, strict=True)]
        else:
            self._keys = [fitness_key(r, self.score_key) for r in records]
        order = sorted(range(len(records)), key=lambda i: self._keys[i], reverse=True)
        self._elite = order[: self.settings.parents]

    def _select(self) -> Arch:
        if self.settings.selection == "truncation":
            i = self.rng.choice(self._elite)
        else:
            k = min(self.settings.tournament, len(self.population))
            contenders = self.rng.sample(range(len(self.population)), k)
            i = max(contenders, key=lambda j: self._keys[j])
        return self.population[i][0]

    def _breed(self) -> Arch:
        child = self._select()
        if self.rng.random() < self.settings.crossover_prob:
            child = self.space.crossover(child, self._select(), self.rng)
        return self.space.mutate(child, self.rng, self.settings.mutation_prob)

    def _survivors(self, pool: list[tuple[Arch, dict]]) -> list[tuple[Arch, dict]]:
        unique: dict[Arch, dict] = {}
        for arch, record in pool:
            unique.setdefault(arch, record)
        members = list(unique.items())
        if not self.multi_objective:
            # sorted() is stable: among equals the older member stays ahead.
            members.sort(key=lambda m: fitness_key(m[1], self.score_key), reverse=True)
            return members[: self.pop_size]
        # NSGA-II: whole fronts while they fit, then the least crowded of the next front.
        ranks, crowd = constrained_ranks([r for _, r in members], self.objectives)
        order = sorted(range(len(members)), key=lambda i: (ranks[i], -crowd[i]))
        return [members[i] for i in order[: self.pop_size]]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        d = super().state_dict()
        d["population"] = [[list(a), r] for a, r in self.population]
        d["generation"] = self.generation
        return d

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.population = [(as_arch(a), dict(r)) for a, r in d["population"]]
        self.generation = int(d["generation"])
