"""The search optimises ``search.metric`` in its direction (issue #25): regression RMSE, log loss,
balanced accuracy, ... on fake and on real (tiny, random-weight) supernets; no mocks.

    .venv/bin/python -m pytest tests/test_search_metric.py -q

A fake evaluator here is a plain object with ``metric`` and ``evaluate``: what the runner reads
from any evaluator. Its RMSE is a bowl over the widths with its minimum at PEAK, which breaks
MAX_PARAMS, so the best arch under the budget is only known by enumerating the (small) space.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from supernet import SearchSpace, SuperMLP
from supernet.commands import search as search_job
from supernet.core.metrics import METRICS
from supernet.core.task import REGRESSION, Task
from supernet.data.datasets import DataBundle
from supernet.errors import UsageError
from supernet.evaluation.finetune import FinetuneRecipe, finetuned_scores
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.search import SearchHooks, make_strategy, run_search, validate_search_config
from supernet.search.base import fitness_key, score_objectives
from supernet.search.pareto import dominates
from supernet.search.report import hypervolume_of
from supernet.search.rerank import rerank
from supernet.search.state import fingerprint
from supernet.search.subset import promoted

from conftest import make_cfg, read_json

SPACE = SearchSpace(in_features=16, num_classes=1, depth_min=1, depth_max=3, width_min=8, width_max=128, width_step=8)
PEAK = (128, 96, 64)
MAX_PARAMS = 6000
SMALL = {
    "evolution": {"population": 20},
    "random": {"batch": 20},
    "bayes": {"batch": 10, "startup_trials": 10},
    "rl": {"batch": 10},
}
REG_TASK = Task(REGRESSION, "mse", targets=("y",), target_mean=(0.0,), target_std=(1.0,))
LEGACY_CKPT = Path(__file__).resolve().parent / "fixtures" / "legacy" / "supernet.ckpt"  # digits, 10 classes


class RmseEvaluator:
    """Records with ``val_rmse`` (lower is better): 0 at PEAK, growing with the distance to it."""

    metric = METRICS["rmse"]
    task = REG_TASK

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    @staticmethod
    def rmse(arch) -> float:
        padded = list(arch) + [0] * (len(PEAK) - len(arch))
        return 0.1 + sum((w - t) ** 2 for w, t in zip(padded, PEAK, strict=True)) / (3 * 128**2)

    def evaluate(self, archs):
        self.seen += [tuple(a) for a in archs]
        return [{"val_rmse": self.rmse(a), "params": SPACE.params(a), "flops": SPACE.flops(a)} for a in archs]


def cfg_for(strategy: str, budget: int = 60, **over) -> dict:
    cfg = {"strategy": strategy, "budget": budget, "constraints": {"max_params": MAX_PARAMS}, "finetune": {"top": 0}}
    return {**cfg, **SMALL[strategy], **over}


def search(evaluator, cfg, out_dir, seed=0, resume=False, space=SPACE, **hooks):
    hooks.setdefault("plot", False)
    return run_search(space, evaluator, cfg, out_dir, seed, resume, SearchHooks(**hooks))


def every_arch():
    for depth in SPACE.depths:
        yield from itertools.product(SPACE.widths, repeat=depth)


def rows_of(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------- direction
def test_evolution_minimises_rmse_to_the_constrained_optimum(tmp_path):
    feasible = [a for a in every_arch() if SPACE.params(a) <= MAX_PARAMS]
    optimum = min(feasible, key=RmseEvaluator.rmse)
    result = search(RmseEvaluator(), cfg_for("evolution", 300), tmp_path, seed=0)
    assert tuple(result["best"]["arch"]) == optimum
    assert result["metric"] == "rmse" and result["objectives"] == ["val_rmse"]  # [val_acc] = the search metric
    assert "val_acc" not in result["best"] and result["best"]["val_rmse"] == RmseEvaluator.rmse(optimum)
    rows = rows_of(tmp_path / "history.csv")
    assert list(rows[0]) == ["evaluation", "arch", "depth", "params", "flops", "val_rmse", "generation", "feasible"]
    assert "val_rmse: " in (tmp_path / "best" / "arch.yaml").read_text()


@pytest.mark.parametrize("strategy", ["evolution", "random", "bayes", "rl"])
def test_every_strategy_keeps_the_lowest_rmse(strategy, tmp_path):
    evaluator = RmseEvaluator()
    result = search(evaluator, cfg_for(strategy, 60), tmp_path, seed=1)
    assert result["n_evaluations"] == 60 == len(set(evaluator.seen))
    assert result["best"]["val_rmse"] == min(RmseEvaluator.rmse(a) for a in evaluator.seen)


def test_guided_strategies_move_towards_low_rmse(tmp_path):
    """Evolution, told lower is better, ends better than random search at the same budget (were
    it maximising RMSE, it would end far worse)."""

    def mean_best(strategy):
        bests = [search(RmseEvaluator(), cfg_for(strategy, 120), tmp_path / f"{strategy}{s}", seed=s)
                 for s in range(3)]  # fmt: skip
        return sum(r["best"]["val_rmse"] for r in bests) / len(bests)

    assert mean_best("evolution") < mean_best("random")


def test_rl_reward_is_the_signed_scaled_metric():
    strategy = make_strategy(SPACE, cfg_for("rl", 60), seed=0, metric=METRICS["rmse"])
    archs = strategy.ask()
    records = [{**r, "feasible": True, "violation": 0.0} for r in RmseEvaluator().evaluate(archs)]
    strategy.tell(archs, records)
    worst = max(r["val_rmse"] for r in records)
    assert strategy.metric_scale == worst
    low, high = sorted(records, key=lambda r: r["val_rmse"])[:: len(records) - 1]
    assert strategy.reward(low) > strategy.reward(high) == pytest.approx(-1.0)
    assert json.loads(json.dumps(strategy.state_dict()))["metric_scale"] == worst


def test_pareto_front_minimises_rmse_and_the_tensorboard_tags_name_it(tmp_path):
    class Writer:
        def __init__(self):
            self.scalars = []

        def add_scalar(self, tag, value, step):
            self.scalars.append((tag, value, step))

        def add_figure(self, *args, **kwargs):
            pass

    writer = Writer()
    cfg = cfg_for("evolution", 80, objectives=["val_acc", "params"])
    result = search(RmseEvaluator(), cfg, tmp_path, seed=0, writer=writer, plot=True)
    assert result["objectives"] == ["val_rmse", "params"]
    history = rows_of(tmp_path / "history.csv")
    points = [(float(r["val_rmse"]), int(r["params"])) for r in history]
    front = [(r["val_rmse"], r["params"]) for r in result["pareto"]]
    assert len(front) > 3
    for p in front:  # nothing scored has both a lower RMSE and fewer params
        assert not any(dominates(q, p) for q in points)
    assert result["best"] == min(result["pareto"], key=lambda r: r["val_rmse"])
    assert [r["val_rmse"] for r in result["pareto"]] == sorted(r["val_rmse"] for r in result["pareto"])
    assert 0 < result["hypervolume"] < 1.1**2
    tags = {t for t, _, _ in writer.scalars}
    assert tags == {"search/best_val_rmse", "search/mean_val_rmse", "search/best_so_far", "search/hypervolume"}
    by_generation = [v for t, v, _ in writer.scalars if t == "search/best_so_far"]
    assert by_generation == sorted(by_generation, reverse=True)  # the best RMSE so far only falls
    hv = [v for t, v, _ in writer.scalars if t == "search/hypervolume"]
    assert hv == sorted(hv)
    assert (tmp_path / "pareto.png").stat().st_size > 1000


def test_hypervolume_of_a_lower_is_better_metric_scales_by_the_first_generation():
    gen0 = [{"val_rmse": 2.0, "params": 100, "feasible": True, "generation": 0}]
    later = {"val_rmse": 1.0, "params": 100, "feasible": True, "generation": 1}
    objectives = ["val_rmse", "params"]
    scale = SPACE.params(SPACE.largest())
    # RMSE 1.0 over the first generation's worst, 2.0: a point at (0.5, 100 / scale), reference 1.1.
    assert hypervolume_of(SPACE, [*gen0, later], objectives, None) == pytest.approx(0.6 * (1.1 - 100 / scale))


# ---------------------------------------------------------------------------- the objectives rule
def test_objectives_name_the_search_metric():
    assert score_objectives(["val_acc", "params"], METRICS["rmse"]) == ["val_rmse", "params"]
    assert score_objectives(["val_rmse", "flops"], METRICS["rmse"]) == ["val_rmse", "flops"]
    assert score_objectives(["val_acc"]) == ["val_acc"]  # accuracy: as it always was
    with pytest.raises(UsageError, match="names val_log_loss but the search metric is accuracy"):
        score_objectives(["val_log_loss"], METRICS["accuracy"])
    with pytest.raises(UsageError, match="names 2 scores"):
        validate_search_config(cfg_for("random", objectives=["val_acc", "val_rmse"]), SPACE)
    with pytest.raises(UsageError, match=r"search.metric='auc' is unknown"):
        validate_search_config(cfg_for("random", metric="auc"), SPACE)
    with pytest.raises(UsageError, match="names val_rmse but the search metric is log_loss"):
        validate_search_config(cfg_for("random", metric="log_loss", objectives=["val_rmse"]), SPACE)


def test_a_search_refuses_another_metrics_objective_and_a_metric_its_evaluator_lacks(tmp_path):
    with pytest.raises(UsageError, match="names val_log_loss but the search metric is rmse"):
        search(RmseEvaluator(), cfg_for("random", objectives=["val_log_loss"]), tmp_path / "a")
    with pytest.raises(UsageError, match="search.metric=mae but the evaluator scores rmse"):
        search(RmseEvaluator(), cfg_for("random", metric="mae"), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_saved_search_without_metric_resumes_as_null(tmp_path):
    cfg = validate_search_config(cfg_for("random", 40), SPACE)
    # null is left out of the fingerprint: a state saved before search.metric existed resumes
    assert cfg["metric"] is None and "metric" not in fingerprint(SPACE, cfg, 0)["search"]
    assert fingerprint(SPACE, {**cfg, "metric": "rmse"}, 0)["search"]["metric"] == "rmse"
    full = search(RmseEvaluator(), cfg_for("random", 60), tmp_path / "full", seed=2)

    def stop(generation):
        if generation == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        search(RmseEvaluator(), cfg_for("random", 60), tmp_path / "part", seed=2, on_generation=stop)
    resumed = search(RmseEvaluator(), cfg_for("random", 60), tmp_path / "part", seed=2, resume=True)
    assert resumed["best"] == full["best"]
    assert (tmp_path / "part" / "history.csv").read_text() == (tmp_path / "full" / "history.csv").read_text()
    with pytest.raises(UsageError, match="search.metric=None there, 'rmse' here"):
        search(RmseEvaluator(), cfg_for("random", 60, metric="rmse"), tmp_path / "part", seed=2, resume=True)


# ---------------------------------------------------------------------------- subset and re-ranking
def test_the_subset_margin_follows_the_direction():
    def record(i, subset):
        return {"arch": [8 * (i + 1)], "params": 100 + i, "feasible": True, "val_rmse": None, "val_rmse_subset": subset}

    history = [{**record(0, 1.0), "val_rmse": 1.0}]
    # The best of the batch always goes on; the margin is relative for a lower-is-better metric:
    # 1.008 is within 1% of the leader's 1.0 (1.008 * 0.99 < 1.0), 1.02 is not.
    batch = [record(1, 1.0), record(2, 1.008), record(3, 1.02), record(4, 1.5)]
    assert promoted(batch, history, ["val_rmse"], top=0.1, margin=0.01) == [True, True, False, False]
    # A better leader in the batch raises the bar.
    batch = [record(1, 0.9), record(2, 1.008), record(3, 1.02)]
    assert promoted(batch, history, ["val_rmse"], top=0.1, margin=0.01) == [True, False, False]
    # Accuracy keeps its absolute margin, upwards.
    acc = [{**r, "val_acc": None, "val_acc_subset": r["val_rmse_subset"]} for r in (record(1, 0.8), record(2, 0.795))]
    assert promoted(acc, [], ["val_acc"], top=0.1, margin=0.01) == [True, True]
    assert promoted(acc, [], ["val_acc"], top=0.1, margin=0.001) == [True, False]


def test_rerank_orders_the_finalists_by_the_metrics_direction():
    finalists = [{"arch": [a], "params": a, "val_rmse": 1.0 + i} for i, a in enumerate((8, 16, 24))]
    scores = {(8,): (0.3, 2.0), (16,): (0.1, 3.0), (24,): (0.2, 1.0)}  # loss, rmse after the fine-tune

    def rescore(archs):
        return [{"loss": scores[a][0], "rmse": scores[a][1]} for a in archs]

    by_metric = rerank(finalists, rescore, "metric", METRICS["rmse"])
    assert by_metric["best"]["arch"] == [24] and by_metric["best"]["finetuned_rmse"] == 1.0
    assert [r["finetuned_rank"] for r in by_metric["finalists"]] == [2, 3, 1]
    assert rerank(finalists, rescore, "acc", METRICS["rmse"])["best"]["arch"] == [24]  # acc: the same
    assert rerank(finalists, rescore, "loss", METRICS["rmse"])["best"]["arch"] == [16]


def test_a_search_reranks_by_the_finetuned_metric(tmp_path):
    def rescore(archs):  # prefers the smallest finalist, by either score
        return [{"loss": SPACE.params(a) / 1e5, "rmse": SPACE.params(a) / 1e4} for a in archs]

    cfg = cfg_for("evolution", 60, finetune={"top": 4, "score": "metric"})
    result = search(RmseEvaluator(), cfg, tmp_path, seed=0, rescore=rescore)
    finalists = result["finetune"]["finalists"]
    assert [f["val_rmse"] for f in finalists] == sorted(f["val_rmse"] for f in finalists)  # best inherited first
    assert result["best"]["arch"] == min(finalists, key=lambda f: f["params"])["arch"]
    assert result["best"]["finetuned_rmse"] == min(f["finetuned_rmse"] for f in finalists)
    assert list(rows_of(tmp_path / "finetune.csv")[0])[3:6] == ["val_rmse", "finetuned_rmse", "finetuned_loss"]


# ---------------------------------------------------------------------------- a real supernet
def regression_problem(rows: int = 300, seed: int = 0):
    """A random-weight supernet over 8 features with one output, and targets made by its largest
    net plus noise (so the nets differ in RMSE)."""
    space = SearchSpace(in_features=8, num_classes=1, depth_min=1, depth_max=2, width_min=8, width_max=32, width_step=8)
    torch.manual_seed(seed)
    net = SuperMLP(space).calibrate(torch.randn(64, 8)).eval()
    x = torch.randn(rows, 8)
    with torch.no_grad():
        y = net(x, space.largest()) + 0.3 * torch.randn(rows, 1)
    return space, net, x, y


def test_a_real_regression_search_chooses_the_lowest_rmse(tmp_path):
    space, net, x, y = regression_problem()
    task = Task(REGRESSION, "mse", targets=("y",), target_mean=(5.0,), target_std=(2.0,))
    evaluator = InheritedEvaluator(net, space, x, y, metric=METRICS["rmse"], task=task)
    result = search(evaluator, {"strategy": "random", "budget": space.size(), "batch": 10}, tmp_path, space=space)
    with torch.no_grad():  # in the targets' units: std 2 times the standardised error
        truth = {a: 2.0 * float((net.extract(a)(x) - y).pow(2).mean().sqrt()) for a in map(tuple, every(space))}
    best = min(truth, key=truth.get)
    assert tuple(result["best"]["arch"]) == best and result["metric"] == "rmse"
    assert result["best"]["val_rmse"] == pytest.approx(truth[best], rel=1e-5)
    # fidelity=subset: targets have no classes, the subset is a seeded sample; <key>_subset columns
    cfg = {"strategy": "random", "budget": space.size(), "batch": 10, "fidelity": "subset", "subset": {"size": 0.3}}
    sub = search(evaluator, cfg, tmp_path / "subset", space=space)
    rows = rows_of(tmp_path / "subset" / "history.csv")
    assert "val_rmse_subset" in rows[0] and any(r["val_rmse"] == "" for r in rows)
    assert sub["best"]["val_rmse"] == min(float(r["val_rmse"]) for r in rows if r["val_rmse"])
    assert sub["fidelity"]["rows"] == 90


def every(space):
    for depth in space.depths:
        yield from itertools.product(space.widths, repeat=depth)


def test_finetune_of_a_regression_uses_its_loss_and_reports_the_metric():
    space, net, x, y = regression_problem()
    task = Task(REGRESSION, "mse", targets=("y",), target_mean=(1.0,), target_std=(3.0,))
    bundle = DataBundle("toy", x[:200], y[:200], x[200:], y[200:], None, None, [8], [], [0.0] * 8, [1.0] * 8, task=task)
    archs = [(8,), (32, 16)]
    inherited = finetuned_scores(net, archs, bundle, FinetuneRecipe(steps=0), metric=METRICS["rmse"])
    for arch, s in zip(archs, inherited, strict=True):
        assert set(s) == {"loss", "rmse"}  # no accuracy for a regression
        with torch.no_grad():
            mse = float((net.extract(arch)(x[200:]) - y[200:]).pow(2).mean())
        assert s["loss"] == pytest.approx(mse, rel=1e-5)
        assert s["rmse"] == pytest.approx(3.0 * math.sqrt(mse), rel=1e-5)
    tuned = finetuned_scores(
        net, archs, bundle, FinetuneRecipe(steps=20, lr=1e-2, batch_size=64), metric=METRICS["rmse"]
    )
    assert all(t["loss"] != i["loss"] for t, i in zip(tuned, inherited, strict=True))


def test_finetune_of_a_weighted_classification_reports_the_weighted_loss():
    space = SearchSpace(in_features=8, num_classes=3, depth_min=1, depth_max=2, width_min=8, width_max=16, width_step=8)
    torch.manual_seed(1)
    net = SuperMLP(space).calibrate(torch.randn(64, 8)).eval()
    x, y = torch.randn(300, 8), torch.randint(0, 3, (300,))
    task = Task(class_weight=(1.0, 2.0, 0.5))
    bundle = DataBundle("toy", x[:200], y[:200], x[200:], y[200:], None, None, [8], list("abc"), [0.0] * 8, [1.0] * 8,
                        task=task)  # fmt: skip
    s = finetuned_scores(net, [(16, 8)], bundle, FinetuneRecipe(steps=0), metric=METRICS["balanced_accuracy"])[0]
    with torch.no_grad():
        logits = net.extract((16, 8))(x[200:])
    weighted = torch.nn.functional.cross_entropy(logits, y[200:], weight=torch.tensor(task.class_weight))
    assert s["loss"] == pytest.approx(float(weighted), rel=1e-5)
    assert s["balanced_accuracy"] == pytest.approx(METRICS["balanced_accuracy"](logits, y[200:], task))
    assert s["acc"] == float((logits.argmax(1) == y[200:]).double().mean())


# ---------------------------------------------------------------------------- the command
@pytest.mark.parametrize(
    "over, message",
    [
        ("search.metric=roc_auc", "search.metric=roc_auc needs two classes but the data has 10"),
        ("search.metric=rmse", "search.metric=rmse is a regression metric but the task is classification"),
        ("search.objectives=[val_log_loss]", "names val_log_loss but the search metric is accuracy"),
    ],
)
def test_the_command_refuses_a_metric_the_task_cannot_take(tmp_path, over, message):
    cfg = make_cfg(
        "search", [f"ckpt_path={LEGACY_CKPT}", over, "search.budget=20", "search.population=10", "logger=none"]
    )
    with pytest.raises(UsageError, match=message):
        search_job.run(cfg, tmp_path / "run")
    assert not list((tmp_path / "run").glob("*.json"))  # nothing written


def test_the_command_searches_by_balanced_accuracy(tmp_path):
    over = ["search.metric=balanced_accuracy", "search.budget=20", "search.population=10", "search.finetune.top=2",
            "search.finetune.steps=5", "search.finetune.score=metric", "logger=none"]  # fmt: skip
    result = search_job.run(make_cfg("search", [f"ckpt_path={LEGACY_CKPT}", *over]), tmp_path)
    assert result["metric"] == "balanced_accuracy" and result["objectives"] == ["val_balanced_accuracy"]
    assert read_json(tmp_path / "result.json")["best"] == result["best"]
    assert result["objective"] == result["best"]["val_balanced_accuracy"]
    assert 0 <= result["best"]["finetuned_balanced_accuracy"] <= 1 and "finetuned_loss" in result["best"]
    rows = rows_of(tmp_path / "history.csv")
    assert "val_balanced_accuracy" in rows[0] and "val_acc" not in rows[0]
    best = max(rows, key=lambda r: fitness_key({**r, "feasible": True, "params": int(r["params"])},
                                               "val_balanced_accuracy"))  # fmt: skip
    assert [int(w) for w in best["arch"].split("-")] == result["finetune"]["finalists"][0]["arch"]


@pytest.mark.parametrize(
    "name, task, classes, offered",
    [
        ("r2", Task(), 3, ["accuracy", "balanced_accuracy", "log_loss"]),
        ("roc_auc", Task(), 10, ["accuracy", "balanced_accuracy", "log_loss"]),
        ("r2", Task(), 2, ["accuracy", "balanced_accuracy", "f1", "log_loss", "roc_auc"]),
        ("accuracy", REG_TASK, 1, ["mae", "r2", "rmse"]),
    ],
    ids=["r2 on 3 classes", "roc_auc on 10", "r2 on 2", "accuracy on a regression"],
)
def test_a_refused_metric_offers_only_metrics_this_data_takes(name, task, classes, offered):
    """Issue 39 N12: no f1 or roc_auc offered to 3 classes; every metric offered is then accepted."""
    from supernet.core.metrics import resolve_metric
    from supernet.errors import UsageError

    with pytest.raises(UsageError) as err:
        resolve_metric(name, task, classes)
    assert str(err.value).endswith(f": use one of {offered}")
    for other in offered:
        assert resolve_metric(other, task, classes).name == other
