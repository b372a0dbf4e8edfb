"""Shared fixtures: compose real configs, train a real (tiny) supernet once per session.

Run: ``make test`` (everything) or ``.venv/bin/python -m pytest -m "not slow"`` (fast tests).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One thread per process: the tests' matmuls are tiny, and `make test` runs two xdist workers on
# two cores, each starting console scripts; more threads only oversubscribe the cores. Set before
# torch is imported, and inherited by every subprocess the tests start.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from warm import WarmServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
BIN = Path(sys.executable).parent
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def make_cfg(config_name: str, overrides: list[str] | None = None):
    """Compose ``conf/<config_name>.yaml`` like the command line would (Hydra's compose API)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides or [], return_hydra_config=False)


def cli_env(env: dict | None = None) -> dict[str, str]:
    """The environment of a command the tests run: the suite's, warnings off, no full Hydra errors."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return full_env


_WARM = None if os.environ.get("SUPERNET_TEST_FRESH") == "1" else WarmServer(BIN, ROOT, cli_env())


def run_cli(command: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run a console script as a user would, in a process of its own; returns the CompletedProcess.

    It is forked from a warm interpreter (tests/warm.py) where that is the same as a fresh one."""
    full_env = cli_env(env)
    if _WARM is not None and _WARM.can_run(command, full_env):
        return _WARM.run(command, list(args), cwd or ROOT, full_env, timeout)
    return subprocess.run(
        [str(BIN / command), *args], cwd=cwd or ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def run_read_only(directory: Path, command: str, *args: str, cwd: Path | None = None, timeout: int = 300):
    """Run a console script for which `directory` is read-only: file modes for a user, and for root
    (whom file modes do not stop) a read-only bind mount in a mount namespace of the command's own.
    Skips the test where the namespace cannot be made."""
    cmd = [str(BIN / command), *args]
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [directory, *directory.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            return subprocess.run(cmd, cwd=cwd or ROOT, env=cli_env(), capture_output=True, text=True, timeout=timeout)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace here to make a read-only dir for root")
    mount = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", mount, str(directory), *cmd],
        cwd=cwd or ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pytest_sessionfinish(session, exitstatus):
    if _WARM is not None:
        _WARM.close()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _default_signals() -> None:
    """The child's SIGINT and SIGTERM as a terminal's: a suite started in the background (``make test &``)
    inherits an ignored SIGINT, which the jobs rightly keep ignoring."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def kill_when(
    cmd: list[str], ready, timeout: float = 120, signum: int = signal.SIGKILL, env: dict | None = None
) -> tuple[int, str]:
    """Start `cmd`, send it `signum` (SIGKILL) as soon as `ready()` holds (or fail after `timeout`
    seconds); wait for it to end (at most `timeout` seconds more). Returns (exit code, stderr)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: a full pipe would block the process
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=env, preexec_fn=_default_signals
        )
        deadline = time.time() + timeout
        while not ready():
            assert proc.poll() is None, f"the process ended (rc {proc.returncode}) before it could be killed"
            assert time.time() < deadline, "timed out waiting to kill"
            time.sleep(0.02)
        proc.send_signal(signum)
        try:
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        return proc.returncode, err.read()


@pytest.fixture
def one_thread():
    """Tiny matmuls: one thread is faster, and the CI box is shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    from supernet.data.datasets import load_data

    return load_data({"name": "digits"})


@pytest.fixture(scope="module")
def digits_space(digits):
    from supernet.core.space import SearchSpace

    return SearchSpace(digits.in_features, digits.num_classes, 1, 2, 8, 128, 8)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A real supernet trained on digits for 4 epochs (about 5 s): the run dir."""
    run_dir = tmp_path_factory.mktemp("digits_train")
    proc = run_cli(
        "supernet-train",
        "trainer.max_epochs=4",
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def digits_ckpt(digits_run) -> Path:
    return digits_run / "checkpoints" / "last.ckpt"
