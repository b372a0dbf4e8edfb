"""``supernet-bench suite=job``: real digits jobs at tiny settings and a real small-table job; the
figures exist, are positive and are the documented ratios of each other (no timing is asserted).

    .venv/bin/python -m pytest tests/test_bench_job.py -q
"""

import statistics

import pytest

from supernet.commands.bench_job import medians, phase_figures

from conftest import read_json, run_cli

TINY = [
    "trainer.max_epochs=1",
    "retrain.max_epochs=1",
    "train.min_steps=null",
    "retrain.min_steps=null",
    "search.budget=12",
    "search.population=6",
    "search.tournament=2",
    "search.parents=2",
    "search.finetune.top=0",
    "export.onnx=false",
    "logger=none",
    "figures=false",
]


def _list(overrides: list[str]) -> str:
    return "[" + ",".join(f"'{o}'" for o in overrides) + "]"


@pytest.mark.slow
def test_job_suite_reports_the_job_in_epochs_of_its_winner_and_the_tables_phase_shares(tmp_path):
    proc = run_cli(
        "supernet-bench",
        "suite=job",
        "quick=true",
        "job.repeats=1",  # each job is its own process (4 s of start-up here); medians: the test below
        f"job.overrides={_list(TINY)}",
        f"job.table_overrides={_list(TINY)}",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = read_json(tmp_path / "job.json")
    assert "digits" in figures["data"] and figures["threads"] >= 1
    runs = figures["runs"]
    assert len(runs) == 1
    for run in runs:
        assert run["winner_epoch_s"] > 0 and run["wall_s"] > 0
        # The ratio is the job's wall over its winner's plain epoch (both rounded).
        assert run["job_over_winner_epoch"] == pytest.approx(run["wall_s"] / run["winner_epoch_s"], rel=2e-2)
        assert run["batch_size"] == 16  # digits' data.batch_size: retrain.batch_size is null
        assert set(run["phases_s"]) == {"data", "train", "search", "export", "retrain"}
        assert sum(run["phase_share"].values()) == pytest.approx(1.0, abs=0.01)
        assert 0.0 < run["test_acc"] <= 1.0
    assert figures["job_over_winner_epoch"] > 0
    assert figures["job_over_winner_epoch"] == pytest.approx(
        statistics.median(r["job_over_winner_epoch"] for r in runs), abs=0.06
    )
    table = figures["table"]
    assert table["rows"] == 569
    # Under 1,000 training rows the table job bags five members: the ensemble phase is visible too.
    assert {"data", "train", "search", "export", "retrain", "ensemble", "other"} <= set(table["phase_share"])
    assert all(share >= 0 for share in table["phase_share"].values())
    assert sum(table["phase_share"].values()) == pytest.approx(1.0, abs=0.01)
    assert 0.5 < table["test_acc"] <= 1.0
    assert "job_over_winner_epoch" in proc.stdout and "table job" in proc.stdout


def test_job_suite_refuses_a_bad_repeat_count(tmp_path):
    proc = run_cli("supernet-bench", "suite=job", "job.repeats=0", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert "job.repeats=0 must be a whole number of runs >= 1" in proc.stderr


def test_phase_shares_and_medians_of_recorded_runs():
    # Figures of real shape, as one_run records them: the rest of the wall is "other".
    result = {"phases": {"train": {"wall_s": 6.0}, "retrain": {"wall_s": 3.0}}}
    figures = phase_figures(10.0, result)
    assert figures["phase_share"] == {"train": 0.6, "retrain": 0.3, "other": 0.1}
    runs = [
        {**figures, "winner_epoch_s": s, "job_over_winner_epoch": 10.0 / s, "test_acc": a}
        for s, a in ((0.5, 0.9), (0.25, 0.8), (1.0, 0.95))
    ]
    assert medians(runs)["job_over_winner_epoch"] == 20.0
    assert medians(runs)["test_acc"] == 0.9
    assert medians([{"error": "boom"}]) == {}
