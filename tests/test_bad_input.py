"""Every command's bad input, in one table: exit code 2, one ``error:`` line naming the key or path
and the fix, no traceback, and nothing written (no result.json in the run dir).

``{ckpt}`` in a row is replaced by a trained digits supernet's run dir (the session fixture).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import BIN, ROOT, make_cfg, run_cli, run_read_only

BAD_INPUTS = [
    # (command, args, fragment of the one error line)
    ("supernet-train", ["space.width.min=300"], "space.width.min=300 is above space.width.max=256"),
    ("supernet-train", ["space.width.step=7"], "does not divide the range"),
    ("supernet-train", ["space.depth.min=0"], "space.depth.min=0 must be >= 1"),
    ("supernet-train", ["space.depth.max=100", "space.width.max=4096"], "more than the"),
    ("supernet-train", ["data.name=cifar"], "data.name='cifar' is unknown"),
    ("supernet-train", ["data=nope"], "Could not find 'data/nope'"),
    ("supernet-train", ["sampler.name=greedy"], "sampler.name='greedy' is unknown"),
    ("supernet-train", ["optim.lr=-1"], "optim.lr=-1 must be a positive number"),
    ("supernet-train", ["trainer.max_epochs=0"], "trainer.max_epochs=0 must be >= 1"),
    ("supernet-train", ["train.ema_decay=1"], "train.ema_decay=1 must be in (0, 1)"),
    ("supernet-train", ["train.ema_decay=fast"], "train.ema_decay=fast must be in (0, 1)"),
    ("supernet-train", ["trainer.accelerator=gpu"], "no CUDA device is visible"),
    ("supernet-train", ["ckpt_path=/nonexistent.ckpt"], "ckpt_path=/nonexistent.ckpt does not exist"),
    ("supernet-train", ["no_such_key=1"], "Could not override 'no_such_key': no such key"),
    ("supernet-train", ["model.heads=tied"], "model.heads='tied' is unknown; choose one of ['per_depth', 'shared']"),
    ("supernet", ["serach.budget=10"], "Could not override 'serach.budget': no such key (did you mean search.budget?)"),
    ("supernet", ["+search.budgett=10"], "+search.budgett=10: no command reads search.budgett (did you mean"),
    ("supernet", ["retrain.optim.weight_decay=-1"], "retrain.optim.weight_decay=-1 must be a number >= 0"),
    ("supernet-train", ["optim.lr=abc"], "optim.lr=abc must be a positive number"),
    ("supernet-train", ["optim.weight_decay=lots"], "optim.weight_decay=lots must be a number >= 0"),
    (
        "supernet",
        ["retrain.ensemble=100", "retrain.ensemble_from=top", "search.budget=60"],
        "retrain.ensemble=100 with retrain.ensemble_from=top but search.budget=60 scores at most 60 distinct archs",
    ),
    (
        "supernet-train",
        ["+search.budget=10"],
        "+search.budget=10: supernet-train reads no search setting, so it does nothing here (supernet, supernet-search",
    ),
    ("supernet-train", ["search.budget=10"], "search.budget=10: supernet-train reads no search setting"),
    ("supernet-score", ["logger=none"], "logger=none: supernet-score reads no logger setting, so it does nothing here"),
    ("supernet-export", ["logger=none"], "logger=none: supernet-export reads no logger setting"),
    ("supernet", ["retrain.init=warm"], "retrain.init='warm' must be inherited, scratch or auto"),
    ("supernet", ["retrain.optim.lr=-1"], "retrain.optim.lr=-1 must be a positive number"),
    ("supernet", ["resume=/nonexistent"], "resume=/nonexistent: /nonexistent has no pipeline_request.json"),
    ("supernet", ["retrain.ensemble=0"], "retrain.ensemble=0 must be a whole number >= 1"),
    ("supernet", ["retrain.ensemble=-3"], "retrain.ensemble=-3 must be a whole number >= 1"),
    (
        "supernet",
        ["retrain.ensemble_from=other"],
        "retrain.ensemble_from='other' must be one of ['top', 'seeds', 'folds', 'auto']",
    ),
    (
        "supernet",
        [
            "ckpt_path={ckpt}",
            "search.budget=20",
            "search.population=10",
            "search.finetune.top=0",
            "retrain.ensemble=40",
        ],
        # Known before training: the search scores at most its budget.
        "retrain.ensemble=40 with retrain.ensemble_from=top but search.budget=20 scores at most 20 distinct archs",
    ),
    ("supernet", ["data=bench_table", "data.set=wdbc", "data.scaler=unknown"], "data.scaler='unknown' must be one of"),
    ("supernet", ["data=bench_table", "data.set=wdbc", "data.periodic=0"], "data.periodic=0 must be a whole number"),
    ("supernet", ["data=bench_table", "data.set=wdbc", "data.clip=-1"], "data.clip=-1 must be a positive number"),
    ("supernet", ["retrain.patience=0"], "retrain.patience=0 must be a whole number of epochs >= 1"),
    ("supernet-bench", ["suite=fast"], "suite='fast' must be one of speed, tabular"),
    ("supernet-bench", ["suite=tabular", "tabular.sets=[nope]"], "tabular.sets names unknown set(s) ['nope']"),
    ("supernet-bench", ["suite=tabular", "tabular.repeats=0"], "tabular.repeats=0 must be an integer >= 1"),
    ("supernet-bench", ["suite=tabular", "tabular.first_split=-1"], "tabular.first_split=-1 must be an integer >= 0"),
    ("supernet", ["data=bench_table", "data.set=wdbc", "data.test_seed=x"], "data.test_seed='x' must be an integer"),
    ("supernet-bench", ["suite=tabular", "tabular.baselines=[xgb]"], "tabular.baselines names ['xgb']"),
    ("supernet-search", [], "ckpt_path is required"),
    ("supernet-search", ["ckpt_path={ckpt}", "search.constraints.max_params=10"], "below the smallest arch"),
    ("supernet-search", ["ckpt_path={ckpt}", "search=nonsense"], "Could not find 'search/nonsense'"),
    ("supernet-search", ["ckpt_path={ckpt}", "search.strategy=annealing"], "search.strategy='annealing' is unknown"),
    ("supernet-search", ["ckpt_path={ckpt}", "search.objectives=[val_acc,beauty]"], "beauty"),
    ("supernet-search", ["ckpt_path={ckpt}", "search.budget=10", "search.population=50"], "search.budget=10"),
    ("supernet-search", ["resume=/nonexistent"], "resume=/nonexistent: /nonexistent has no search_state.json"),
    ("supernet-score", ["ckpt_path=/nonexistent"], "does not exist"),
    ("supernet-score", ["ckpt_path={ckpt}"], "archs_file is required"),
    ("supernet-export", ["ckpt_path={ckpt}", "arch=[64,32]"], "out is required"),
    ("supernet-retrain", [], "subnet is required"),
    ("supernet-rank", ["ckpt_path={ckpt}", "rank.n=2"], "rank.n=2 must be an integer >= 3"),
    # The task's keys (issue #25): each names the key, the task and what would be valid.
    ("supernet-search", ["ckpt_path={ckpt}", "search.metric=roc_auc"], "search.metric=roc_auc needs two classes but"),
    ("supernet-search", ["ckpt_path={ckpt}", "search.metric=rmse"], "search.metric=rmse is a regression metric but"),
    ("supernet-search", ["ckpt_path={ckpt}", "search.metric=speed"], "search.metric='speed' is unknown"),
    ("supernet", ["search.metric=r2"], "search.metric=r2 is a regression metric but the task is classification"),
    ("supernet-train", ["data=friedman", "data.class_weight=balanced"], "data.class_weight=balanced applies to"),
    ("supernet-train", ["loss=huber"], "loss=huber applies to regression, and the task is classification"),
    ("supernet-train", ["data=diabetes", "data.task=classification"], "data.task=classification but data=diabetes"),
    ("supernet-rank", ["ckpt_path={ckpt}", "rank.bootstrap=10"], "rank.bootstrap=10 is too few resamples"),
]


def _ids(rows):
    return [f"{r[0]} {' '.join(r[1])}".strip() for r in rows]


@pytest.mark.parametrize("command, args, fragment", BAD_INPUTS, ids=_ids(BAD_INPUTS))
def test_bad_input_is_one_clear_line(tmp_path, request, command, args, fragment):
    if any("{ckpt}" in a for a in args):
        ckpt = request.getfixturevalue("digits_run")
        args = [a.replace("{ckpt}", str(ckpt)) for a in args]
    run_dir = tmp_path / "run"
    proc = run_cli(command, *args, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr[-1500:]
    assert "Traceback" not in proc.stderr
    assert not (run_dir / "result.json").exists()


def test_archs_file_outside_space(tmp_path, digits_run):
    archs = tmp_path / "archs.json"
    archs.write_text("[[64, 32], [64, 33]]")
    proc = run_cli(
        "supernet-score", f"ckpt_path={digits_run}", f"archs_file={archs}", f"hydra.run.dir={tmp_path / 'r'}"
    )
    assert proc.returncode == 2
    assert "arch [64, 33]: layer 1 width 33 is not on the grid" in proc.stderr


def test_archs_file_of_binary_bytes(tmp_path, digits_run):
    archs = tmp_path / "archs.json"
    archs.write_bytes(b"\xff\xfe\x00bad")
    proc = run_cli("supernet-score", f"ckpt_path={digits_run}", f"archs_file={archs}", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: archs_file={archs} is not UTF-8 text: pass a JSON file"]


def test_resume_of_a_request_without_settings(tmp_path):
    (tmp_path / "pipeline_request.json").write_text("{}")
    proc = run_cli("supernet", f"resume={tmp_path}", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2
    assert "pipeline_request.json lacks data, space, sampler, optim, trainer" in proc.stderr
    assert "it is no request the pipeline wrote: start a new run" in proc.stderr


def test_a_mistyped_key_gets_advice_the_next_run_takes(tmp_path):
    """No "+serach.budget=10" advice: a ``+key`` no command reads is refused too."""
    proc = run_cli("supernet", "serach.budget=10", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: Could not override 'serach.budget': no such key (did you mean search.budget?); see --help for the keys"
    ]


@pytest.mark.parametrize("args", [["space.depth.min=0"], ["serach.budget=10"]], ids=["job check", "unknown key"])
def test_full_error_shows_traceback_and_keeps_exit_code_2(tmp_path, args):
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [str(BIN / "supernet"), *args, f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_unwritable_run_dir_is_named_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = run_cli("supernet-train", f"hydra.run.dir={blocker / 'run'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: hydra.run.dir={blocker / 'run'}: {blocker} is a file, not a directory; pick another hydra.run.dir"
    ]


def test_report_lists_unreadable_jobs_instead_of_crashing(tmp_path):
    for name, payload in (("0", b"\xff\xfe{"), ("1", b"[1, 2]"), ("2", b'{"status": "failed", "error": "boom"}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_bytes(payload)
        (tmp_path / name / "rank.json").write_bytes(payload)
    proc = run_cli("supernet-report", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-1500:]
    report = (tmp_path / "report.md").read_text()
    assert "- `0` ((defaults)): unreadable result.json (UnicodeDecodeError:" in report
    assert "- `1` ((defaults)): unreadable result.json (JSON list, not an object)" in report
    assert "- `2` ((defaults)): boom" in report


def test_constant_regression_target_is_refused_before_training(tmp_path):
    """Issue 39 N5: the regression twin of the one-class refusal; no checkpoint is written."""
    table = tmp_path / "c.csv"
    table.write_text("x1,x2,y\n" + "".join(f"{i},{i % 3},3.5\n" for i in range(40)))
    run_dir = tmp_path / "run"
    proc = run_cli("supernet", "data=csv", f"data.path={table}", "data.target=y", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: data.path={table}: target column 'y' is 3.5 in every row; a regression target must vary"
    )
    assert not (run_dir / "train").exists()


def _sweep(root):
    """A sweep dir of two jobs, as supernet-report reads them (one failed: no training needed)."""
    for name in ("0", "1"):
        (root / name).mkdir(parents=True)
        (root / name / "result.json").write_text('{"status": "failed", "error": "boom"}')
    return root


def test_report_of_a_read_only_sweep_says_so_and_writes_elsewhere(tmp_path):
    """Issue 39 N7: one line and exit 2, not a traceback; ``out=`` writes the report elsewhere."""
    sweep = _sweep(tmp_path / "sweep")
    proc = run_read_only(sweep, "supernet-report", str(sweep))
    assert proc.returncode == 2, proc.stderr[-1500:]
    reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
    assert proc.stderr.strip().splitlines() == [
        f"error: supernet-report: {sweep} is not writable ({sweep}: {reason}); "
        "pass out=<dir> to write the report elsewhere"
    ]
    out = tmp_path / "reports" / "sweep"
    proc = run_read_only(sweep, "supernet-report", str(sweep), f"out={out}")
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "- `0` ((defaults)): boom" in (out / "report.md").read_text()
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.csv", "report.png"}
    assert not list(sweep.glob("report*"))
    proc = run_cli("supernet-report", str(sweep), "output=x")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: supernet-report: 'output=x' is no setting; it takes a sweep dir and out=<dir>"
    ]


def test_resume_writes_into_the_resumed_dir_not_a_new_one(tmp_path):
    """Issue 39 N8: without hydra.run.dir, a resume leaves no ``outputs/<task>/runs/<stamp>/``
    (Hydra makes its run dir before the job): the run dir is the resumed one, its .hydra/ kept."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=3\n")
    (run_dir / "pipeline_request.json").write_text("{}")  # refused by the job: no training needed
    proc = run_cli("supernet", f"resume={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2 and "pipeline_request.json lacks data" in proc.stderr, proc.stderr[-1500:]
    assert not (tmp_path / "outputs").exists()
    assert (run_dir / "error.txt").is_file()  # the refused attempt's record, in the run it is about
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == "- seed=3\n"


def test_resume_of_a_read_only_run_dir_is_one_line(tmp_path):
    """Issue 39 D11: named before Hydra or the job start, not a PermissionError on ``.lock``."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "pipeline_request.json").write_text("{}")
    reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
    proc = run_read_only(run_dir, "supernet", f"resume={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines() == [
        f"error: resume={run_dir} is not writable ({run_dir}: {reason}); "
        "copy the run dir somewhere writable and resume the copy"
    ]
    assert not (tmp_path / "outputs").exists()
    # With a hydra.run.dir of its own, the lock of the resumed dir says the same in one line.
    proc = run_read_only(run_dir, "supernet", f"resume={run_dir}", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {run_dir} is not writable ({reason}); the pipeline needs to write there"
    )


@pytest.mark.parametrize(
    "args, refused",
    [
        (["data=friedman"], "data=friedman but the run has data=digits"),
        (["optim=sgd"], "optim=sgd but the run has optim=adamw"),
        (["data=digits", "data.batch_size=64"], "data.batch_size=64 but the run has 16"),
        (["data=digits", "data.val_size=0.3"], "data.val_size=0.3 but the run has 0.2"),
    ],
    ids=["data group", "optim group", "key", "key beside its group"],
)
def test_resume_names_the_override_to_drop(tmp_path, args, refused):
    """Issue 39 N12: ``data=friedman`` is named as typed, not as the data.batch_size it changes."""
    from supernet.commands.pipeline_record import REQUEST_FILE
    from supernet.commands.pipeline_record import request_of as _request

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / REQUEST_FILE).write_text(json.dumps(_request(make_cfg("pipeline"))))
    proc = run_cli("supernet", f"resume={run_dir}", *args, f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: resume={run_dir}: {refused}; a resume keeps")
