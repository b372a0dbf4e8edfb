"""Fidelity harness: ranking metrics, stratified sampling, stand-alone training and its cache, the
tau callback, the stand-alone search evaluator, and ``supernet-rank`` end to end.

    .venv/bin/python -m pytest tests/test_fidelity.py -q            # everything (about 30 s)
    .venv/bin/python -m pytest tests/test_fidelity.py -q -m "not slow"
"""

from __future__ import annotations

import copy
import csv
import math
import random
import re
import time

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from supernet.commands import rank as rank_job
from supernet.core.space import SearchSpace
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.evaluation import standalone
from supernet.evaluation.standalone import Recipe, StandaloneCache, data_identity, train_standalone
from supernet.evaluation.standalone_search import StandaloneEvaluator, TimeBudget, check_standalone_config
from supernet.fidelity import metrics as fidelity
from supernet.fidelity.fmt import signed
from supernet.fidelity.metrics import (
    band_of,
    bootstrap_intervals,
    fidelity_report,
    kendall_tau,
    ranking_metrics,
    regret,
    spearman_rho,
    stratified_sample,
    top_k_overlap,
    with_size,
)
from supernet.train.callbacks import KendallTauCallback, tau_callback_from_csv
from supernet.train.module import SupernetModule, TensorDataModule

from conftest import make_cfg, read_json, run_cli

MNIST_LIKE = SearchSpace(in_features=784, num_classes=10, depth_min=1, depth_max=4, width_min=16, width_max=1024)


@pytest.fixture(scope="module")
def digits():
    return load_data({"name": "digits"})


@pytest.fixture(scope="module")
def digits_space(digits):
    return SearchSpace(digits.in_features, digits.num_classes, 1, 2, 8, 128, 8)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls: one thread is faster, and the CI box is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------- metrics
def test_identical_ranking_is_perfect():
    x = [0.1, 0.5, 0.3, 0.9, 0.7, 0.2, 0.8, 0.4, 0.6, 0.05, 0.95, 0.35]
    m = ranking_metrics(x, x)
    assert m["kendall_tau"] == pytest.approx(1.0)
    assert m["spearman_rho"] == pytest.approx(1.0)
    assert m["top5_overlap"] == 1.0 and m["top10_overlap"] == 1.0
    assert m["regret"] == 0.0


def test_reversed_ranking_is_minus_one():
    x = [float(i) for i in range(12)]
    y = [-v for v in x]
    assert kendall_tau(x, y) == pytest.approx(-1.0)
    assert spearman_rho(x, y) == pytest.approx(-1.0)
    assert top_k_overlap(x, y, 5) == 0.0
    assert regret(x, y) == pytest.approx(11.0)  # picked the worst


def test_known_values():
    # One discordant pair out of 6: tau = (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert top_k_overlap([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5], 2) == 1.0
    assert top_k_overlap([1, 2, 3], [3, 2, 1], 5) is None  # k >= n says nothing
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None  # a constant predictor has no ranking
    assert regret([0.9, 0.1, 0.5], [0.7, 0.8, 0.75]) == pytest.approx(0.1)


def test_report_flags_size_only_and_noise():
    rng = random.Random(0)
    archs = stratified_sample(MNIST_LIKE, 30, seed=0)
    params = [MNIST_LIKE.params(a) for a in archs]
    # Stand-alone accuracy: rises with size up to 400k params, then flat (pure seed noise).
    truth = [min(p, 400_000) / 400_000 * 0.1 + 0.8 for p in params]
    seed0 = [t + rng.gauss(0, 0.01) for t in truth]
    seed1 = [t + rng.gauss(0, 0.01) for t in truth]
    inherited = [float(p) for p in params]  # a "supernet" that knows only size
    report = fidelity_report(archs, params, inherited, {0: seed0, 1: seed1})
    a = report["all"]
    assert a["kendall_tau"] == pytest.approx(a["params_tau"])
    assert -1 <= a["noise_tau"] <= 1
    assert "the supernet ranks no better than size" in report["verdict"]
    assert report["bands"]["large"]["reliability"] < 0.5
    assert "large (>= 400k): stand-alone accuracies within seed noise" in report["verdict"]
    assert sum(b["n"] for b in report["bands"].values()) == 30
    assert ("parameter count alone ranks at the noise ceiling" in report["verdict"]) == (
        a["params_tau"] >= a["noise_tau"] - fidelity.MARGIN
    )


def test_verdict_says_when_size_is_at_the_noise_ceiling():
    rng = random.Random(1)
    archs = stratified_sample(MNIST_LIKE, 30, seed=0)
    params = [MNIST_LIKE.params(a) for a in archs]
    truth = [0.8 + 0.1 * i / 30 for i in sorted(range(30), key=lambda i: params[i])]
    truth = [truth[sorted(range(30), key=lambda i: params[i]).index(i)] for i in range(30)]  # monotone in size
    noisy = {s: [t + rng.gauss(0, 0.004) for t in truth] for s in (0, 1)}
    report = fidelity_report(archs, params, [rng.random() for _ in archs], noisy)
    assert report["all"]["params_tau"] >= report["all"]["noise_tau"]
    assert "parameter count alone ranks at the noise ceiling" in report["verdict"]
    assert "compare within the bands" in report["verdict"]


def test_resampled_tau_equals_scipy_with_ties_and_repeats():
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=25).astype(float)  # many ties
    y = x + rng.normal(0, 2, size=25)
    y[:5] = y[0]  # ties in y too
    idx = rng.integers(0, 25, size=(4, 25))  # resamples: repeated archs are ties in both
    want = [stats.kendalltau(x[i], y[i]).statistic for i in idx]
    tau = fidelity._ResampledTau(x, y)
    assert tau(idx) == pytest.approx(want, abs=1e-12)
    assert tau(idx.T, axis=0) == pytest.approx(want, abs=1e-12)
    assert tau(np.arange(25)) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_bootstrap_intervals_cover_the_estimate_and_tell_better_from_same():
    rng = random.Random(0)
    target = [0.8 + 0.1 * i / 40 + rng.gauss(0, 0.004) for i in range(40)]
    size = [i + rng.gauss(0, 12) for i in range(40)]  # knows the trend, not the order within it
    perfect = list(target)
    better = bootstrap_intervals(perfect, size, target, resamples=500, seed=0)
    lo, hi = better["kendall_tau_ci"]
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    gap_lo, gap_hi = better["params_gap_ci"]
    tau_size = kendall_tau(size, target)
    assert 0 < gap_lo <= 1 - tau_size <= gap_hi  # the gap's interval holds the gap and excludes 0
    # A predictor that is the size ranking itself: the gap is 0 in every resample.
    same = bootstrap_intervals(size, size, target, resamples=500, seed=0)
    assert same["params_gap_ci"] == [0.0, 0.0]
    assert same["kendall_tau_ci"][0] < tau_size < same["kendall_tau_ci"][1]
    assert bootstrap_intervals(size, size, target, resamples=500, seed=0) == same  # seeded
    assert bootstrap_intervals(size, size, target, resamples=500, seed=1) != same
    assert bootstrap_intervals(size[:2], size[:2], target[:2]) == {}
    assert signed(-0.001) == "+0.00" and signed(-0.006) == "-0.01"
    assert bootstrap_intervals(size, size, target, resamples=0) == {}


def test_verdict_judges_size_by_the_interval_of_the_difference():
    rng = random.Random(2)
    archs = stratified_sample(MNIST_LIKE, 40, seed=0)
    params = [MNIST_LIKE.params(a) for a in archs]
    # The truth is size plus a second factor (depth) that a good supernet sees and size cannot.
    truth = [0.8 + 0.01 * math.log(p) - 0.02 * len(a) for a, p in zip(archs, params, strict=True)]
    seeds = {s: [t + rng.gauss(0, 0.001) for t in truth] for s in (0, 1)}
    good = fidelity_report(archs, params, truth, seeds, bootstrap=500)
    assert good["all"]["params_gap_ci"][0] > 0
    assert "the supernet ranks better than size alone" in good["verdict"]
    assert "95% CI +" in good["verdict"]
    reversed_ = fidelity_report(archs, params, [-t for t in truth], seeds, bootstrap=500)
    assert reversed_["all"]["params_gap_ci"][1] < 0
    assert "ranks worse than parameter count alone" in reversed_["verdict"]
    # Without resamples: no intervals, and the verdict falls back to the fixed margin.
    plain = fidelity_report(archs, params, truth, seeds, bootstrap=0)
    assert plain["all"]["kendall_tau_ci"] is None and "CI" not in plain["verdict"]
    assert plain["all"]["params_gap"] == pytest.approx(good["all"]["params_gap"])


def test_with_size_is_the_mean_of_the_two_ranks():
    assert with_size([0.86, 0.88, 0.87], [50_000, 400_000, 1_000_000]) == [1.0, 2.5, 2.5]
    assert with_size([0.5, 0.5], [10, 20]) == [1.25, 1.75]  # tied scores share their rank
    with pytest.raises(ValueError, match="same length"):
        with_size([0.1, 0.2], [10])


def test_with_size_beats_both_when_the_score_knows_the_order_within_a_size_but_not_across():
    """The Fashion-MNIST pattern: the score orders nets of similar size right, but a few outliers
    (scored far too low) break its order across sizes; size alone knows the trend, not the order
    within it. Together they rank better than either."""
    rng = random.Random(0)
    n = 60
    params = [int(10_000 * 2 ** (i / 6)) for i in range(n)]  # 10k to ~10M
    within = [rng.gauss(0, 1) for _ in range(n)]
    truth = [math.log(p) + 2.0 * w for p, w in zip(params, within, strict=True)]  # size trend + a shape effect
    score = [w + rng.gauss(0, 0.3) for w in within]  # knows the shape effect, not the trend
    for i in range(0, n, 5):
        score[i] -= 5  # the outliers: far below where they belong
    tau_size, tau_score, tau_both = (kendall_tau(x, truth) for x in (params, score, with_size(score, params)))
    assert tau_both > tau_size + 0.05 and tau_both > tau_score + 0.05, (tau_size, tau_score, tau_both)


# ---------------------------------------------------------------------------- sampling
def test_stratified_sample_covers_bands():
    archs = stratified_sample(MNIST_LIKE, 30, seed=0)
    assert len(set(archs)) == 30 and all(MNIST_LIKE.contains(a) for a in archs)
    bands = [band_of(MNIST_LIKE.params(a)) for a in archs]
    assert min(bands.count(b) for b in ("small", "medium", "large")) >= 5
    assert len({len(a) for a in archs}) >= 3  # shallow and deep nets alike
    assert stratified_sample(MNIST_LIKE, 30, seed=0) == archs
    assert stratified_sample(MNIST_LIKE, 30, seed=1) != archs


def test_stratified_sample_tiny_space_and_bad_n():
    tiny = SearchSpace(in_features=4, num_classes=2, depth_min=1, depth_max=2, width_min=1, width_max=2, width_step=1)
    assert len(set(stratified_sample(tiny, tiny.size(), seed=0))) == tiny.size()
    with pytest.raises(UsageError, match="rank.n=7"):
        stratified_sample(tiny, 7, seed=0)


# ---------------------------------------------------------------------------- stand-alone
def test_recipe_that_cannot_train():
    with pytest.raises(UsageError, match=r"rank.epochs=0 must be an integer >= 1"):
        Recipe.from_cfg({"epochs": 0})
    with pytest.raises(UsageError, match=r"search.standalone.lr=0"):
        Recipe.from_cfg({"epochs": 1, "lr": 0}, "search.standalone")
    assert Recipe.from_cfg({"epochs": 2, "batch_size": None}, batch_size_default=16).batch_size == 16
    assert Recipe(epochs=2).digest() != Recipe(epochs=3).digest()


def test_standalone_beats_chance_and_cache_avoids_retraining(digits, digits_space, tmp_path):
    archs = [(8,), (64,), (128, 32)]
    recipe = Recipe(epochs=3, batch_size=64, lr=3e-3)
    cache = StandaloneCache(tmp_path / "cache.json")
    first = train_standalone(archs, digits_space, digits, recipe, [0, 1], cache=cache)
    assert cache.misses == 6 and cache.hits == 0
    assert all(acc > 0.25 for acc in first.values())  # chance is 0.1 on 10 classes
    assert first[((128, 32), 0)] > 0.8

    again = StandaloneCache(tmp_path / "cache.json")  # a later run reads the file
    second = train_standalone(archs, digits_space, digits, recipe, [0, 1], cache=again)
    assert again.misses == 0 and again.hits == 6
    assert second == first
    # A new recipe is a new key: trained again.
    train_standalone(archs[:1], digits_space, digits, Recipe(epochs=1, batch_size=64), [0], cache=again)
    assert again.misses == 1


def test_standalone_is_deterministic_and_independent_of_group(digits, digits_space):
    recipe = Recipe(epochs=1, batch_size=64)
    group = train_standalone([(16,), (48, 8), (96,)], digits_space, digits, recipe, [3])
    alone = train_standalone([(48, 8)], digits_space, digits, recipe, [3])
    assert alone[((48, 8), 3)] == group[((48, 8), 3)]


def test_padded_stack_trains_like_the_loop(digits, digits_space):
    archs = [(16,), (40,), (24, 8), (64, 32), (8, 128)]  # two depths, mixed widths: real padding
    recipe = Recipe(epochs=1, batch_size=64)
    loop = train_standalone(archs, digits_space, digits, recipe, [0], padded=False)
    stacked = train_standalone(archs, digits_space, digits, recipe, [0], padded=True)
    # Same init, same batches, same maths; only the matmuls' summation order differs.
    assert max(abs(loop[k] - stacked[k]) for k in loop) <= 2 / len(digits.val_y)


def test_cpu_groups_are_small_enough_to_keep_progress():
    """On a CPU a killed rank run keeps whole groups only: the 50 archs `supernet-rank` draws from
    the Fashion-MNIST space must not be one group, and no group may exceed the bound unless it is
    a single net."""
    assert standalone.group_bound(torch.device("cpu")) == standalone.CPU_GROUP_PARAMS
    assert standalone.group_bound(torch.device("cuda")) == standalone.GROUP_PARAMS
    archs = stratified_sample(MNIST_LIKE, 50, seed=0)
    groups = standalone._groups(archs, MNIST_LIKE, standalone.CPU_GROUP_PARAMS)
    assert sorted(a for g in groups for a in g) == sorted(archs)
    assert len(groups) >= 10
    assert all(len(g) == 1 or sum(map(MNIST_LIKE.params, g)) <= standalone.CPU_GROUP_PARAMS for g in groups)
    assert len(standalone._groups(archs, MNIST_LIKE, standalone.GROUP_PARAMS)) < len(groups)


def test_data_identity_survives_float_noise_but_not_a_new_split(digits):
    """Cached stand-alone results move between machines: CPU and GPU normalise to different last
    bits, which must not change the key; a different split, labels or normalisation must."""
    key = data_identity(digits)
    noisy = copy.copy(digits)
    noisy.train_x = digits.train_x * (1 + 1e-7) + 1e-9
    assert data_identity(noisy) == key
    other_split = load_data({"name": "digits", "split_seed": 1})
    assert data_identity(other_split) != key
    renormalised = copy.copy(digits)
    renormalised.std = [s * 1.01 for s in digits.std]
    assert data_identity(renormalised) != key


def test_corrupt_cache_is_a_usage_error(tmp_path):
    bad = tmp_path / "cache.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="rank.cache=.*is not a stand-alone cache"):
        StandaloneCache(bad)


# ---------------------------------------------------------------------------- search=standalone
def test_standalone_evaluator_and_time_budget(digits, digits_space):
    settings = check_standalone_config(
        {"time_budget_s": 60, "standalone": {"epochs": 1, "batch_size": None, "cache": None}}, {"batch_size": 64}
    )
    assert settings.recipe.batch_size == 64 and settings.cache is None
    budget = TimeBudget(settings.time_budget_s)
    ev = StandaloneEvaluator(digits_space, digits, settings.recipe, seed=0, time_budget=budget)
    records = ev.evaluate([(32,), (64, 16)])
    assert [set(r) for r in records] == [{"val_acc", "params", "flops"}] * 2
    assert records[1]["params"] == digits_space.params((64, 16))
    ev.evaluate([(32,), (64, 16), (8,)])
    assert ev.n_trained == 3  # the repeats came from the cache
    assert budget() is None and 0 < budget.remaining_s <= 60
    short = TimeBudget(0.01).start()
    time.sleep(0.02)
    assert short() == "time_budget"
    with pytest.raises(UsageError, match="search.time_budget_s=0"):
        check_standalone_config({"time_budget_s": 0})


# ---------------------------------------------------------------------------- tau callback
def test_kendall_tau_callback_logs(digits, tmp_path):
    space = SearchSpace(digits.in_features, digits.num_classes, 1, 2, 8, 64, 8)
    archs = [(8,), (16,), (32, 8), (64,), (64, 64)]
    path = tmp_path / "rank.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "params", "inherited_acc", "standalone_acc_mean"])
        for i, a in enumerate(archs):
            w.writerow(["-".join(map(str, a)), space.params(a), 0.5, 0.8 + 0.01 * i])
    callback = tau_callback_from_csv(path, every_n_epochs=1)
    module = SupernetModule(
        space=space.to_dict(), data_info=digits.info(), sampler={"name": "sandwich"},
        optim={"name": "adamw", "lr": 3e-3}, seed=0,
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback],
    )  # fmt: skip
    trainer.fit(module, datamodule=TensorDataModule(digits, batch_size=128))
    assert [epoch for epoch, _ in callback.history] == [0, 1]
    assert -1.0 <= float(trainer.callback_metrics["val/kendall_tau"]) <= 1.0
    with pytest.raises(UsageError, match=">= 3 archs"):
        KendallTauCallback(1, archs[:2], [0.1, 0.2])


# ---------------------------------------------------------------------------- supernet-rank
@pytest.mark.slow
def test_rank_end_to_end(digits_ckpt, tmp_path):
    cache = tmp_path / "cache.json"
    args = [f"ckpt_path={digits_ckpt}", "rank.n=6", "rank.epochs=1", "rank.seeds=2", f"rank.cache={cache}"]
    env = {"OMP_NUM_THREADS": "1"}
    proc = run_cli("supernet-rank", *args, f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    for name in ("rank.json", "rank.csv", "rank.png", "result.json"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    doc = read_json(run / "rank.json")
    for key in ("kendall_tau", "spearman_rho", "params_tau", "noise_tau"):
        assert -1.0 <= doc["all"][key] <= 1.0, key
    assert doc["timing"]["standalone_trained"] == 12 and "verdict" in doc
    assert doc["rank"]["bootstrap"] == 2000 and doc["all"]["params_gap"] is not None
    assert doc["all"]["kendall_tau_ci"] is None  # 6 archs: too few for an interval
    assert doc["verdict"] in proc.stdout and "supernet-report" in proc.stdout  # the verdict, then what to do next
    with open(run / "rank.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {"standalone_acc_seed0", "standalone_acc_seed1", "standalone_acc_mean"} <= set(rows[0])
    assert all(0.0 <= float(r["inherited_acc"]) <= 1.0 for r in rows)
    # Inherited acc and size together: a full report of its own, recomputed from the rows.
    both = with_size([float(r["inherited_acc"]) for r in rows], [int(r["params"]) for r in rows])
    target = [float(r["standalone_acc_mean"]) for r in rows]
    assert doc["with_size"]["all"]["kendall_tau"] == pytest.approx(kendall_tau(both, target))
    assert doc["with_size"]["verdict"].startswith("ranked by inherited acc + size (mean rank): ")
    assert doc["with_size"]["verdict"] in proc.stdout

    # A rerun (in-process: the job the command runs) reuses every stand-alone result.
    result = rank_job.run(make_cfg("rank", [*args, "logger=none"]), tmp_path / "again")
    assert result["timing"]["standalone_trained"] == 0 and result["timing"]["standalone_cached"] == 12
    assert result["objective"] == doc["all"]["kendall_tau"]
    assert result["with_size"]["kendall_tau"] == doc["with_size"]["all"]["kendall_tau"]
    assert read_json(tmp_path / "again" / "result.json")["status"] == "ok"


@pytest.mark.slow
def test_rank_bad_input_exits_2(digits_ckpt, tmp_path):
    proc = run_cli("supernet-rank", f"ckpt_path={digits_ckpt}", "rank.epochs=0", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines == ["error: rank.epochs=0 must be an integer >= 1 (a recipe with no steps cannot train)"]
    assert not (tmp_path / "rank.json").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("rank.n=2", "rank.n=2 must be an integer >= 3"),
        ("rank.epochs=0", "rank.epochs=0 must be an integer >= 1"),
        ("rank.lr=-1", "rank.lr=-1 must be a number > 0"),
        ("rank.bands=[400000,100000]", "must be positive and increasing"),
        ("rank.bootstrap=-1", "rank.bootstrap=-1 must be an integer >= 0"),
        ("rank.bootstrap=10", "rank.bootstrap=10 is too few resamples for a 95% interval: use 0 (no intervals) or"),
        ("ckpt_path=null", "ckpt_path is required"),
    ],
)
def test_rank_bad_input_before_any_work(tmp_path, override, message):
    # The checkpoint does not exist: these errors come before it is even read.
    cfg = make_cfg("rank", [f"ckpt_path={tmp_path / 'missing.ckpt'}", override, "rank.cache=null", "logger=none"])
    with pytest.raises(UsageError, match=re.escape(message)):
        rank_job.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_rank_n_above_space_size(digits_ckpt, tmp_path):
    cfg = make_cfg("rank", [f"ckpt_path={digits_ckpt}", "rank.n=100000000", "rank.cache=null", "logger=none"])
    with pytest.raises(UsageError, match=r"rank.n=100000000 is above the \d+ archs in the space"):
        rank_job.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_report_of_a_rank_sweep_groups_supernets_by_their_training_config(tmp_path):
    """Two supernets per training config, ranked by a rank sweep: supernet-report groups the rank
    jobs by the config of the run that trained each supernet, its seed being the replicate."""
    trained = tmp_path / "train"
    proc = run_cli(
        "supernet-train",
        "-m",
        "trainer.max_epochs=1",
        "sampler=uniform,sandwich",
        "seed=0,1",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={trained}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpts = ",".join(str(trained / str(i)) for i in range(4))
    sweep = tmp_path / "rank"
    args = ["rank.n=8", "rank.epochs=1", "rank.seeds=1", f"rank.cache={tmp_path / 'cache.json'}", "logger=none"]
    proc = run_cli("supernet-rank", "-m", f"ckpt_path={ckpts}", *args, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    taus = {i: read_json(sweep / str(i) / "result.json")["objective"] for i in range(4)}

    report = run_cli("supernet-report", str(sweep))
    assert report.returncode == 0, report.stderr
    text = (sweep / "report.md").read_text()
    assert "## Ranking fidelity per configuration" in text
    groups = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| sampler=")}
    assert set(groups) == {"sampler=uniform", "sampler=sandwich"}
    assert all(" | 2 | " in line for line in groups.values())  # both seeds of each config
    with open(sweep / "report.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["job"] in {"0", "1", "2", "3"}]
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {int(r["job"]): float(r["tau"]) for r in rows} == pytest.approx(taus)
    # Each job's difference to size, with the interval its rank.json holds (8 archs: just enough).
    gaps = {i: read_json(sweep / str(i) / "rank.json")["all"] for i in range(4)}
    for r in rows:
        gap = gaps[int(r["job"])]
        assert float(r["size_gap"]) == pytest.approx(gap["params_gap"])
        assert [float(r["size_gap_low"]), float(r["size_gap_high"])] == pytest.approx(gap["params_gap_ci"])
        assert f"{signed(gap['params_gap'], 3)} [{signed(gap['params_gap_ci'][0], 3)}, " in text
    assert (sweep / "report.png").stat().st_size > 1000
    assert not (sweep / "pooled.json").exists()  # one sample per supernet: nothing to pool
    assert "## Pooled over samples" not in text
