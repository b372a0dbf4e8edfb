"""Search strategies and the driver loop, on a fake evaluator with a known optimum.

    .venv/bin/python -m pytest tests/test_search.py -q

The fake accuracy is a smooth bowl over the widths peaking at PEAK, which breaks MAX_PARAMS, so
the optimum under the budget is only known by enumerating the (small) space.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
from pathlib import Path

import pytest

from supernet.core.space import SearchSpace
from supernet.errors import UsageError
from supernet.search import (
    Constraints,
    SearchHooks,
    make_strategy,
    needs_latency,
    repair,
    validate_search_config,
)
from supernet.search import run_search as _run_search
from supernet.search.base import fitness_key, minimised
from supernet.search.pareto import dominates

SPACE = SearchSpace(
    in_features=16, num_classes=4, depth_min=1, depth_max=3, width_min=8, width_max=128,
    width_step=8,
)  # fmt: skip
PEAK = (128, 96, 64)
MAX_PARAMS = 6000
ALL_STRATEGIES = ["evolution", "random", "bayes", "rl"]
# Small settings per strategy so every test stays well under a second or two.
SMALL = {
    "evolution": {"population": 20},
    "random": {"batch": 20},
    "bayes": {"batch": 10, "startup_trials": 10},
    "rl": {"batch": 10},
}


class FakeEvaluator:
    """Same shape as the lead's evaluator: a record per arch, latency when asked. Records every
    batch it is given; `fail_after` raises once that many archs were scored (a kill mid-batch)."""

    def __init__(self, latency: bool = False, fail_after: int | None = None) -> None:
        self.latency, self.fail_after, self.seen = latency, fail_after, []

    @staticmethod
    def accuracy(arch) -> float:
        padded = list(arch) + [0] * (len(PEAK) - len(arch))
        return 1.0 - sum((w - t) ** 2 for w, t in zip(padded, PEAK, strict=True)) / (3 * 128**2)

    def evaluate(self, archs):
        out = []
        for arch in archs:
            if self.fail_after is not None and len(self.seen) >= self.fail_after:
                raise KeyboardInterrupt("killed mid-generation")
            self.seen.append(tuple(arch))
            record = {
                "val_acc": self.accuracy(arch),
                "params": SPACE.params(arch),
                "flops": SPACE.flops(arch),
            }
            if self.latency:  # deterministic stand-in: deeper and wider is slower
                record["latency_ms"] = 0.05 * len(arch) + SPACE.flops(arch) / 1e4
            out.append(record)
        return out


def every_arch():
    for depth in SPACE.depths:
        yield from itertools.product(SPACE.widths, repeat=depth)


def cfg_for(strategy: str, budget: int = 100, **over) -> dict:
    cfg = {"strategy": strategy, "budget": budget, "constraints": {"max_params": MAX_PARAMS}}
    return {**cfg, **SMALL[strategy], **over}


def run_search(space, evaluator, cfg, out_dir, seed, resume=False, **hooks):
    """`run_search` with the `SearchHooks` fields as keywords. Most tests need no pareto.png (half
    a second of matplotlib each); the output tests ask for it."""
    hooks.setdefault("plot", False)
    return _run_search(space, evaluator, cfg, out_dir, seed, resume, SearchHooks(**hooks))


def generations(strategy, n: int) -> list[list[tuple]]:
    """Drive `strategy` by hand for `n` generations (ask, score, tell); the batches it asked."""
    batches = []
    for _ in range(n):
        archs = strategy.ask()
        records = FakeEvaluator().evaluate(archs)
        for r in records:  # the runner adds these two
            r.update(feasible=True, violation=0.0)
        strategy.tell(archs, records)
        batches.append(archs)
    return batches


def read(path: Path) -> str:
    return path.read_text()


class Stop(Exception):
    pass


# ---------------------------------------------------------------------------- evolution
def test_evolution_finds_the_constrained_optimum(tmp_path):
    feasible = [a for a in every_arch() if SPACE.params(a) <= MAX_PARAMS]
    optimum = max(feasible, key=FakeEvaluator.accuracy)
    assert FakeEvaluator.accuracy(optimum) < FakeEvaluator.accuracy(PEAK)  # the budget binds
    result = run_search(SPACE, FakeEvaluator(), cfg_for("evolution", 300), tmp_path, seed=0)
    assert tuple(result["best"]["arch"]) == optimum
    assert result["n_evaluations"] == 300 < len(feasible)
    best = (tmp_path / "best" / "arch.yaml").read_text()
    assert f"params: {SPACE.params(optimum)}" in best


def test_evolution_beats_random_at_equal_budget(tmp_path):
    def mean_best(strategy):
        accs = [
            run_search(SPACE, FakeEvaluator(), cfg_for(strategy, 120), tmp_path / f"{strategy}{s}",
                       seed=s)["best"]["val_acc"]
            for s in range(3)
        ]  # fmt: skip
        return sum(accs) / len(accs)

    assert mean_best("evolution") > mean_best("random")


def test_aging_and_truncation_change_the_search(tmp_path):
    run_search(SPACE, FakeEvaluator(), cfg_for("evolution", 60), tmp_path / "default", seed=1)
    default = read(tmp_path / "default" / "history.csv")
    for name, over in (("aging", {"aging": True}), ("truncation", {"selection": "truncation", "parents": 5})):
        result = run_search(SPACE, FakeEvaluator(), cfg_for("evolution", 60, **over), tmp_path / name, seed=1)
        assert result["n_evaluations"] == 60
        assert result["best"]["params"] <= MAX_PARAMS
        # Same seed, same generation 0: only the option can make the later generations differ.
        history = read(tmp_path / name / "history.csv")
        assert history.splitlines()[:21] == default.splitlines()[:21]
        assert history != default, name


def test_aging_keeps_the_youngest_and_plus_selection_the_fittest():
    for aging in (True, False):
        strategy = make_strategy(SPACE, cfg_for("evolution", 100, aging=aging), seed=0)
        first, second = generations(strategy, 2)
        members = [arch for arch, _ in strategy.population]
        if aging:  # regularized evolution: generation 0, the oldest, is gone
            assert members == second
            continue
        pool = dict.fromkeys(first + second)  # parents + children, each arch once
        records = dict(zip(first + second, FakeEvaluator().evaluate(first + second), strict=True))
        fittest = sorted(pool, key=lambda a: fitness_key({**records[a], "feasible": True}), reverse=True)[:20]
        assert members == fittest and set(members) != set(second)


def test_truncation_selects_only_among_the_best_parents():
    picked = {}
    for selection in ("truncation", "tournament"):
        strategy = make_strategy(SPACE, cfg_for("evolution", 100, selection=selection, parents=5), seed=0)
        generations(strategy, 1)
        by_fitness = sorted(strategy.population, key=lambda m: fitness_key(m[1]), reverse=True)
        elite = {arch for arch, _ in by_fitness[:5]}
        strategy._prepare_selection()
        picked[selection] = {strategy._select() for _ in range(100)}
    assert len(picked["truncation"]) > 1 and picked["truncation"] <= elite
    assert not picked["tournament"] <= elite  # a tournament of 5 out of 20 often holds none of the best 5


def test_multi_objective_front_is_non_dominated(tmp_path):
    objectives = ["val_acc", "params", "latency_ms"]
    cfg = cfg_for("evolution", 120, objectives=objectives)
    result = run_search(SPACE, FakeEvaluator(latency=True), cfg, tmp_path, seed=0, plot=True)
    history = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert len(history) == 120 and "latency_ms" in history[0]
    points = [
        (-float(r["val_acc"]), int(r["params"]), float(r["latency_ms"])) for r in history
    ]  # fmt: skip
    front = json.loads((tmp_path / "pareto.json").read_text())["front"]
    assert front == result["pareto"] and len(front) > 3
    front_points = [minimised(r, objectives) for r in front]
    for p in front_points:
        assert not any(dominates(q, p) for q in points)
    for q in points:  # every scored arch is on the front or dominated by (or equal to) it
        assert any(dominates(p, q) or p == q for p in front_points)
    assert result["best"] == max(front, key=lambda r: r["val_acc"])
    assert result["hypervolume"] > 0
    assert (tmp_path / "pareto.png").stat().st_size > 1000


# ---------------------------------------------------------------------------- every strategy
@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_candidates_respect_constraints_and_budget(strategy, tmp_path):
    evaluator = FakeEvaluator()
    result = run_search(SPACE, evaluator, cfg_for(strategy, 60), tmp_path, seed=3)
    assert result["n_evaluations"] == 60 == len(evaluator.seen) == len(set(evaluator.seen))
    for arch in evaluator.seen:
        assert SPACE.contains(arch)
        assert SPACE.params(arch) <= MAX_PARAMS
    assert result["best"]["val_acc"] == max(FakeEvaluator.accuracy(a) for a in evaluator.seen)


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_same_seed_same_result(strategy, tmp_path):
    runs = [
        run_search(SPACE, FakeEvaluator(), cfg_for(strategy, 40), tmp_path / name, seed=seed)
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    ]
    assert read(tmp_path / "a" / "history.csv") == read(tmp_path / "b" / "history.csv")
    assert runs[0]["best"] == runs[1]["best"]
    assert read(tmp_path / "a" / "history.csv") != read(tmp_path / "c" / "history.csv")


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_resume_after_a_kill_gives_the_uninterrupted_result(strategy, tmp_path):
    cfg = cfg_for(strategy, 50, objectives=["val_acc", "params"])
    full = run_search(SPACE, FakeEvaluator(), cfg, tmp_path / "full", seed=2)

    # Killed between generations (after generation 1 was saved) ...
    def stop(generation):
        if generation == 1:
            raise Stop

    with pytest.raises(Stop):
        run_search(SPACE, FakeEvaluator(), cfg, tmp_path / "a", seed=2, on_generation=stop)
    # ... and killed in the middle of scoring a batch, twice in a row.
    for fail_after in (25, 12):
        with pytest.raises(KeyboardInterrupt):
            run_search(SPACE, FakeEvaluator(fail_after=fail_after), cfg, tmp_path / "b",
                       seed=2, resume=True)  # fmt: skip
    for run in ("a", "b"):
        resumed = run_search(SPACE, FakeEvaluator(), cfg, tmp_path / run, seed=2, resume=True)
        assert read(tmp_path / run / "history.csv") == read(tmp_path / "full" / "history.csv")
        assert read(tmp_path / run / "pareto.json") == read(tmp_path / "full" / "pareto.json")
        assert resumed["best"] == full["best"] and resumed["pareto"] == full["pareto"]
        state = json.loads((tmp_path / run / "search_state.json").read_text())
        full_state = json.loads((tmp_path / "full" / "search_state.json").read_text())
        assert state["strategy"] == full_state["strategy"]
    # Resuming a finished search scores nothing new.
    evaluator = FakeEvaluator()
    again = run_search(SPACE, evaluator, cfg, tmp_path / "full", seed=2, resume=True)
    assert evaluator.seen == [] and again["best"] == full["best"]


def test_bayes_nsga2_multi_objective_with_a_latency_budget(tmp_path):
    cfg = cfg_for("bayes", 40, sampler="nsga2", objectives=["val_acc", "params"],
                  constraints={"max_params": MAX_PARAMS, "max_latency_ms": 0.5})  # fmt: skip
    runs = [run_search(SPACE, FakeEvaluator(latency=True), cfg, tmp_path / str(i), seed=0) for i in range(2)]
    assert runs[0] == {**runs[1], "wall_time_s": runs[0]["wall_time_s"]}
    assert runs[0]["n_evaluations"] == 40
    assert all(r["latency_ms"] <= 0.5 and r["params"] <= MAX_PARAMS for r in runs[0]["pareto"])


@pytest.mark.slow
def test_bayes_gp_sampler(tmp_path):
    # The GP refits every proposal (seconds each on a small CPU): a handful of proposals.
    cfg = cfg_for("bayes", 8, sampler="gp", startup_trials=5, batch=1)
    runs = [run_search(SPACE, FakeEvaluator(), cfg, tmp_path / str(i), seed=0) for i in range(2)]
    assert runs[0]["best"] == runs[1]["best"] and runs[0]["best"]["params"] <= MAX_PARAMS
    assert read(tmp_path / "0" / "history.csv") == read(tmp_path / "1" / "history.csv")


def test_resume_refuses_other_settings(tmp_path):
    run_search(SPACE, FakeEvaluator(), cfg_for("random", 20), tmp_path, seed=0)
    with pytest.raises(UsageError, match="seed=0 there, 1 here"):
        run_search(SPACE, FakeEvaluator(), cfg_for("random", 20), tmp_path, seed=1, resume=True)
    with pytest.raises(UsageError, match="search.budget=20 there, 40 here"):
        run_search(SPACE, FakeEvaluator(), cfg_for("random", 40), tmp_path, seed=0, resume=True)


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_state_dict_is_json_and_restores_the_next_proposal(strategy):
    cfg = validate_search_config(cfg_for(strategy, 60), SPACE)
    a = make_strategy(SPACE, cfg, seed=4)
    archs = a.ask()
    records = FakeEvaluator().evaluate(archs)
    for r in records:  # the runner adds these two
        r.update(feasible=True, violation=0.0)
    a.tell(archs, records)
    saved = json.loads(json.dumps(a.state_dict()))
    b = make_strategy(SPACE, cfg, seed=99)
    b.load_state_dict(saved)
    assert a.ask() == b.ask()


# ---------------------------------------------------------------------------- latency
def test_latency_budget_marks_infeasible_but_keeps_them(tmp_path):
    limit = 0.2
    cfg = cfg_for("evolution", 60, constraints={"max_latency_ms": limit})
    assert needs_latency(cfg)
    result = run_search(SPACE, FakeEvaluator(latency=True), cfg, tmp_path, seed=0)
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert len(rows) == 60
    slow = [r for r in rows if float(r["latency_ms"]) > limit]
    assert slow and all(r["feasible"] == "False" for r in slow)
    assert result["best"]["feasible"] and result["best"]["latency_ms"] <= limit


def test_latency_budget_without_measurement_is_an_error(tmp_path):
    cfg = cfg_for("random", 20, constraints={"max_latency_ms": 1.0})
    with pytest.raises(UsageError, match="did not measure latency_ms"):
        run_search(SPACE, FakeEvaluator(latency=False), cfg, tmp_path, seed=0)


# ---------------------------------------------------------------------------- outputs
class RecordingWriter:
    """The two SummaryWriter methods the runner uses, kept in lists."""

    def __init__(self):
        self.scalars, self.figures = [], []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_figure(self, tag, figure, global_step=None, close=True):
        self.figures.append((tag, global_step))


def test_outputs_and_tensorboard_tags(tmp_path):
    writer = RecordingWriter()
    cfg = cfg_for("evolution", 60, objectives=["val_acc", "flops"])
    result = run_search(SPACE, FakeEvaluator(), cfg, tmp_path, seed=0, writer=writer, plot=True)
    for name in ("history.csv", "pareto.json", "pareto.png", "best/arch.yaml", "search_state.json"):
        assert (tmp_path / name).exists(), name
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert list(rows[0]) == [
        "evaluation", "arch", "depth", "params", "flops", "val_acc", "generation", "feasible"
    ]  # fmt: skip
    assert rows[0]["arch"] == "-".join(str(w) for w in json.loads(
        (tmp_path / "search_state.json").read_text())["history"][0]["arch"])  # fmt: skip
    tags = {t for t, _, _ in writer.scalars}
    assert tags == {
        "search/best_val_acc", "search/mean_val_acc", "search/best_so_far", "search/hypervolume"
    }  # fmt: skip
    best_so_far = [(s, v) for t, v, s in writer.scalars if t == "search/best_so_far"]
    assert [s for s, _ in best_so_far] == [20, 40, 60]  # against evaluations
    assert [v for _, v in best_so_far] == sorted(v for _, v in best_so_far)
    hv = [v for t, v, _ in writer.scalars if t == "search/hypervolume"]
    assert hv == sorted(hv)  # the front only improves
    assert writer.figures == [("search/pareto", 60)]
    assert json.loads(json.dumps(result))["n_evaluations"] == 60


# ---------------------------------------------------------------------------- re-ranking
def smallest_first(archs):
    """A second score that disagrees with the first: it prefers the smaller of the finalists
    (by loss; by accuracy it prefers the larger)."""
    return [{"loss": SPACE.params(a) / 1e5, "acc": SPACE.params(a) / 1e5} for a in archs]


def test_finetune_rerank_chooses_the_best_rescored_finalist(tmp_path):
    cfg = cfg_for("evolution", 100, finetune={"top": 5, "steps": 10})
    plain = run_search(SPACE, FakeEvaluator(), {**cfg, "finetune": {"top": 0}}, tmp_path / "plain", seed=0)
    seen = []
    result = run_search(
        SPACE, FakeEvaluator(), cfg, tmp_path / "rerank", seed=0, rescore=lambda a: seen.append(a) or smallest_first(a)
    )
    history = json.loads((tmp_path / "rerank" / "search_state.json").read_text())["history"]
    top5 = sorted((r for r in history if r["feasible"]), key=lambda r: -r["val_acc"])[:5]
    assert seen == [[tuple(r["arch"]) for r in top5]]  # one call, the five best by the search's own score
    finalists = result["finetune"]["finalists"]
    assert [f["inherited_rank"] for f in finalists] == [1, 2, 3, 4, 5]
    smallest = min(top5, key=lambda r: r["params"])
    assert result["best"]["arch"] == smallest["arch"] != plain["best"]["arch"] == top5[0]["arch"]
    assert result["best"]["finetuned_loss"] == min(f["finetuned_loss"] for f in finalists)
    assert result["finetune"]["changed"] and result["finetune"]["top"] == 5
    rows = list(csv.DictReader((tmp_path / "rerank" / "finetune.csv").open()))
    assert len(rows) == 5 and sorted(int(r["finetuned_rank"]) for r in rows) == [1, 2, 3, 4, 5]
    assert "finetuned_loss:" in read(tmp_path / "rerank" / "best" / "arch.yaml")
    by_acc = run_search(
        SPACE, FakeEvaluator(), {**cfg, "finetune": {"top": 5, "score": "acc"}}, tmp_path / "acc", seed=0,
        rescore=smallest_first,
    )  # fmt: skip
    assert by_acc["best"]["arch"] == max(top5, key=lambda r: r["params"])["arch"]
    # The search loop itself is untouched: same history either way.
    assert result["n_evaluations"] == plain["n_evaluations"] and result["pareto"] == plain["pareto"]


def test_finetune_rerank_of_a_front_and_on_resume(tmp_path):
    cfg = cfg_for("evolution", 60, objectives=["val_acc", "params"])
    first = run_search(
        SPACE, FakeEvaluator(), {**cfg, "finetune": {"top": 0}}, tmp_path, seed=0, rescore=smallest_first
    )
    assert "finetune" not in first  # top=0: off, even with a scorer
    assert "finetune" not in run_search(SPACE, FakeEvaluator(), cfg, tmp_path / "b", seed=0)  # no scorer: off
    # Resuming the finished search with re-ranking switched on only changes how it ends.
    again = run_search(
        SPACE, FakeEvaluator(), {**cfg, "finetune": {"top": 3}}, tmp_path, seed=0, resume=True, rescore=smallest_first
    )
    front = first["pareto"][:3]  # best val_acc first
    assert [f["arch"] for f in again["finetune"]["finalists"]] == [f["arch"] for f in front]
    assert again["best"]["arch"] == min(front, key=lambda r: r["params"])["arch"]
    assert again["n_evaluations"] == first["n_evaluations"]


@pytest.mark.parametrize(
    "node, message",
    [
        ({"top": -1}, r"search.finetune.top=-1 must be an integer >= 0"),
        ({"top": 5, "steps": 0}, r"search.finetune.steps=0 must be an integer >= 1"),
        ({"lr": 0}, r"search.finetune.lr=0 must be a number > 0"),
        ({"epochs": 3}, r"search.finetune.epochs is not a fine-tune setting: use steps, lr, batch_size, score, top"),
        ({"score": "f1"}, r"search.finetune.score='f1' must be one of loss, acc"),
    ],
)
def test_bad_finetune_settings(node, message):
    with pytest.raises(UsageError, match=message):
        validate_search_config(cfg_for("evolution", 100, finetune=node), SPACE)


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_a_budget_above_the_space_scores_every_arch_once(tmp_path, strategy, caplog):
    tiny = SearchSpace(in_features=4, num_classes=2, depth_min=1, depth_max=1, width_min=8,
                       width_max=32, width_step=8)  # fmt: skip
    full = validate_search_config({"strategy": strategy, "budget": 500}, tiny)
    assert (full["budget"], full["strategy"]) == (4, "random")
    assert "search.budget=500 covers all 4 archs in the space: scoring every one (search=random)" in caplog.text
    result = run_search(tiny, FakeEvaluator(), {"strategy": strategy, "budget": 500, "batch": 3},
                        tmp_path, seed=0)  # fmt: skip
    assert result["n_evaluations"] == 4 and result["stopped"] == "budget"


# ---------------------------------------------------------------------------- constraints
def test_repair_brings_any_arch_under_the_budget():
    rng = random.Random(0)
    for limit in (SPACE.params(SPACE.smallest()), 2000, MAX_PARAMS, 20000):
        constraints = Constraints(max_params=limit)
        for _ in range(50):
            arch = SPACE.sample(rng)
            fixed = repair(SPACE, constraints, arch)
            assert SPACE.contains(fixed) and SPACE.params(fixed) <= limit
            if SPACE.params(arch) <= limit:
                assert fixed == arch
    assert repair(SPACE, Constraints(max_params=SPACE.params(SPACE.smallest())),
                  SPACE.largest()) == SPACE.smallest()  # fmt: skip


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"strategy": "genetic"}, "search.strategy='genetic' is unknown"),
        ({"budget": 10}, "search.budget=10 is below search.population=20"),
        ({"objectives": ["val_acc", "energy"]}, "unknown objective 'energy'"),
        ({"objectives": ["params"]}, "must include val_acc"),
        ({"constraints": {"max_params": -5}}, "max_params=-5 must be a non-negative"),
        ({"constraints": {"max_flops": 10}}, "use at least 320"),
        ({"mutation_prob": 1.5}, r"search.mutation_prob=1.5 must be a number in \[0.0, 1.0\]"),
        ({"selection": "roulette"}, "search.selection='roulette' is unknown"),
    ],
)
def test_bad_configs_are_usage_errors(over, message):
    with pytest.raises(UsageError, match=message):
        validate_search_config({**cfg_for("evolution", 100), **over}, SPACE)


def test_impossible_param_budget_names_the_smallest_value():
    small = SPACE.params(SPACE.smallest())
    with pytest.raises(UsageError) as err:
        validate_search_config({"strategy": "evolution", "constraints": {"max_params": 10}}, SPACE)
    assert str(err.value) == (
        f"search.constraints.max_params=10 is below the smallest arch in the space ({small} "
        f"params for [8]); use at least {small}"
    )


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_config_files_compose_and_validate(strategy):
    from hydra import compose, initialize_config_dir

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(overrides=[f"+search={strategy}", "search.budget=500"])
    full = validate_search_config(cfg.search, SPACE)
    assert full["strategy"] == strategy and full["budget"] == 500


# ---------------------------------------------------------------------------- search.tolerance
def test_tolerance_picks_the_smallest_arch_among_the_best(tmp_path):
    """The same seeded search with and without a tolerance: the same history, and the winner
    becomes the fewest-params feasible arch within the tolerance of the best score."""
    plain = run_search(SPACE, FakeEvaluator(), cfg_for("evolution", 120), tmp_path / "plain", seed=0)
    cfg = cfg_for("evolution", 120, tolerance=0.02)
    tolerant = run_search(SPACE, FakeEvaluator(), cfg, tmp_path / "tol", seed=0)
    history = [r for r in csv.DictReader((tmp_path / "tol" / "history.csv").open())]
    assert read(tmp_path / "plain" / "history.csv") == read(tmp_path / "tol" / "history.csv")
    feasible = [r for r in history if r["feasible"] == "True"]
    best = max(float(r["val_acc"]) for r in feasible)
    equals = [r for r in feasible if float(r["val_acc"]) >= best - 0.02]
    assert len(equals) > 1
    assert tolerant["best"]["params"] == min(int(r["params"]) for r in equals)
    assert tolerant["best"]["params"] < plain["best"]["params"]
    assert tolerant["best"]["val_acc"] >= best - 0.02


def test_tolerance_of_a_lower_is_better_metric_is_a_fraction():
    from supernet.search.report import equals_of_best

    records = [
        {"val_rmse": 1.00, "params": 900, "feasible": True, "violation": 0.0},
        {"val_rmse": 1.04, "params": 300, "feasible": True, "violation": 0.0},
        {"val_rmse": 1.06, "params": 100, "feasible": True, "violation": 0.0},
    ]
    assert [r["params"] for r in equals_of_best(records, "val_rmse", 0.05)] == [300, 900]


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"tolerance": 0}, r"search.tolerance=0 must be in \(0, 1\]"),
        ({"tolerance": 1.5}, r"search.tolerance=1.5 must be in \(0, 1\]"),
        ({"tolerance": "se"}, r"search.tolerance='se' must be in \(0, 1\]"),
        ({"tolerance": 0.01, "objectives": ["val_acc", "params"]}, "drop one or the other"),
    ],
)
def test_bad_tolerance_is_one_line(over, match, tmp_path):
    with pytest.raises(UsageError, match=match):
        run_search(SPACE, FakeEvaluator(), cfg_for("evolution", 20, **over), tmp_path, seed=0)


def test_checked_settings_are_read_only_and_not_checked_again():
    import copy
    import pickle

    settings = validate_search_config(cfg_for("evolution", 60), SPACE)
    assert validate_search_config(settings, SPACE) is settings  # handed on: taken as it is
    assert settings.population == settings["population"] and json.loads(json.dumps(settings)) == settings
    with pytest.raises(TypeError, match="read-only"):
        settings["budget"] = 10
    wider = SearchSpace(
        in_features=16, num_classes=4, depth_min=1, depth_max=3, width_min=8, width_max=256, width_step=8
    )
    assert validate_search_config(settings, wider) is not settings  # another space: checked again
    for copied in (pickle.loads(pickle.dumps(settings)), copy.deepcopy(settings)):
        assert copied == settings and copied.space == SPACE
    assert settings.replace(budget=30)["budget"] == 30 and settings["budget"] == 60


@pytest.mark.parametrize("strategy", ["evolution", "random", "bayes", "rl"])
def test_checked_settings_are_typed_and_frozen(strategy):
    """The block is checked once into frozen objects: the shared settings and the strategy's own,
    which the strategy reads (issue 38: settings built once)."""
    import dataclasses

    settings = validate_search_config(cfg_for(strategy, 60), SPACE)
    common, own = settings.common, settings.own
    assert (common.strategy, common.budget, common.objectives) == (strategy, 60, ("val_acc",))
    assert common.constraints.max_params == MAX_PARAMS and common.finetune.top == settings["finetune"]["top"]
    assert {f.name: getattr(own, f.name) for f in dataclasses.fields(own)} == {
        f.name: settings[f.name] for f in dataclasses.fields(own)
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        common.budget = 10  # type: ignore[misc]
    assert make_strategy(SPACE, settings, seed=0).settings is own  # taken as built, not checked again
    renamed = settings.replace(objectives=["val_rmse"])
    assert renamed.common.objectives == ("val_rmse",) and renamed.own is own


def test_settings_for_the_data_sizes_recheck_only_the_budget_floor():
    settings = validate_search_config(cfg_for("random", 60), SPACE)
    real = dataclasses_replace(SPACE, in_features=SPACE.in_features * 4)
    moved = settings.for_space(real)
    assert moved.space == real and moved == settings and moved.own is settings.own
    assert settings.for_space(SPACE) is settings
    tight = validate_search_config(
        {**cfg_for("random", 60), "constraints": {"max_params": SPACE.params(SPACE.smallest())}}, SPACE
    )
    with pytest.raises(UsageError, match="is below the smallest arch in the space"):
        tight.for_space(real)


def dataclasses_replace(space, **changes):
    import dataclasses

    return dataclasses.replace(space, **changes)
