"""The naive baseline: the same search loop, but every candidate is trained from scratch.

``search=standalone`` (conf/search/standalone.yaml) runs the evolutionary search with a
`StandaloneEvaluator` instead of the supernet's inherited weights: each generation's new
candidates are trained alone with the fixed short recipe (``search.standalone.*``; all of a
generation together, see `supernet.evaluation.standalone`) and scored on the validation split by
the search's metric (``metric=``: accuracy by default, records carry its key, e.g. ``val_rmse``).
Results go to the same cache as ``supernet-rank``, so an arch trained once with a recipe is never
trained again.
A wall-clock budget (``search.time_budget_s``) makes the comparison with the one-shot search fair
at equal cost; ``search.budget`` still caps the number of archs trained.

    supernet-search ckpt_path=last search=standalone search.time_budget_s=600

(the checkpoint only supplies the space and the data config; no weights are used). In code:

    settings = check_standalone_config(search_cfg, data_cfg)   # before any data is read
    evaluator = StandaloneEvaluator(space, bundle, settings.recipe, seed=0,
                                    cache=StandaloneCache(settings.cache), device="cuda")
    budget = TimeBudget(settings.time_budget_s)
    run_search(space, evaluator, search_cfg, out_dir, seed=0, should_stop=budget)  # see below

Stopping on time: `TimeBudget` is a callable returning ``"time_budget"`` once the wall clock is
spent (None before), meant for the search runner to check after each generation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from supernet.core.metrics import Metric, default_metric
from supernet.core.space import Arch, SearchSpace, as_arch
from supernet.data.datasets import DataBundle
from supernet.errors import UsageError
from supernet.evaluation.inherited import measure_ms
from supernet.evaluation.standalone import Recipe, build_mlp, train_standalone
from supernet.evaluation.standalone_cache import DEFAULT_CACHE, StandaloneCache


@dataclass(frozen=True)
class StandaloneSettings:
    recipe: Recipe
    time_budget_s: float | None
    cache: str | None


def check_standalone_config(search_cfg: Mapping, data_cfg: Mapping | None = None) -> StandaloneSettings:
    """``search.standalone.*`` and ``search.time_budget_s`` checked (one-line `UsageError`s naming
    the key); a null ``standalone.batch_size`` takes the data config's."""
    node = dict(search_cfg.get("standalone") or {})
    batch_default = (data_cfg or {}).get("batch_size")
    recipe = Recipe.from_cfg(node, "search.standalone", batch_size_default=batch_default)
    budget = search_cfg.get("time_budget_s")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
            raise UsageError(f"search.time_budget_s={budget!r} must be a positive number of seconds or null (none)")
        budget = float(budget)
    cache = node.get("cache", str(DEFAULT_CACHE))
    return StandaloneSettings(recipe, budget, None if cache in (None, "", "null") else str(cache))


class TimeBudget:
    """A wall-clock budget. Call it (e.g. as the runner's stop check after each generation): it
    returns ``"time_budget"`` once `seconds` have passed since `start()` (or since the first
    call), None before; ``seconds=None`` never stops."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started: float | None = None

    def start(self) -> TimeBudget:
        if self.started is None:
            self.started = time.perf_counter()
        return self

    @property
    def elapsed_s(self) -> float:
        return 0.0 if self.started is None else time.perf_counter() - self.started

    @property
    def remaining_s(self) -> float:
        return math.inf if self.seconds is None else max(0.0, self.seconds - self.elapsed_s)

    @property
    def expired(self) -> bool:
        return self.seconds is not None and self.start().elapsed_s >= self.seconds

    def __call__(self) -> str | None:
        return "time_budget" if self.expired else None


class StandaloneEvaluator:
    """The search's view of stand-alone training: ``evaluate(archs) -> [record]``.

    Archs already trained (this run or any earlier one, via the cache) cost nothing; the new ones
    of a call train together. `n_trained` counts nets actually trained, `train_s` their wall time.
    ``latency`` ({batch_size, warmup, repeats}) adds ``latency_ms`` of a fresh net of the arch
    on `device` (latency does not depend on the weights). `metric` (default: the task's, accuracy
    or RMSE) is what each record carries, under its key; the nets learn by the data's task
    (``bundle.task``)."""

    def __init__(  # noqa: PLR0913 - the recipe's inputs, the cache, where it runs and what it reports
        self,
        space: SearchSpace,
        bundle: DataBundle,
        recipe: Recipe,
        seed: int = 0,
        cache: StandaloneCache | None = None,
        device: torch.device | str = "cpu",
        latency: Mapping | None = None,
        time_budget: TimeBudget | None = None,
        metric: Metric | None = None,
    ) -> None:
        self.space, self.bundle, self.recipe, self.seed = space, bundle, recipe, int(seed)
        self.metric = metric or default_metric(bundle.task)
        self.cache = cache if cache is not None else StandaloneCache(None)
        self.device = torch.device(device)
        self.latency = dict(latency) if latency else None
        self.time_budget = time_budget
        self.n_trained = 0
        self.train_s = 0.0

    def evaluate(self, archs: Sequence[Sequence[int]]) -> list[dict]:
        if self.time_budget is not None:
            self.time_budget.start()  # the clock runs from the first evaluation
        archs = [as_arch(a) for a in archs]
        misses = self.cache.misses
        started = time.perf_counter()
        scores = train_standalone(
            archs, self.space, self.bundle, self.recipe, [self.seed], self.device, self.cache, metric=self.metric
        )
        self.train_s += time.perf_counter() - started
        self.n_trained += self.cache.misses - misses
        records = []
        for arch in archs:
            record = {
                self.metric.key: scores[(arch, self.seed)],
                "params": self.space.params(arch),
                "flops": self.space.flops(arch),
            }
            if self.latency:
                record["latency_ms"] = self.latency_ms(arch)
            records.append(record)
        return records

    def latency_ms(self, arch: Arch) -> float:
        cfg = self.latency or {}
        net = build_mlp(self.space, arch, self.seed).to(self.device).eval()
        batch = torch.randn(int(cfg.get("batch_size", 1)), self.space.in_features, device=self.device)
        return measure_ms(lambda: net(batch), int(cfg.get("warmup", 5)), int(cfg.get("repeats", 20)), self.device)
