"""Multi-fidelity scoring (``search.fidelity=subset``) on real tiny supernets.

    .venv/bin/python -m pytest tests/test_search_fidelity.py -q

The supernets are real `SuperMLP`s with random weights, their labels those of the largest net
with a fifth of them flipped, so that accuracies on a subset and on the whole split differ.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from supernet import SearchSpace, SuperMLP
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.search import SearchHooks, run_search
from supernet.search.subset import stratified_rows

from conftest import run_cli

SPACE = SearchSpace(in_features=16, num_classes=4, depth_min=1, depth_max=3, width_min=8, width_max=48, width_step=8)
ROWS = 400
LEGACY_CKPT = Path(__file__).resolve().parent / "fixtures" / "legacy" / "supernet.ckpt"  # digits: 287 val rows
SMALL_SEARCH = ["search.budget=20", "search.population=10", "search.finetune.top=0", "logger=none"]
SMALL = {
    "evolution": {"population": 12},
    "random": {"batch": 12},
    "bayes": {"batch": 6, "startup_trials": 6},
    "rl": {"batch": 8},
}


def evaluator(norm: str = "none", latency: dict | None = None) -> InheritedEvaluator:
    torch.manual_seed(0)
    net = SuperMLP(SPACE, norm=norm).calibrate(torch.randn(256, 16)).eval()
    x = torch.randn(ROWS, 16)
    with torch.no_grad():
        y = net(x, SPACE.largest()).argmax(1)
    flip = torch.rand(ROWS) < 0.2
    y[flip] = torch.randint(0, 4, (int(flip.sum()),))
    return InheritedEvaluator(net, SPACE, x, y, latency=latency)


def cfg_for(strategy: str, budget: int = 36, fidelity: str = "subset", **over) -> dict:
    cfg = {"strategy": strategy, "budget": budget, "fidelity": fidelity, "finetune": {"top": 0}}
    return {**cfg, **SMALL[strategy], "subset": {"size": 0.3, "top": 0.25, "margin": 0.01}, **over}


def search(cfg, out_dir, seed=0, resume=False, ev=None, **hooks):
    hooks.setdefault("plot", False)
    return run_search(SPACE, ev or evaluator(), cfg, out_dir, seed, resume, SearchHooks(**hooks))


def rows_of(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


class Stop(Exception):
    pass


# ---------------------------------------------------------------------------- the subset
def test_subset_is_stratified_seeded_and_saved(tmp_path):
    labels = [0] * 500 + [1] * 300 + [2] * 150 + [3] * 50
    rows = stratified_rows(labels, 100, seed=3)
    assert rows == sorted(set(rows)) and len(rows) == 100
    assert Counter(labels[i] for i in rows) == {0: 50, 1: 30, 2: 15, 3: 5}  # the split's proportions
    assert rows == stratified_rows(labels, 100, seed=3) != stratified_rows(labels, 100, seed=4)
    odd = Counter(0 if i < 7 else 1 for i in stratified_rows([0] * 7 + [1] * 3, 5, seed=0))
    assert sum(odd.values()) == 5 and abs(odd[0] - 3.5) < 1 and abs(odd[1] - 1.5) < 1  # within one of its quota

    ev = evaluator()
    search(cfg_for("random", 24), tmp_path, seed=5, ev=ev)
    state = json.loads((tmp_path / "search_state.json").read_text())
    assert state["subset"] == stratified_rows(ev.labels(), round(0.3 * ROWS), seed=5)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_subset_evaluator_scores_those_rows_with_the_same_calibration(norm):
    ev = evaluator(norm, latency={"batch_size": 2, "warmup": 0, "repeats": 1})
    rows = [0, 3, 7, 50, 51, 399]
    archs = [SPACE.smallest(), SPACE.largest(), (16, 40), (48, 8, 24)]
    sub = ev.subset(rows)
    alone = InheritedEvaluator(ev.model, SPACE, ev.x[rows], ev.y[rows])
    assert [r["val_acc"] for r in sub.evaluate(archs)] == [r["val_acc"] for r in alone.evaluate(archs)]
    assert ev.evaluate(archs)[2]["latency_ms"] == sub.evaluate(archs)[2]["latency_ms"]  # measured once
    assert sub.model is ev.model


# ---------------------------------------------------------------------------- the search
@pytest.mark.parametrize("strategy", ["evolution", "random", "bayes", "rl"])
@pytest.mark.parametrize("objectives", [["val_acc"], ["val_acc", "params"]])
def test_only_full_split_scores_decide(strategy, objectives, tmp_path):
    result = search(cfg_for(strategy, objectives=objectives), tmp_path)
    history = rows_of(tmp_path / "history.csv")
    assert len(history) == 36 and all(r["val_acc_subset"] for r in history)
    promoted = [r for r in history if r["val_acc"]]
    assert 0 < len(promoted) < len(history)
    for generation in {r["generation"] for r in history}:
        batch = [r for r in history if r["generation"] == generation]
        assert sum(bool(r["val_acc"]) for r in batch) >= math.ceil(0.25 * len(batch))
    assert result["best"]["val_acc"] is not None and result["best"]["val_acc_subset"] is not None
    assert result["pareto"] and all(r["val_acc"] is not None for r in result["pareto"])
    if objectives == ["val_acc"]:
        assert result["best"]["val_acc"] == max(float(r["val_acc"]) for r in promoted)
    assert result["fidelity"]["rows"] == round(0.3 * ROWS)


def test_a_latency_budget_and_the_finalists_see_full_scores(tmp_path):
    cfg = cfg_for(
        "evolution", objectives=["val_acc", "latency_ms"], constraints={"max_latency_ms": 1e3},
        finetune={"top": 3, "steps": 1},
        latency={"batch_size": 1, "repeats": 1, "warmup": 0},
    )  # fmt: skip
    ev = evaluator(latency=cfg["latency"])
    finalists = []

    def rescore(archs):
        finalists.extend(archs)
        return [{"acc": 0.5, "loss": float(sum(a))} for a in archs]

    result = search(cfg, tmp_path, ev=ev, rescore=rescore)
    by_arch = {tuple(int(w) for w in r["arch"].split("-")): r for r in rows_of(tmp_path / "history.csv")}
    assert finalists and all(by_arch[a]["val_acc"] for a in finalists)
    assert all(r["latency_ms"] for r in by_arch.values())
    assert result["best"]["val_acc"] is not None


def test_resume_of_a_subset_search_is_exact(tmp_path):
    cfg = cfg_for("evolution", 48)
    full = search(cfg, tmp_path / "full")

    def stop(generation):
        if generation == 1:
            raise Stop

    with pytest.raises(Stop):
        search(cfg, tmp_path / "cut", on_generation=stop)
    resumed = search(cfg, tmp_path / "cut", resume=True)
    for name in ("history.csv", "pareto.json"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "full" / name).read_text()
    assert resumed["best"] == full["best"]


def test_full_fidelity_is_the_search_without_the_setting(tmp_path):
    plain = cfg_for("evolution", fidelity="full")
    del plain["fidelity"], plain["subset"]
    search(plain, tmp_path / "plain")
    search(cfg_for("evolution", fidelity="full"), tmp_path / "full")
    assert (tmp_path / "full" / "history.csv").read_text() == (tmp_path / "plain" / "history.csv").read_text()
    assert "val_acc_subset" not in (tmp_path / "full" / "history.csv").read_text()
    state = json.loads((tmp_path / "full" / "search_state.json").read_text())
    assert "subset" not in state and "fidelity" not in state["fingerprint"]["search"]
    search(plain, tmp_path / "full", resume=True)  # a state that names no fidelity resumes as full


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["search.fidelity=subset", "search.subset.size=300"], "size=300 is larger than the validation split (287"),
        (["search.fidelity=subset", "search.subset.top=0"], "search.subset.top=0"),
        (["search.fidelity=subset", "search.subset.top=1.5"], "search.subset.top=1.5"),
        (["search.fidelity=subset", "search.subset.margin=0"], "search.subset.margin=0"),
        (["search.fidelity=subset", "search.subset.size=0"], "search.subset.size=0"),
        (["search.fidelity=coarse"], "search.fidelity='coarse'"),
        (["search=standalone", "search.fidelity=subset"], "search=standalone"),
        (["search=standalone", "search.subset.top=0.5"], "search=standalone"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragment):
    proc = run_cli("supernet-search", f"ckpt_path={LEGACY_CKPT}", *SMALL_SEARCH, *args, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
