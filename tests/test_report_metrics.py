"""``supernet-report`` over sweeps of pipeline and search jobs of any metric (supernet/fidelity/report.py).

The sweep dirs are written by hand, the way ``supernet`` and ``supernet-search`` write them
(result.json, history.csv, Hydra's .hydra/overrides.yaml): no training, fast.

.venv/bin/python -m pytest tests/test_report_metrics.py -q
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml

from supernet.fidelity.report import write_report
from supernet.fidelity.sweep import LOWER_IS_BETTER, best_so_far_curves, find_jobs, winner_fields
from supernet.files import write_json

# job -> (strategy, seed, the search's val figures in order, (val, test inherited, val retrained, test))
JOBS = {
    "0": ("random", 0, [0.9, 0.7, 0.8, 0.5], (0.5, 0.55, 0.45, 0.52)),
    "1": ("random", 1, [0.8, 0.85, 0.6, 0.65], (0.6, 0.62, 0.5, 0.58)),
    "2": ("evolution", 0, [0.95, 0.4, 0.45, 0.3], (0.3, 0.35, 0.28, 0.33)),
}


def _short(metric: str) -> str:
    return "acc" if metric == "accuracy" else metric


def _history(key: str, values: list[float]) -> str:
    """history.csv as `supernet.search.report.write_history` writes it (one infeasible arch)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["evaluation", "arch", "depth", "params", "flops", key, "generation", "feasible"])
    for i, v in enumerate(values):
        writer.writerow([i, "64-32", 2, 3000 + i, 6000 + i, v, i // 2, i != 1])
    return buf.getvalue()


def _write_job(job: Path, metric: str, strategy: str, seed: int, values: list[float], kind: str) -> None:
    """A job as `kind` (``pipeline``: ``supernet``, ``search``: ``supernet-search``) writes it."""
    (job / ".hydra").mkdir(parents=True)
    overrides = ["data=friedman", f"search.strategy={strategy}", f"seed={seed}"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    name = _short(metric)
    search_dir = job / "search" if kind == "pipeline" else job
    search_dir.mkdir(exist_ok=True)
    (search_dir / "history.csv").write_text(_history(f"val_{name}", values))
    search = {"strategy": strategy, "seed": seed, "metric": metric, "wall_time_s": 2.5 + seed}
    best = {"arch": [64, 32], "depth": 2, "params": 3000 + seed, "flops": 6000 + seed}
    write_json(search_dir / "result.json", {**search, "best": {**best, f"val_{name}": values[-1]}, "task": "search"})
    if kind != "pipeline":
        return
    val, test_inherited, val_retrained, test = JOBS[job.name][3]
    winner = {**best, "metric": metric, f"val_{name}": val, f"test_{name}_inherited": test_inherited}
    winner |= {f"val_{name}_retrained": val_retrained, f"test_{name}": test}
    result = {"task": "pipeline", "status": "ok", "seed": seed, "winner": winner, "wall_s": 10.0 + seed}
    write_json(job / "result.json", {**result, "metric": metric, "objective": val_retrained})


def make_sweep(root: Path, metric: str, kind: str = "pipeline") -> Path:
    """Three ok jobs (two seeds of random search, one of evolution) and a failed one."""
    for name, (strategy, seed, values, _) in JOBS.items():
        _write_job(root / name, metric, strategy, seed, values, kind)
    (root / "3" / ".hydra").mkdir(parents=True)
    overrides = ["data=friedman", "search.strategy=evolution", "seed=1"]
    (root / "3" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    write_json(root / "3" / "result.json", {"task": kind, "status": "failed", "error": "boom"})
    return root


# What supernet-report wrote for the accuracy sweep before it knew other metrics ({root}: the dir).
ACCURACY_MD = """\
# supernet report: {root}

4 jobs, 3 ok, 1 failed.

Shared by every job: `data=friedman`

## Per configuration (mean ± std over seeds)

| config | n | val acc (inherited) | test acc (retrained) | params | wall s |
|---|---|---|---|---|---|
| search.strategy=random | 2 | 0.5500 ± 0.0707 | 0.5500 ± 0.0424 | 3000 ± 1 | 10.5 ± 0.7 |
| search.strategy=evolution | 1 | 0.3000 ± 0.0000 | 0.3300 ± 0.0000 | 3000 ± 0 | 10.0 ± 0.0 |

## Jobs

| job | config | seed | status | arch | params | val acc | test acc | wall s |
|---|---|---|---|---|---|---|---|---|
| 0 | search.strategy=random | 0 | ok | 64-32 | 3000 | 0.5000 | 0.5200 | 10.0 |
| 1 | search.strategy=random | 1 | ok | 64-32 | 3001 | 0.6000 | 0.5800 | 11.0 |
| 2 | search.strategy=evolution | 0 | ok | 64-32 | 3000 | 0.3000 | 0.3300 | 10.0 |
| 3 | search.strategy=evolution | 1 | failed | - | - | - | - | - |

## Failed jobs

- `3` (search.strategy=evolution): boom

## Search strategies (best-so-far validation accuracy)

| strategy | runs | evaluations | final best (mean ± std) |
|---|---|---|---|
| evolution | 1 | 4 | 0.9500 ± 0.0000 |
| random | 2 | 4 | 0.8500 ± 0.0707 |

![best so far](report_search.png)

![winners](report.png)
"""
ACCURACY_CSV = """\
job,config,seed,status,arch,params,flops,val_acc,test_acc,wall_s,error
0,search.strategy=random,0,ok,64-32,3000,6000,0.5,0.52,10.0,
1,search.strategy=random,1,ok,64-32,3001,6001,0.6,0.58,11.0,
2,search.strategy=evolution,0,ok,64-32,3000,6000,0.3,0.33,10.0,
3,search.strategy=evolution,1,failed,,,,,,,boom

config,n,val_acc_mean,val_acc_std,test_acc_mean,test_acc_std,params_mean,params_std,wall_s_mean,wall_s_std
search.strategy=random,2,0.55,0.07071067811865474,0.55,0.04242640687119281,3000.5,0.7071067811865476,10.5,0.7071067811865476
search.strategy=evolution,1,0.3,0.0,0.33,0.0,3000.0,0.0,10.0,0.0
"""


def _csv(path: Path) -> tuple[list[dict], list[dict]]:
    """report.csv's job rows and configuration rows (the two tables, a blank line between)."""
    jobs, groups = path.read_text().split("\n\n")
    return list(csv.DictReader(io.StringIO(jobs))), list(csv.DictReader(io.StringIO(groups)))


def test_an_accuracy_sweep_reports_as_before(tmp_path):
    root = make_sweep(tmp_path, "accuracy")
    paths = write_report(root)
    assert paths["md"].read_text() == ACCURACY_MD.format(root=root)
    # csv's \r\n line ends, and a plain \n for the blank line between the two tables.
    assert paths["csv"].read_bytes().decode() == ACCURACY_CSV.replace("\n", "\r\n").replace("\r\n\r\n", "\r\n\n")
    assert paths["png"].stat().st_size > 1000 and paths["search_png"].stat().st_size > 1000


def test_a_regression_sweep_names_rmse_and_keeps_its_direction(tmp_path):
    root = make_sweep(tmp_path, "rmse")
    paths = write_report(root)
    text = paths["md"].read_text()
    assert "| config | n | val rmse (inherited) | test rmse (retrained) | params | wall s |" in text
    assert "| job | config | seed | status | arch | params | val rmse | test rmse | wall s |" in text
    assert "| 0 | search.strategy=random | 0 | ok | 64-32 | 3000 | 0.5 | 0.52 | 10.0 |" in text
    assert "## Search strategies (best-so-far validation rmse, lower is better)" in text
    assert "| random | 2 | 4 | 0.55 ± 0.07071 |" in text  # the lowest rmse of each run: 0.5, 0.6
    assert "acc" not in text
    jobs, groups = _csv(paths["csv"])
    assert list(jobs[0]) == [*"job config seed status arch params flops".split(), "val_rmse", "test_rmse"] + [
        "wall_s",
        "metric",
        "error",
    ]
    assert [(r["val_rmse"], r["test_rmse"], r["metric"]) for r in jobs[:3]] == [
        ("0.5", "0.52", "rmse"),
        ("0.6", "0.58", "rmse"),
        ("0.3", "0.33", "rmse"),
    ]
    assert list(groups[0])[2:6] == ["val_rmse_mean", "val_rmse_std", "test_rmse_mean", "test_rmse_std"]
    assert float(groups[0]["test_rmse_mean"]) == 0.55
    assert paths["png"].stat().st_size > 1000 and paths["search_png"].stat().st_size > 1000


def test_best_so_far_is_the_lowest_rmse_and_the_highest_accuracy(tmp_path):
    for metric, kind in (("rmse", "pipeline"), ("rmse", "search"), ("accuracy", "search")):
        curves = best_so_far_curves(find_jobs(make_sweep(tmp_path / f"{metric}_{kind}", metric, kind)))
        assert list(curves) == [metric]
        random = curves[metric]["random"]
        if metric == "rmse":  # evaluation 1 is infeasible: its 0.7 is not a best
            assert random == [[0.9, 0.9, 0.8, 0.5], [0.8, 0.8, 0.6, 0.6]]
            assert all(a >= b for c in random for a, b in zip(c, c[1:], strict=False))
        else:
            assert random == [[0.9, 0.9, 0.9, 0.9], [0.8, 0.8, 0.8, 0.8]]


def test_a_sweep_of_two_metrics_keeps_them_apart(tmp_path):
    make_sweep(tmp_path / "rmse", "rmse")
    make_sweep(tmp_path / "mae", "mae", "search")  # columns in the order met: mae/0 before rmse/0
    curves = best_so_far_curves(find_jobs(tmp_path))
    assert set(curves) == {"rmse", "mae"} and curves["mae"]["evolution"] == [[0.95, 0.95, 0.45, 0.3]]
    paths = write_report(tmp_path)
    jobs, groups = _csv(paths["csv"])
    assert [c for c in jobs[0] if c.startswith(("val_", "test_"))] == ["val_mae", "test_mae", "val_rmse", "test_rmse"]
    assert {r["metric"] for r in jobs if r["status"] == "ok"} == {"rmse", "mae"}
    text = paths["md"].read_text()
    assert "| val mae (inherited) | test mae (retrained) | val rmse (inherited) | test rmse (retrained) |" in text
    assert "best-so-far validation rmse, lower is better" in text and "best-so-far validation mae" in text


def test_a_train_job_reads_its_largest_arch_in_its_own_metric():
    regression = winner_fields({"task": "train", "metrics": {"val/rmse_max": 1.5}, "wall_s": 3.0})
    assert (regression["metric"], regression["val_rmse"], regression["test_rmse"]) == ("rmse", 1.5, None)
    classification = winner_fields({"task": "train", "metrics": {"val/acc_max": 0.9}})
    assert (classification["metric"], classification["val_acc"]) == ("accuracy", 0.9)


def test_the_report_knows_which_metrics_are_lower_is_better():
    """supernet.core.metrics (torch) and the torch-free report agree on each metric's direction."""
    from supernet.core.metrics import METRICS

    assert {m.name for m in METRICS.values() if not m.higher_is_better} == LOWER_IS_BETTER
