"""`SearchSettings`: the ``search`` block once `validate_search_config` has checked it, as typed
frozen objects.

`validate_search_config` checks the block once and builds two frozen dataclasses from it: the
settings every strategy shares (`CommonSearchSettings`: budget, metric, objectives, constraints,
latency, tolerance, fidelity, subset, finetune) and the strategy's own (its class's
`Strategy.settings_class`: `EvolutionSettings`, `RandomSettings`, `BayesSettings`,
`RLSettings`). `SearchSettings` holds both (``settings.common``, ``settings.own``) and the space
they were checked against; handed on to `run_search` and `make_strategy` it is taken as it is,
not checked again.

It is also the block as a read-only dict, the form JSON writes (the search state's fingerprint,
result.json's settings): ``settings["population"]`` and ``settings.population`` read it. A
derived form (the objectives renamed after the metric) is made with `replace`, never by writing
into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from supernet.core.space import SearchSpace
from supernet.search.base import Constraints

T = TypeVar("T")


def picked(cls: type[T], values: Mapping[str, Any], **converted: Any) -> T:
    """A frozen settings object of `cls` from the checked `values`: its own fields picked out by
    name (a block's other keys belong to another section), `converted` ones given as they are."""
    return cls(**{f.name: converted.get(f.name, values.get(f.name)) for f in fields(cls)})  # type: ignore[call-arg]


@dataclass(frozen=True)
class LatencySettings:
    """``search.latency``: how the evaluator times an extracted subnet."""

    batch_size: int
    repeats: int
    warmup: int


@dataclass(frozen=True)
class SubsetSettings:
    """``search.subset`` (read with ``search.fidelity=subset``; supernet/search/subset.py)."""

    size: float
    top: float
    margin: float


@dataclass(frozen=True)
class FinetuneSettings:
    """``search.finetune``: the re-ranking of the finalists (supernet/search/rerank.py)."""

    top: int
    steps: int
    lr: float
    batch_size: int
    score: str


@dataclass(frozen=True)
class CommonSearchSettings:
    """What every strategy reads (conf/blocks/search.yaml), checked."""

    strategy: str
    budget: int
    metric: str | None
    objectives: tuple[str, ...]
    constraints: Constraints
    latency: LatencySettings
    tolerance: float | None
    fidelity: str
    subset: SubsetSettings
    finetune: FinetuneSettings

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> CommonSearchSettings:
        """The typed form of a checked search block (no check: `validate_search_config` did)."""
        return picked(
            cls,
            values,
            objectives=tuple(values["objectives"]),
            constraints=Constraints(**values["constraints"]),
            latency=picked(LatencySettings, values["latency"]),
            subset=picked(SubsetSettings, values["subset"]),
            finetune=picked(FinetuneSettings, values["finetune"]),
        )

    @property
    def needs_latency(self) -> bool:
        """Whether the evaluator must measure latency_ms (an objective or a constraint uses it)."""
        return "latency_ms" in self.objectives or self.constraints.max_latency_ms is not None


class SearchSettings(dict):
    """The checked search block as a read-only dict, its typed form (`common`: the shared
    settings, `own`: the strategy's) and the `space` it was checked for (see the module
    docstring)."""

    def __init__(self, values: Mapping[str, Any], space: SearchSpace, own: Any = None) -> None:
        super().__init__(values)
        self.space = space
        self.common = CommonSearchSettings.of(self)
        self.own = own

    def checked_for(self, space: SearchSpace) -> bool:
        return self.space == space

    def for_space(self, space: SearchSpace) -> SearchSettings:
        """These settings for `space`, the same ranges with the data's input and class counts in
        place of the placeholders: only the closed-form budgets' floor (the smallest arch's size)
        depends on those, checked again. Another range is a `ValueError`: check anew."""
        if space == self.space:
            return self
        if (space.depths, space.widths) != (self.space.depths, self.space.widths):
            raise ValueError(f"{space} has other ranges than {self.space}")
        self.common.constraints.check_space(space)
        return SearchSettings(self, space, self.own)

    def replace(self, **changes: Any) -> SearchSettings:
        own = self.own
        if own is not None and any(f.name in changes for f in fields(own)):
            own = picked(type(own), {**self, **changes})
        return SearchSettings({**self, **changes}, self.space, own)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self) -> tuple:  # pickle and deepcopy rebuild it, not write into it
        return SearchSettings, (dict(self), self.space, self.own)

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("SearchSettings is read-only: make a changed copy with .replace(key=value)")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = __ior__ = _read_only  # type: ignore[assignment]
