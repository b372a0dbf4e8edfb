"""Bayesian optimisation with Optuna's samplers, driven by inherited-weight scores.

    supernet-search ckpt_path=... search=bayes search.budget=1000              # TPE
    supernet-search ckpt_path=... search=bayes search.sampler=gp search.batch=1 search.budget=200
    supernet-search ckpt_path=... search=bayes search.objectives=[val_acc,params]   # MOTPE
    supernet-search ckpt_path=... search=bayes search.sampler=nsga2 \
        search.objectives=[val_acc,flops]

Each objective goes to Optuna in its own direction (``val_acc`` maximised, ``val_rmse`` or
``params`` minimised; `base.OBJECTIVES`), as the record holds it.

The space seen by Optuna is fixed: ``depth`` and ``w0 .. w{depth_max-1}`` (integers on the width
grid), all sampled every trial; layers beyond ``depth`` are inactive. A fixed space lets the
multivariate TPE and the GP model every parameter jointly (a conditional space would fall back
to independent sampling). The GP refits and optimises its acquisition for every proposal (seconds
each on a small CPU, more with pending trials in a batch): use it for budgets in the hundreds; TPE
scales to thousands (docs/experiments/search.md).

Budgets: a proposal over max_params/max_flops is repaired (`base.repair`) and Optuna is told the
arch that was actually scored; every budget is also given to Optuna as a constraint (value/limit
- 1 <= 0 is feasible), which is how a measured latency over max_latency_ms reaches the sampler.

Resume without pickling: the strategy keeps every told trial (params, values, constraints and
the sampler's system attrs) as JSON. Each `ask` builds a fresh in-memory study from that list
and a sampler seeded from (seed, trials told, generation), so a resumed search makes exactly the
proposals an uninterrupted one makes. Within a batch, pending trials make TPE spread out
(constant liar); a proposal already scored is replaced by a mutation of it, so the budget goes
to new archs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from supernet.core.space import Arch, SearchSpace, as_arch
from supernet.errors import UsageError
from supernet.search.base import OBJECTIVES, Strategy, StrategySettings, check_range, propose, repair, strategy_defaults

SAMPLERS = ("tpe", "gp", "nsga2")


@dataclass(frozen=True)
class BayesSettings(StrategySettings):
    """``search=bayes``'s own keys (conf/search/bayes.yaml), checked."""

    sampler: str
    startup_trials: int
    batch: int

    @classmethod
    def check(cls, cfg: Mapping, space: SearchSpace) -> None:
        if cfg["sampler"] not in SAMPLERS:
            raise UsageError(f"search.sampler={cfg['sampler']!r} is unknown: use one of {SAMPLERS}")
        check_range("startup_trials", cfg["startup_trials"], 1, integer=True)
        check_range("batch", cfg["batch"], 1, integer=True)
        if cfg["budget"] < cfg["startup_trials"]:
            raise UsageError(
                f"search.budget={cfg['budget']} is below search.startup_trials="
                f"{cfg['startup_trials']}: raise search.budget or lower search.startup_trials"
            )
        if cfg["sampler"] == "gp":
            import optuna

            if not hasattr(optuna.samplers, "GPSampler"):
                raise UsageError(
                    f"search.sampler=gp needs optuna>=3.6 (installed: {optuna.__version__}); use search.sampler=tpe"
                )


class BayesStrategy(Strategy):
    name = "bayes"
    defaults = strategy_defaults("bayes")
    settings_class = BayesSettings
    settings: BayesSettings

    def __init__(self, space, settings, constraints, objectives, seed) -> None:
        super().__init__(space, settings, constraints, objectives, seed)
        import optuna

        self._optuna = optuna
        dist = optuna.distributions
        width = dist.IntDistribution(space.width_min, space.width_max, step=space.width_step)
        self.distributions = {"depth": dist.IntDistribution(space.depth_min, space.depth_max)}
        self.distributions.update({f"w{i}": width for i in range(space.depth_max)})
        self.trials: list[dict] = []  # told trials, JSON: params, values, constraints, system_attrs
        self.generation = 0
        self._pending: list[tuple[Arch, dict, dict]] = []

    # ------------------------------------------------------------------ optuna plumbing
    @property
    def _constrained(self) -> bool:
        return any(v is not None for v in self.constraints.to_dict().values())

    def _sampler(self):
        samplers = self._optuna.samplers
        # A new seed for every ask, derived from what the study has seen: the same history
        # always gives the same proposals, with no sampler object to pickle.
        seed = (self.seed * 1_000_003 + len(self.trials) * 7_919 + self.generation) % (2**31 - 1)
        startup = self.settings.startup_trials
        kwargs = {}
        if self._constrained and int(self._optuna.__version__.split(".")[0]) < 5:
            # Before optuna 5 samplers only look at stored constraints when given a function;
            # the values themselves are stored with each trial (system attr "constraints").
            kwargs["constraints_func"] = _stored_constraints
        name = self.settings.sampler
        if name == "gp":
            return samplers.GPSampler(seed=seed, n_startup_trials=startup, **kwargs)
        if name == "nsga2":  # its first generation (random) plays the startup trials' part
            return samplers.NSGAIISampler(seed=seed, population_size=max(startup, 2), **kwargs)
        return samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True, **kwargs)

    def _study(self):
        optuna = self._optuna
        directions = [
            "maximize" if OBJECTIVES[o] > 0 else "minimize" for o in self.objectives
        ]  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(directions=directions, sampler=self._sampler())
        study.add_trials(
            [
                optuna.trial.create_trial(
                    params=t["params"],
                    distributions=self.distributions,
                    values=t["values"],
                    system_attrs=t["system_attrs"],
                )
                for t in self.trials
            ]
        )
        return study

    def _arch(self, params: Mapping) -> Arch:
        return tuple(int(params[f"w{i}"]) for i in range(int(params["depth"])))

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> list[Arch]:
        optuna = self._optuna
        prev = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = self._study()
            self._pending = []
            batch: set[Arch] = set()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                for _ in range(self.settings.batch):
                    # Asked trials stay RUNNING in this throw-away study, so TPE's constant
                    # liar steers the next ask away from them.
                    trial = study.ask(self.distributions)
                    arch = repair(self.space, self.constraints, self._arch(trial.params))
                    if arch in self.seen or arch in batch:
                        # Known already (TPE concentrates, repair maps many proposals onto the
                        # budget's edge): score a new neighbour instead, so the budget buys
                        # information; Optuna is told the arch that was scored. Re-asking
                        # costs a model fit per try and mostly returns the same arch.
                        arch = propose(
                            self.space,
                            self.constraints,
                            lambda a=arch: self.space.mutate(a, self.rng),
                            self.seen | batch,
                        )
                    batch.add(arch)
                    # The sampler's own bookkeeping (NSGA-II's generation) travels with it.
                    frozen = study.get_trials(deepcopy=False)[trial.number]
                    attrs = {k: v for k, v in frozen.system_attrs.items() if _jsonable(v)}
                    self._pending.append((arch, dict(trial.params), attrs))
        finally:
            optuna.logging.set_verbosity(prev)
        self.generation += 1
        return [arch for arch, _, _ in self._pending]

    def tell(self, archs: list[Arch], records: list[dict]) -> None:
        super().tell(archs, records)
        pending = self._pending[: len(archs)]
        if [a for a, _, _ in pending] != [as_arch(a) for a in archs]:
            raise RuntimeError("bayes: tell() must get the archs of the last ask(), in order")
        for (arch, params, attrs), record in zip(pending, records, strict=True):
            # Optuna learns from the arch that was scored (after repair), keeping the sampled
            # values of the inactive layers.
            params = {**params, "depth": len(arch), **{f"w{i}": w for i, w in enumerate(arch)}}
            missing = [o for o in self.objectives if record.get(o) is None]
            if missing:
                raise UsageError(f"search.objectives needs {missing}, which the evaluator omits")
            attrs = {**attrs}
            if self._constrained:
                attrs["constraints"] = self._constraint_values(record)
            self.trials.append(
                {
                    "params": params,
                    "values": [float(record[o]) for o in self.objectives],
                    "system_attrs": attrs,
                }
            )
        self._pending = []

    def _constraint_values(self, record: Mapping) -> list[float]:
        """value / limit - 1 per budget set: <= 0 is feasible, as Optuna expects."""
        values = []
        for key, limit in (
            ("params", self.constraints.max_params),
            ("flops", self.constraints.max_flops),
            ("latency_ms", self.constraints.max_latency_ms),
        ):
            if limit is not None:
                values.append(float(record[key]) / max(limit, 1e-12) - 1.0)
        return values

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        d = super().state_dict()
        d["trials"] = self.trials
        d["generation"] = self.generation
        return d

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.trials = [dict(t) for t in d["trials"]]
        self.generation = int(d["generation"])
        self._pending = []


def _stored_constraints(trial) -> list[float]:
    return list(trial.system_attrs.get("constraints", []))


def _jsonable(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple, dict))
