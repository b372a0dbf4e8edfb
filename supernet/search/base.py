"""What every search strategy shares: the `Strategy` interface, budgets (`Constraints`) and the
repair that brings an arch back under them, objectives, and config validation.

A strategy only proposes and learns; it never sees a model. The runner (`runner.py`) asks it for
a batch of archs, scores them with an evaluator and tells it the records::

    strategy = EvolutionStrategy(space, cfg, Constraints(max_params=100_000), ["val_acc"], seed=0)
    archs = strategy.ask()                       # valid for the space and the budgets
    strategy.tell(archs, evaluator.evaluate(archs))
    json.dumps(strategy.state_dict())            # resumable, no pickle

A record is a dict with the search metric's field (``val_acc`` for accuracy, ``val_rmse``, ...;
`supernet.core.metrics`), ``params``, ``flops``, optionally ``latency_ms``, and ``feasible`` (set
by the runner: latency is only known after measurement).

Objectives (``search.objectives``): exactly one score, plus any of params, flops, latency_ms.
``val_acc`` there means "the search metric" (``search.metric``), so the default ``[val_acc]``
optimises RMSE on a regression task; the metric's own field (``val_rmse``) works too, another
metric's field is refused (`score_objectives`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from supernet.core.metrics import METRIC_KEYS, METRICS, Metric, default_metric
from supernet.core.space import Arch, SearchSpace, as_arch
from supernet.errors import UsageError
from supernet.files import conf_node, to_plain

# The costs an objective can name besides the score; +1: maximised, -1: minimised.
COSTS: dict[str, int] = {"params": -1, "flops": -1, "latency_ms": -1}
# Every objective and its direction: each metric's record field (val_acc first), then the costs.
OBJECTIVES: dict[str, int] = {**METRIC_KEYS, **COSTS}
# The field ``val_acc`` names in search.objectives whatever the metric: "the search metric".
SCORE_ALIAS = "val_acc"
METRIC_BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS.values()}

# Keys every strategy reads (conf/blocks/search.yaml); each strategy adds its own in
# `Strategy.defaults` (conf/search/<name>.yaml). The finetune settings re-rank the finalists and never
# block a resume; a config or a saved search that names no fidelity means every candidate on the
# full split (supernet/search/subset.py).
COMMON_DEFAULTS: dict[str, Any] = conf_node("blocks/search")


def strategy_defaults(name: str) -> dict[str, Any]:
    """A strategy's own keys and their defaults, read from conf/search/<name>.yaml."""
    return conf_node(f"search/{name}", drop=("defaults", "strategy"))


# ---------------------------------------------------------------------------- constraints
@dataclass(frozen=True)
class Constraints:
    """Budgets a chosen arch must meet. Params and FLOPs are checked in closed form before an
    arch is evaluated (so no candidate breaks them); latency only after it is measured (a
    candidate that breaks it is recorded as infeasible, never dropped)."""

    max_params: int | None = None
    max_flops: int | None = None
    max_latency_ms: float | None = None

    @classmethod
    def from_cfg(cls, node: Mapping | None) -> Constraints:
        node = to_plain(node or {})
        unknown = set(node) - {"max_params", "max_flops", "max_latency_ms"}
        if unknown:
            raise UsageError(
                f"search.constraints has unknown key(s) {sorted(unknown)}: use max_params, max_flops, max_latency_ms"
            )
        values = {}
        for key in ("max_params", "max_flops", "max_latency_ms"):
            v = node.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise UsageError(f"search.constraints.{key}={v!r} must be a non-negative number or null (none)")
            values[key] = float(v) if key == "max_latency_ms" else int(v)
        return cls(**values)

    def to_dict(self) -> dict:
        return {
            "max_params": self.max_params,
            "max_flops": self.max_flops,
            "max_latency_ms": self.max_latency_ms,
        }

    def static_ok(self, space: SearchSpace, arch: Sequence[int]) -> bool:
        """Whether `arch` meets the closed-form budgets (params, FLOPs)."""
        if self.max_params is not None and space.params(arch) > self.max_params:
            return False
        return self.max_flops is None or space.flops(arch) <= self.max_flops

    def feasible(self, record: Mapping) -> bool:
        """Whether an evaluated record meets every budget (latency included when it is set)."""
        return self.violation(record) == 0.0

    def violation(self, record: Mapping) -> float:
        """Sum of relative excesses over the budgets: 0 when feasible, larger = further off."""
        total = 0.0
        for key, limit in (
            ("params", self.max_params),
            ("flops", self.max_flops),
            ("latency_ms", self.max_latency_ms),
        ):
            if limit is None:
                continue
            value = record.get(key)
            if value is None:
                if key == "latency_ms":
                    raise UsageError(
                        "search.constraints.max_latency_ms is set but the evaluator did not measure latency_ms"
                    )
                continue
            if value > limit:
                total += (value - limit) / max(limit, 1e-12)
        return total

    def check_space(self, space: SearchSpace) -> None:
        """Raise when no arch of the space can meet a closed-form budget; the smallest arch has
        the fewest params and FLOPs (both grow with every width and with depth)."""
        small = space.smallest()
        for key, limit, value in (
            ("max_params", self.max_params, space.params(small)),
            ("max_flops", self.max_flops, space.flops(small)),
        ):
            if limit is not None and limit < value:
                unit = key.removeprefix("max_")
                raise UsageError(
                    f"search.constraints.{key}={limit} is below the smallest arch in the space "
                    f"({value} {unit} for {list(small)}); use at least {value}"
                )


def repair(space: SearchSpace, constraints: Constraints, arch: Sequence[int]) -> Arch:
    """The arch brought under the closed-form budgets with small changes: shrink, one grid step
    at a time, the layer whose step saves the most parameters; once every layer is at the
    minimum width, drop the last layer. Deterministic; returns `arch` itself when it is fine.
    Ends at `space.smallest()` at worst, which `Constraints.check_space` has checked."""
    layers = list(space.validate(arch))
    step = space.width_step
    while not constraints.static_ok(space, layers):
        best_i, best_saving = -1, 0
        base = space.params(layers)
        for i, w in enumerate(layers):
            if w - step < space.width_min:
                continue
            trial = layers.copy()
            trial[i] = w - step
            saving = base - space.params(trial)
            if saving > best_saving:
                best_i, best_saving = i, saving
        if best_i >= 0:
            layers[best_i] -= step
        elif len(layers) > space.depth_min:
            layers.pop()
        else:  # already the smallest arch; check_space should have refused this budget
            raise UsageError(f"no arch in the space meets search.constraints={constraints.to_dict()}")
    return tuple(layers)


def allowed_widths(space: SearchSpace, constraints: Constraints, prefix: Sequence[int], depth: int) -> list[bool]:
    """Per width choice of the next layer: can an arch of `depth` layers starting with `prefix`
    and that width still meet the closed-form budgets? Exact, because params and FLOPs grow with
    every width: it is enough to check the rest of the layers at the minimum width."""
    rest = [space.width_min] * (depth - len(prefix) - 1)
    return [constraints.static_ok(space, [*prefix, w, *rest]) for w in space.widths]


def sample_within(space: SearchSpace, constraints: Constraints, rng: random.Random, tries: int = 200) -> Arch:
    """A random arch within the budgets: `space.sample` conditioned on feasibility (uniform
    depth, then uniform widths) by rejection; under a budget so tight that `tries` draws all
    fail, layer by layer among the choices that can still meet it (depth first)."""
    for _ in range(tries):
        arch = space.sample(rng)
        if constraints.static_ok(space, arch):
            return arch
    small = space.width_min
    depths = [d for d in space.depths if constraints.static_ok(space, (small,) * d)]
    depth = rng.choice(depths)
    layers: list[int] = []
    for _ in range(depth):
        ok = allowed_widths(space, constraints, layers, depth)
        layers.append(rng.choice([w for w, allowed in zip(space.widths, ok, strict=True) if allowed]))
    return tuple(layers)


def propose(
    space: SearchSpace,
    constraints: Constraints,
    make: Callable[[], Arch],
    seen: set[Arch] | None = None,
    tries: int = 32,
) -> Arch:
    """Call `make()` until it gives an arch not in `seen`; an arch over a closed-form budget is
    repaired first (an operator that overshoots lands on the budget's edge, never dropped).
    After `tries` attempts the last arch is returned even if seen (the runner answers it from
    the history, at no cost to the budget)."""
    seen = seen if seen is not None else set()
    for _ in range(tries):
        arch = make()
        if not constraints.static_ok(space, arch):
            arch = repair(space, constraints, arch)
        if arch not in seen:
            return arch
    return arch


# ---------------------------------------------------------------------------- objectives
def check_objectives(objectives: Sequence[str]) -> list[str]:
    """Known names, exactly one score (a metric's field), none twice."""
    objectives = [str(o) for o in objectives]
    for o in objectives:
        if o not in OBJECTIVES:
            raise UsageError(
                f"search.objectives contains unknown objective {o!r}: use val_acc (the search metric) and any of "
                f"{list(COSTS)}"
            )
    scores = [o for o in objectives if o in METRIC_KEYS]
    if not scores:
        raise UsageError(f"search.objectives={objectives} must include val_acc, e.g. [val_acc, params]")
    if len(set(objectives)) != len(objectives):
        raise UsageError(f"search.objectives={objectives} lists an objective twice")
    if len(scores) > 1:
        raise UsageError(
            f"search.objectives={objectives} names {len(scores)} scores ({scores}): keep one, val_acc (the search "
            "metric, search.metric), with any of params, flops, latency_ms"
        )
    return objectives


def score_objectives(objectives: Sequence[str], metric: Metric | None = None) -> list[str]:
    """The objectives with ``val_acc`` read as the search `metric`'s field (accuracy when None):
    ``[val_acc, params]`` -> ``[val_rmse, params]`` under rmse. The metric's own field stays; a
    different metric's field is a `UsageError`."""
    metric = metric or default_metric()
    out = []
    for o in check_objectives(objectives):
        if o in METRIC_KEYS and o not in (SCORE_ALIAS, metric.key):
            raise UsageError(
                f"search.objectives names {o} but the search metric is {metric.name} ({metric.key}): use val_acc "
                f"(the search metric) or set search.metric={METRIC_BY_KEY[o].name}"
            )
        out.append(metric.key if o == SCORE_ALIAS else o)
    return out


def score_key(objectives: Sequence[str]) -> str:
    """The score field among (resolved) `objectives`: ``val_acc``, ``val_rmse``, ..."""
    return next((o for o in objectives if o in METRIC_KEYS), SCORE_ALIAS)


def check_metric_name(name) -> None:
    """``search.metric``: null (the task's default) or a known metric's name."""
    if name is not None and str(name) not in METRICS:
        raise UsageError(f"search.metric={name!r} is unknown; choose one of {sorted(METRICS)} or null")


def minimised(record: Mapping, objectives: Sequence[str]) -> tuple[float, ...]:
    """The record as a point to minimise (a higher-is-better score negated)."""
    return tuple(-OBJECTIVES[o] * float(record[o]) for o in objectives)


def signed(record: Mapping, key: str) -> float:
    """The score `key` of `record`, larger is better (a lower-is-better metric negated)."""
    value = float(record[key])
    return value if METRIC_KEYS[key] > 0 else -value


def fitness_key(record: Mapping, key: str = SCORE_ALIAS) -> tuple:
    """Single-objective order, larger is better: feasible first, then less budget violation,
    then the score `key` in its direction (higher accuracy, lower RMSE), then fewer params (a
    cheaper arch wins a tie)."""
    return (
        bool(record["feasible"]),
        -float(record.get("violation", 0.0)),
        signed(record, key),
        -int(record["params"]),
    )


def constrained_ranks(records: Sequence[Mapping], objectives: Sequence[str]) -> tuple[list[int], list[float]]:
    """Front number and crowding distance per record, with Deb's constrained dominance:
    feasible records are sorted into Pareto fronts; infeasible ones come after every feasible
    front, ordered by how far they break the budgets."""
    from supernet.search.pareto import rank_and_crowding

    feas = [i for i, r in enumerate(records) if r["feasible"]]
    infeas = sorted(
        (i for i, r in enumerate(records) if not r["feasible"]),
        key=lambda i: float(records[i].get("violation", 0.0)),
    )
    ranks, crowd = [0] * len(records), [0.0] * len(records)
    r_feas, c_feas = rank_and_crowding([minimised(records[i], objectives) for i in feas])
    for i, r, c in zip(feas, r_feas, c_feas, strict=True):
        ranks[i], crowd[i] = r, c
    offset = max(r_feas, default=-1) + 1
    for k, i in enumerate(infeas):
        ranks[i], crowd[i] = offset + k, 0.0
    return ranks, crowd


# ---------------------------------------------------------------------------- rng state
def rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng_state(rng: random.Random, state: Sequence) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


def arch_list(archs: Sequence[Sequence[int]]) -> list[list[int]]:
    return [list(a) for a in archs]


# ---------------------------------------------------------------------------- the interface
_CONVERT: dict[str, Callable[[Any], Any]] = {"int": int, "float": float, "bool": bool, "str": str}


@dataclass(frozen=True)
class StrategySettings:
    """A strategy's own keys (conf/search/<name>.yaml), checked once and frozen. A subclass
    declares them as fields (``int``, ``float``, ``bool``, ``str``, or ``... | None``) and checks
    them in `check`; `build` checks, `of` only converts (the values are checked already)."""

    @classmethod
    def check(cls, values: Mapping[str, Any], space: SearchSpace) -> None:
        """Raise `UsageError` for a bad key (`values`: the search block, defaults filled in)."""

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> StrategySettings:
        out = {}
        for f in fields(cls):
            value, kind = values[f.name], str(f.type).removesuffix(" | None")
            out[f.name] = None if value is None else _CONVERT.get(kind, lambda v: v)(value)
        return cls(**out)

    @classmethod
    def build(cls, values: Mapping[str, Any], space: SearchSpace) -> StrategySettings:
        cls.check(values, space)
        return cls.of(values)


class Strategy:
    """Base of every search strategy. Subclasses set `name`, `defaults` and `settings_class`
    (their own keys, typed), implement `ask`, `tell`, and extend `state_dict` /
    `load_state_dict` with their own state (plain JSON). `settings` is the strategy's typed
    settings, or a search block (a mapping or `SearchSettings`) they are taken from."""

    name = "base"
    defaults: dict[str, Any] = {}
    settings_class: type[StrategySettings] = StrategySettings

    def __init__(
        self,
        space: SearchSpace,
        settings: Any,
        constraints: Constraints,
        objectives: list[str],
        seed: int,
    ) -> None:
        self.space = space
        self.settings = self.own_settings(settings, space)
        self.constraints = constraints
        self.objectives = check_objectives(objectives)
        self.seed = int(seed)
        self.rng = random.Random(self.seed)
        # Every arch told so far, so proposals can avoid archs whose score is already known.
        self.seen: set[Arch] = set()

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def score_key(self) -> str:
        """The record field of the search metric (``val_acc``, ``val_rmse``, ...)."""
        return score_key(self.objectives)

    @classmethod
    def own_settings(cls, settings: Any, space: SearchSpace) -> StrategySettings:
        """The typed settings of this strategy: `settings` itself, those `validate_search_config`
        built (``SearchSettings.own``), or, from a plain mapping, built and checked now."""
        if isinstance(settings, cls.settings_class):
            return settings
        own = getattr(settings, "own", None)
        if isinstance(own, cls.settings_class):
            return own
        return cls.settings_class.build({**COMMON_DEFAULTS, **cls.defaults, **to_plain(settings)}, space)

    @classmethod
    def check_config(cls, cfg: Mapping, space: SearchSpace) -> None:
        """Raise `UsageError` for a bad strategy-specific key (`cfg` has defaults filled in)."""
        cls.settings_class.check(cfg, space)

    def ask(self) -> list[Arch]:
        raise NotImplementedError

    def tell(self, archs: list[Arch], records: list[dict]) -> None:
        self.seen.update(as_arch(a) for a in archs)

    def sample_feasible(self, seen: set[Arch] | None = None) -> Arch:
        def make() -> Arch:
            return sample_within(self.space, self.constraints, self.rng)

        return propose(self.space, self.constraints, make, seen)

    def state_dict(self) -> dict:
        return {
            "name": self.name,
            "seed": self.seed,
            "rng": rng_state(self.rng),
            "seen": sorted(arch_list(self.seen)),
        }

    def load_state_dict(self, d: dict) -> None:
        if d.get("name") != self.name:
            raise UsageError(
                f"the saved search state is for strategy {d.get('name')!r}, not {self.name!r}: "
                "resume with the same search= or start a new run dir"
            )
        self.seed = int(d["seed"])
        set_rng_state(self.rng, d["rng"])
        self.seen = {as_arch(a) for a in d["seen"]}


def check_range(key: str, value: Any, lo: float, hi: float | None = None, integer=False) -> None:
    """Raise `UsageError` unless lo <= value (<= hi)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    ok = ok and value >= lo and (hi is None or value <= hi)
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise UsageError(f"search.{key}={value!r} must be {kind} {bound}")
