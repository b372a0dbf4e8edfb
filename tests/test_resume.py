"""The main job resumes: killed (SIGKILL) in its search or retrain phase, or stopped by SIGTERM or
SIGINT in its training or search, ``supernet resume=<dir>`` finishes with the winner and test
accuracy of an uninterrupted run on the same seed."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from conftest import BIN, kill_when, read_json, run_cli

SMALL = [
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "search.budget=200",
    "search.finetune.top=3",
    "retrain.max_epochs=2",
    "logger=none",
]


def _kill_when(run_dir: Path, marker: str) -> None:
    """Start the pipeline into `run_dir` and SIGKILL it as soon as `marker` (a path inside) exists."""
    kill_when([str(BIN / "supernet"), *SMALL, f"hydra.run.dir={run_dir}"], (run_dir / marker).exists, timeout=240)
    assert not (run_dir / "result.json").exists()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("straight")
    proc = run_cli("supernet", *SMALL, f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return read_json(run_dir / "result.json")


@pytest.mark.slow
@pytest.mark.parametrize("marker", ["search/search_state.json", "retrain"])
def test_killed_pipeline_resumes_to_the_same_result(tmp_path, uninterrupted, marker):
    run_dir = tmp_path / "run"
    _kill_when(run_dir, marker)
    # No hydra.run.dir: the resume writes into run_dir, and no outputs/pipeline/runs/<stamp>/ is left (N8).
    proc = run_cli("supernet", f"resume={run_dir}", "logger=none", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "outputs").exists()
    resumed = read_json(run_dir / "result.json")
    assert resumed["status"] == "ok" and resumed["resumed"] is True
    assert resumed["winner"]["arch"] == uninterrupted["winner"]["arch"]
    assert resumed["winner"]["test_acc"] == uninterrupted["winner"]["test_acc"]
    assert resumed["winner"]["val_acc"] == uninterrupted["winner"]["val_acc"]
    # The finished training phase was not redone: one checkpoint set, no -v1 siblings.
    assert sorted(p.name for p in (run_dir / "train" / "checkpoints").iterdir()) == ["epoch001.ckpt", "last.ckpt"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, marker, phase",
    [
        (signal.SIGTERM, "train/checkpoints/epoch000.ckpt", "train"),
        (signal.SIGTERM, "search/search_state.json", "search"),
        (signal.SIGINT, "train/checkpoints/epoch000.ckpt", "train"),
    ],
)
def test_a_signal_stops_the_pipeline_and_resume_finishes_it(tmp_path, uninterrupted, signum, marker, phase):
    """A scheduler's SIGTERM (or Ctrl-C) ends the job after the step in progress with 128 + signal,
    one line saying how to continue, and a result.json saying where; the resume ends as a straight run."""
    run_dir = tmp_path / "run"
    cmd = [str(BIN / "supernet"), *SMALL, f"hydra.run.dir={run_dir}"]
    # The wait for the exit is bounded: a job that ignored the signal would run on to the end.
    code, stderr = kill_when(cmd, (run_dir / marker).exists, timeout=240, signum=signum)
    assert code == 128 + signum
    name = signal.Signals(signum).name
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted by {name} in the {phase} phase: continue with supernet resume={run_dir}"
    )
    stopped = read_json(run_dir / "result.json")
    assert (stopped["status"], stopped["phase"], stopped["signal"]) == ("interrupted", phase, name)
    assert (run_dir / marker).is_file()  # the last whole checkpoint / the saved generation stays
    proc = run_cli("supernet", f"resume={run_dir}", "logger=none", f"hydra.run.dir={tmp_path / 'again'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    resumed = read_json(run_dir / "result.json")
    assert resumed["status"] == "ok" and resumed["ran"][0] == phase
    assert resumed["winner"]["arch"] == uninterrupted["winner"]["arch"]
    assert resumed["winner"]["test_acc"] == uninterrupted["winner"]["test_acc"]


@pytest.mark.slow
def test_resume_refuses_a_changed_setting(tmp_path, uninterrupted):
    run_dir = Path(uninterrupted["paths"]["run_dir"])
    proc = run_cli("supernet", f"resume={run_dir}", "search.budget=50", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: resume={run_dir}: search.budget=50 but the run has 200; a resume keeps the run's settings "
        "(only logger, device, figures, data.root, data.num_workers, trainer.enable_progress_bar/log_every_n_steps may "
        "change): drop the override or start a new run"
    ]


def test_resume_names_a_dir_that_is_no_pipeline_run(tmp_path):
    proc = run_cli("supernet", f"resume={tmp_path}", f"hydra.run.dir={tmp_path / 'x'}")
    assert proc.returncode == 2
    assert f"{tmp_path} has no pipeline_request.json" in proc.stderr


@pytest.mark.slow
def test_resume_keeps_the_runs_settings_without_repeating_them(tmp_path, uninterrupted):
    """`resume=<dir>` alone continues with the saved settings, not this command's defaults."""
    run_dir = Path(uninterrupted["paths"]["run_dir"])
    proc = run_cli("supernet", f"resume={run_dir}", "logger=none", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = read_json(run_dir / "result.json")
    assert again["phases"]["retrain"]["epochs"] == 2 and again["winner"] == uninterrupted["winner"]
    # The finished phases keep their own record; the export, always redone, is what ran now.
    assert again["ran"] == ["export"]
    for phase in ("train", "search", "retrain"):
        assert again["phases"][phase] == uninterrupted["phases"][phase]
    walls = [p["wall_s"] for p in again["phases"].values()]
    assert again["wall_s"] == round(sum(walls), 2) and again["wall_s"] > again["invocation_wall_s"]


@pytest.mark.slow
def test_resumed_search_keeps_its_finetune_settings(tmp_path, digits_run):
    run_dir = tmp_path / "search"
    first = ["search.budget=100", "search.finetune.top=2", "logger=none"]
    proc = run_cli("supernet-search", f"ckpt_path={digits_run}", *first, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = read_json(run_dir / "result.json")["best"]
    # The command's default (top=10) does not replace the saved top=2, and the request is kept.
    proc = run_cli("supernet-search", f"resume={run_dir}", "logger=none", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_json(run_dir / "search_request.json")["search"]["finetune"]["top"] == 2
    assert read_json(run_dir / "result.json")["best"] == best
    proc = run_cli("supernet-search", f"resume={run_dir}", "search.finetune.top=5", f"hydra.run.dir={tmp_path / 'x'}")
    assert proc.returncode == 2
    assert "search.finetune.top=5 but the search was started with 2" in proc.stderr


@pytest.mark.parametrize("command, what", [("supernet-search", "search"), ("supernet", "pipeline")])
def test_a_run_dir_in_use_is_refused(tmp_path, command, what):
    from supernet.files import run_dir_lock

    run_dir = tmp_path / "busy"
    marker = "search_state.json" if what == "search" else "pipeline_request.json"
    run_dir.mkdir()
    (run_dir / marker).write_text("{}")
    (run_dir / "search_request.json").write_text('{"ckpt_path": "x", "search": {}}')
    with run_dir_lock(run_dir, what):
        proc = run_cli(command, f"resume={run_dir}", "ckpt_path=/nonexistent", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2
    assert f"another {what} is using {run_dir}" in proc.stderr


def _unfinished_pipeline(tmp_path: Path, digits_run: Path) -> Path:
    """A pipeline run dir whose training was stopped: checkpoints, no train/result.json."""
    import shutil

    run_dir = tmp_path / "stopped"
    shutil.copytree(digits_run / "checkpoints", run_dir / "train" / "checkpoints")
    (run_dir / "pipeline_request.json").write_text("{}")
    return run_dir


def test_a_stopped_pipeline_is_continued_by_resume_not_by_its_checkpoint(tmp_path, digits_run):
    run_dir = _unfinished_pipeline(tmp_path, digits_run)
    # A second run into the dir is refused with the pipeline's advice (not supernet-train's).
    proc = run_cli("supernet", f"hydra.run.dir={run_dir}", "logger=none")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: hydra.run.dir={run_dir} already holds a pipeline run: continue it with supernet resume={run_dir}, "
        "or pick a new hydra.run.dir"
    )
    # Its unfinished supernet is not searched as if it were trained.
    proc = run_cli("supernet", f"ckpt_path={run_dir / 'train'}", f"hydra.run.dir={tmp_path / 'new'}", "logger=none")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: ckpt_path={run_dir / 'train'} is an unfinished training run ({run_dir / 'train'} has no "
        f"result.json): finish it with supernet resume={run_dir}, or pass a finished one"
    )
    assert not (tmp_path / "new" / "search").exists()


@pytest.mark.slow
def test_a_resume_may_change_the_ensemble_until_it_is_built(tmp_path):
    """The ensemble's size is checked against the search's result, so its fix is taken on resume."""
    run_dir = tmp_path / "run"
    small = [*SMALL, "search.budget=40", "search.population=20", "search.finetune.top=0", "retrain.max_epochs=1"]
    proc = run_cli("supernet", *small, f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = ["retrain.ensemble=2", "retrain.ensemble_from=seeds", "logger=none"]
    proc = run_cli("supernet", f"resume={run_dir}", *again, f"hydra.run.dir={tmp_path / 'r'}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = read_json(run_dir / "result.json")
    assert result["ensemble"]["k"] == 2 and result["ran"] == ["export", "ensemble"]
    assert read_json(run_dir / "pipeline_request.json")["retrain"]["ensemble"] == 2
    # Once built, the ensemble is a finished result like any other: a resume keeps it.
    proc = run_cli("supernet", f"resume={run_dir}", "retrain.ensemble=3", f"hydra.run.dir={tmp_path / 'x'}")
    assert proc.returncode == 2 and "retrain.ensemble=3 but the run has 2" in proc.stderr
