"""SIGTERM and SIGINT (`supernet.signals`): handlers that wait for the step's end, a scikit-learn
fit's temporary run dir removed on SIGTERM, and Lightning's SLURM requeue left working.

The pipeline's signal-and-resume tests are in test_resume.py.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from supernet import signals

from conftest import BIN, kill_when, read_json


@pytest.fixture
def python_sigint():
    """SIGINT as Python sets it in a terminal, also when the suite was started in the background."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_signal_inside_steps_waits_for_the_check(python_sigint):
    before = signal.getsignal(signal.SIGTERM)
    with signals.handled():
        with pytest.raises(signals.Interrupted) as stopped:
            with signals.steps():
                os.kill(os.getpid(), signal.SIGTERM)
                reached = True  # the step in progress goes on to its end
        assert reached and stopped.value.code == 128 + signal.SIGTERM
        with pytest.raises(signals.Interrupted) as at_once:  # outside a step: at once
            os.kill(os.getpid(), signal.SIGINT)
        assert at_once.value.code == 130 and at_once.value.name == "SIGINT"
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_signal_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals.handled():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)  # nothing happens
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


FIT = """
import sys
from sklearn.datasets import load_digits
from supernet.sklearn import SupernetClassifier
X, y = load_digits(return_X_y=True)
SupernetClassifier(device="cpu", supernet_epochs=200, budget=3, space={"depth": (1, 1), "width": (8, 16, 4)},
                   overrides=["train.ema_decay=null"]).fit(X, y)
"""


@pytest.mark.slow
def test_a_fit_stopped_by_sigterm_removes_its_temporary_run_dir(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    def training() -> bool:
        return any(tmp.glob("supernet-fit-*/train/checkpoints/*.ckpt"))

    code, stderr = kill_when(
        [sys.executable, "-c", FIT], training, timeout=240, signum=signal.SIGTERM, env={"TMPDIR": str(tmp)}
    )
    assert code == 128 + signal.SIGTERM, stderr[-2000:]
    assert list(tmp.glob("supernet-fit-*")) == []  # (torch may leave its own cache folder)


SLURM = {
    "SLURM_NTASKS": "1",
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "supernet",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}
# 16 steps an epoch: the signals land early, and the requeued job has little left to train.
TRAIN = ["trainer.max_epochs=40", "data.limit_train=256", "trainer.enable_progress_bar=false", "logger=none"]


@pytest.mark.slow
def test_under_slurm_lightnings_requeue_still_works(tmp_path):
    """SIGUSR1 (the requeue signal) makes Lightning save hpc_ckpt_1.ckpt and training goes on;
    SIGTERM then stops the job (143); the requeued job, the same command, resumes from that file."""
    import subprocess
    import time

    run = tmp_path / "run"
    cmd = [str(BIN / "supernet-train"), *TRAIN, f"hydra.run.dir={run}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **SLURM}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (run / "checkpoints" / "epoch000.ckpt").exists():
            assert proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        while not (run / "hpc_ckpt_1.ckpt").exists():
            assert proc.poll() is None, "SIGUSR1 ended the job instead of requeueing it"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (run / "result.json").exists()
    requeued = subprocess.run(cmd, env={**env, "SLURM_RESTART_COUNT": "1"}, capture_output=True, text=True, timeout=600)
    assert requeued.returncode == 0, requeued.stderr[-2000:]
    assert read_json(run / "result.json")["epochs"] == 40
    assert Path(run / "checkpoints" / "last.ckpt").is_file()
