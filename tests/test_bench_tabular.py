"""``supernet-bench suite=tabular``: real runs of the quick suite (files, records, sane figures),
a set whose package is missing skipped with one line, and the table's means and wins.

    .venv/bin/python -m pytest tests/test_bench_tabular.py -q
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from supernet.commands.bench_tabular import in_group, run_tabular, tabular_md
from supernet.commands.compose import compose_config
from supernet.data.benchmark_sets import BENCHMARK_SETS, group_balance, missing_package
from supernet.errors import UsageError

from conftest import read_json, run_cli

METHODS = {"supernet", "mlp", "hgb"}


def test_quick_suite_writes_the_records_and_the_table(tmp_path):
    proc = run_cli("supernet-bench", "suite=tabular", "quick=true", "tabular.sets=[wdbc]", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = read_json(tmp_path / "tabular.json")
    # wdbc's 364 training rows: the small-table recipe bags the winner (supernet/data/table_recipe.py)
    assert {r["method"] for r in records} == {*METHODS, "supernet:winner"}
    assert {r["set"] for r in records} == {"wdbc"}
    for r in records:
        assert set(r) == {"set", "task", "rows", "method", "metric", "value", "val_value", "params", "wall_s"}
        assert r["metric"] == "accuracy" and r["rows"] == 569 and r["wall_s"] > 0
        assert r["value"] > 0.85  # the majority class is 0.63
    by_method = {r["method"]: r for r in records}
    assert by_method["supernet"]["params"] > 0 and by_method["hgb"]["params"] is None
    table = (tmp_path / "tabular.md").read_text()
    assert "| wdbc | 569 |" in table and "| mean accuracy |" in table and "| wins |" in table
    assert table in proc.stdout  # printed as written
    # wdbc's 364 training rows: the small-table recipe (supernet/data/table_recipe.py)
    retrained = read_json(tmp_path / "runs" / "wdbc" / "supernet" / "retrain" / "result.json")
    assert (retrained["init"], retrained["dropout"], retrained["label_smoothing"]) == ("inherited", 0.2, 0.0)
    run = read_json(tmp_path / "runs" / "wdbc" / "supernet" / "result.json")
    assert (run["ensemble"]["k"], run["ensemble"]["from"]) == (5, "folds")
    assert run["paths"]["model"] == run["paths"]["ensemble"]  # the run's model is the bagged one...
    assert by_method["supernet"]["value"] == round(run["ensemble"]["test_acc"], 5)  # ...and the record's
    assert by_method["supernet:winner"]["value"] == round(run["winner"]["test_acc"], 5)
    assert ", dropout 0.2):" in (tmp_path / "runs" / "wdbc" / "supernet" / "summary.md").read_text()
    assert "quantiles:" not in (tmp_path / "runs" / "wdbc" / "supernet" / "subnet" / "arch.yaml").read_text()


def test_a_set_without_its_package_is_skipped_in_one_line(tmp_path, monkeypatch, capsys):
    gone = dataclasses.replace(BENCHMARK_SETS["concrete"], path=str(tmp_path / "nowhere" / "Rdata"))
    monkeypatch.setitem(BENCHMARK_SETS, "concrete", gone)
    cfg = compose_config("bench", ["suite=tabular", "quick=true", "tabular.sets=[concrete]", "tabular.baselines=[hgb]"])
    result = run_tabular(cfg, tmp_path)
    assert result["records"] == 0 and read_json(tmp_path / "tabular.json") == []
    line = "skipped data.set=concrete: apt-get install r-cran-modeldata"
    assert line in capsys.readouterr().out and line in (tmp_path / "tabular.md").read_text()


@pytest.mark.skipif(missing_package(BENCHMARK_SETS["concrete"]) is not None, reason="r-cran-modeldata not installed")
def test_regression_set_is_scored_by_rmse(tmp_path):
    cfg = compose_config("bench", ["suite=tabular", "quick=true", "tabular.sets=[concrete]"])
    run_tabular(cfg, tmp_path)
    records = {r["method"]: r for r in read_json(tmp_path / "tabular.json")}
    assert set(records) == METHODS | {"supernet:winner"}  # the bag, and its winner alone
    for r in records.values():
        assert r["metric"] == "rmse" and 0 < r["value"] < 16.9  # below the targets' standard deviation
    # concrete's 659 training rows: a small regression gets the small-table recipe, as a
    # classification does (standard scaling, dropout 0.2, the bag)
    run = tmp_path / "runs" / "concrete" / "supernet"
    assert "quantiles:" not in (run / "subnet" / "arch.yaml").read_text()
    assert read_json(run / "retrain" / "result.json")["dropout"] == 0.2
    assert (read_json(run / "result.json")["ensemble"]["k"], records["supernet"]["task"]) == (5, "regression")


def record(set_name, task, method, value, wall=1.0):
    metric = "accuracy" if task == "classification" else "rmse"
    return dict(
        set=set_name,
        task=task,
        rows=100,
        method=method,
        metric=metric,
        value=value,
        val_value=value,
        params=None,
        wall_s=wall,
    )


def test_table_means_wins_and_relative_rmse():
    records = [
        record("a", "classification", "supernet", 0.90),
        record("a", "classification", "hgb", 0.80),
        record("b", "classification", "supernet", 0.70),
        record("b", "classification", "hgb", 0.75),
        record("c", "classification", "supernet", 0.60),
        record("c", "classification", "hgb", 0.50),
        record("r", "regression", "supernet", 2.0, wall=3.0),
        record("r", "regression", "hgb", 1.0, wall=0.5),
    ]
    table = tabular_md(records)
    assert "| mean accuracy | 0.7333 | 0.6833 |" in table
    assert "| wins | 2 | 1 |" in table and "| wins | 0 | 1 |" in table
    assert "| mean rmse / best | 2.000 | 1.000 |" in table
    assert "| r | 100 | 2.0000 (3.0 s) | **1.0000** (0.5 s) |" in table


def test_a_method_on_some_sets_only_says_how_many_its_mean_covers():
    records = [record(s, "classification", "supernet", v) for s, v in (("a", 0.9), ("b", 0.7))]
    records.append(record("a", "classification", "supernet:winner", 0.85))  # bagged on a only
    table = tabular_md(records)
    assert "| mean accuracy | 0.8000 | 0.8500 (1 of 2 sets) |" in table
    assert "| b | 100 | **0.7000** (1.0 s) | - |" in table


def test_repeated_splits_are_averaged_before_means_and_wins():
    records = [
        {**record("a", "classification", "supernet", 0.90, wall=2.0), "split": 0},
        {**record("a", "classification", "supernet", 0.70, wall=4.0), "split": 1},
        {**record("a", "classification", "hgb", 0.85), "split": 0},
        {**record("a", "classification", "hgb", 0.85), "split": 1},
    ]
    table = tabular_md(records)
    # supernet wins split 0 but its mean, 0.80, loses to hgb's 0.85.
    assert "| a | 100 | 0.8000 (3.0 s) | **0.8500** (1.0 s) |" in table
    assert "| wins | 0 | 1 |" in table and "mean over 2 test splits" in table


def test_repeated_splits_are_compared_pair_by_pair_with_a_standard_error():
    accuracy = {"supernet": [0.80, 0.90, 0.70], "mlp": [0.75, 0.90, 0.72], "hgb": [0.70, 0.80, 0.60]}
    rmse = {"supernet": [2.0, 4.0], "mlp": [4.0, 4.0]}
    records = [
        {**record("a", "classification", m, v), "split": i} for m, vs in accuracy.items() for i, v in enumerate(vs)
    ] + [{**record("r", "regression", m, v), "split": i} for m, vs in rmse.items() for i, v in enumerate(vs)]
    table = tabular_md(records)
    # Gains over mlp: +5, 0, -2 points: mean +1.00, standard error sqrt(13) / sqrt(3) = 2.08.
    assert "| a | +1.00 ± 2.08 (1 / 1 / 1) | +10.00 ± 0.00 (3 / 0 / 0) |" in table
    assert "| r | +25.00 ± 25.00 (1 / 1 / 0) | - |" in table  # RMSE 50% and 0% below mlp's


def test_repeats_run_each_method_on_other_test_splits(tmp_path):
    cfg = compose_config(
        "bench",
        ["suite=tabular", "quick=true", "tabular.sets=[wdbc]", "tabular.baselines=[hgb]", "tabular.repeats=2"]
        + ["tabular.overrides=['retrain.ensemble=1']"],  # the winner alone: the splits are what this checks
    )
    run_tabular(cfg, tmp_path)
    records = read_json(tmp_path / "tabular.json")
    runs = sorted((r["method"], r["split"]) for r in records)
    assert runs == [("hgb", 0), ("hgb", 1), ("supernet", 0), ("supernet", 1)]
    # Another test split is other rows: gradient boosting (deterministic) scores them differently.
    hgb = {r["split"]: r["value"] for r in records if r["method"] == "hgb"}
    assert hgb[0] != hgb[1]
    arch_yaml = (tmp_path / "runs" / "wdbc" / "split1" / "supernet" / "retrain" / "subnet" / "arch.yaml").read_text()
    assert "test_seed: 12346" in arch_yaml  # the export says which split it was tested on
    mean = (hgb[0] + hgb[1]) / 2
    assert f"{mean:.4f}" in (tmp_path / "tabular.md").read_text()


def test_a_variant_ranked_by_another_metric_is_recorded_in_accuracy_like_the_baselines(tmp_path):
    variants = "tabular.variants={logloss: ['search.metric=log_loss', 'retrain.ensemble=1']}"
    wanted = ["suite=tabular", "quick=true", "tabular.sets=[wdbc]", variants, "tabular.baselines=[]"]
    cfg = compose_config("bench", wanted)
    run_tabular(cfg, tmp_path)
    (record,) = read_json(tmp_path / "tabular.json")
    run = read_json(tmp_path / "runs" / "wdbc" / "logloss" / "result.json")
    assert run["metric"] == "log_loss" and "test_acc" not in run["winner"]  # the run ranked by log-loss...
    retrained = read_json(tmp_path / "runs" / "wdbc" / "logloss" / "retrain" / "result.json")
    assert record["metric"] == "accuracy"  # ...its record: accuracy, like the baselines'
    assert record["value"] == round(retrained["metrics"]["test_acc"], 5)
    assert record["value"] > 0.85


def test_first_split_runs_the_splits_after_it(tmp_path):
    sets = ["suite=tabular", "quick=true", "tabular.sets=[wdbc]", "tabular.variants={}", "tabular.baselines=[hgb]"]
    run_tabular(compose_config("bench", [*sets, "tabular.repeats=2"]), tmp_path / "first")
    run_tabular(compose_config("bench", [*sets, "tabular.repeats=1", "tabular.first_split=1"]), tmp_path / "second")
    first = {r["split"]: r["value"] for r in read_json(tmp_path / "first" / "tabular.json")}
    (second,) = read_json(tmp_path / "second" / "tabular.json")
    assert second["split"] == 1 and second["value"] == first[1]  # the same rows held out as the first run's split 1


def test_a_mistyped_variant_override_fails_before_any_set_trains(tmp_path):
    variants = "tabular.variants={good: [], bad: ['retrain.lr=0.1']}"
    cfg = compose_config("bench", ["suite=tabular", "quick=true", "tabular.sets=[wdbc,digits]", variants])
    with pytest.raises(UsageError, match=r"^tabular\.variants\.bad: Could not override 'retrain\.lr': no such key"):
        run_tabular(cfg, tmp_path)
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


# ---------------------------------------------------------------------------- the registry's groups
def test_list_prints_the_registry_one_json_object_a_set_and_the_balance(tmp_path):
    proc = run_cli("supernet-bench", "suite=tabular", "tabular.list=true", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["name"] for r in rows] == list(BENCHMARK_SETS) and len(rows) >= 40
    for r in rows:
        assert set(r) == {"name", "task", "rows", "group", "package", "installed"}
        bench = BENCHMARK_SETS[r["name"]]
        assert (r["task"], r["rows"], r["group"], r["package"]) == (bench.task, bench.rows, bench.group, bench.package)
        assert r["installed"] is (missing_package(bench) is None)
    assert next(r for r in rows if r["name"] == "wdbc")["installed"] is True  # scikit-learn's, always there
    counts = group_balance()["all"]
    assert f"all: confirm {counts['confirm']}, tune {counts['tune']}" in proc.stderr
    assert not (tmp_path / "tabular.json").exists()  # nothing ran


def test_group_selector_keeps_one_group_and_names_a_bad_one():
    assert BENCHMARK_SETS["wdbc"].group == "tune" and BENCHMARK_SETS["iris"].group == "confirm"
    assert in_group(["wdbc", "iris"], "confirm") == ["iris"]
    assert in_group(["wdbc", "iris"], "tune") == ["wdbc"]
    assert in_group(["wdbc", "iris"], "all") == ["wdbc", "iris"]
    everything = in_group(list(BENCHMARK_SETS), "confirm")
    assert everything and all(BENCHMARK_SETS[n].group == "confirm" for n in everything)
    with pytest.raises(UsageError, match=r"tabular.group='both' must be one of confirm, tune, all"):
        in_group(["wdbc"], "both")
    cfg = compose_config("bench", ["suite=tabular", "tabular.sets=[wdbc]", "tabular.group=confirm"])
    with pytest.raises(UsageError, match=r"tabular.group=confirm leaves none of the sets \['wdbc'\]"):
        run_tabular(cfg, None)


def test_report_shows_the_confirm_group_first_then_tune():
    records = [
        record("wdbc", "classification", "supernet", 0.95),  # tune: the recipe was chosen on it
        record("wdbc", "classification", "hgb", 0.96),
        record("iris", "classification", "supernet", 0.90),  # confirm
        record("iris", "classification", "hgb", 0.80),
        record("sonar", "classification", "supernet", 0.70),  # confirm
        record("sonar", "classification", "hgb", 0.80),
    ]
    table = tabular_md(records)
    confirm, tune = table.index("# confirm: sets no rule was chosen on (2 sets)"), table.index("# tune:")
    assert confirm < tune and "(1 sets)" in table[tune:]
    assert "| mean accuracy | 0.8000 | 0.8000 |" in table[confirm:tune]  # iris and sonar alone
    assert "| mean accuracy | 0.9500 | 0.9600 |" in table[tune:]
    assert "| wdbc |" in table[tune:] and "| wdbc |" not in table[:tune]


# ---------------------------------------------------------------------------- the optional peers
@pytest.mark.slow
def test_peers_run_on_the_same_split_with_their_wall_time(tmp_path):
    pytest.importorskip("pytabkit")
    pytest.importorskip("lightgbm")
    wanted = ["suite=tabular", "quick=true", "tabular.sets=[iris]", "tabular.variants={}", "tabular.baselines=[hgb]"]
    cfg = compose_config("bench", [*wanted, "tabular.peers=[realmlp,lightgbm]"])
    run_tabular(cfg, tmp_path)
    records = {r["method"]: r for r in read_json(tmp_path / "tabular.json")}
    assert list(records) == ["hgb", "realmlp", "lightgbm"]
    for r in records.values():
        assert r["set"] == "iris" and r["rows"] == 150 and r["wall_s"] > 0
        assert r["value"] > 0.8  # iris: 3 classes of 50, chance is 1/3
    assert "| iris | 150 |" in (tmp_path / "tabular.md").read_text()


def test_a_peer_without_its_package_is_skipped_in_one_line_and_auto_skips_it(tmp_path, monkeypatch, capsys):
    from supernet import baseline

    monkeypatch.setitem(baseline.PEER_PACKAGES, "realmlp", "no_such_package_41")
    wanted = ["suite=tabular", "quick=true", "tabular.sets=[iris]", "tabular.variants={}", "tabular.baselines=[]"]
    result = run_tabular(compose_config("bench", [*wanted, "tabular.peers=[realmlp]"]), tmp_path)
    line = "skipped peer realmlp: pip install no_such_package_41"
    assert result["records"] == 0 and line in capsys.readouterr().out and line in (tmp_path / "tabular.md").read_text()
    with pytest.raises(UsageError, match=r"tabular.peers names \['rf'\]; choose from \['realmlp', 'lightgbm'\]"):
        run_tabular(compose_config("bench", [*wanted, "tabular.peers=[rf]"]), tmp_path)
