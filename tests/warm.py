"""Console scripts run in a forked copy of a warm interpreter: a process of their own, with the exit
code and output a fresh ``subprocess.run`` gives, without importing the training stack each time.

A command that trains spends about 4 s of every run importing torch, Lightning, torchmetrics and
``torch._dynamo`` (torch's optimizers import it on their first step), and the suite runs a few
hundred commands. `WarmServer` is one Python process per test worker that imports all that once;
for each command it forks a child, which takes the command's argv, environment and working
directory, writes its output to files, runs the console script's entry point and ends as the
interpreter would (non-daemon threads joined, atexit handlers run, output flushed). The random
generators are reseeded and the temporary-directory cache is cleared, as in a new process.

What a fork cannot reproduce runs in a fresh interpreter instead: a command that is not one of
supernet's console scripts, or an environment that differs in what Python or torch read at start
(`STARTUP_ENV`). ``SUPERNET_TEST_FRESH=1`` makes every command fresh. The tests of what a command
imports (tests/test_startup.py) start their own interpreters.

    python tests/warm.py    # the server; conftest.run_cli starts it
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from importlib.metadata import entry_points
from pathlib import Path

# Read by Python or torch when the interpreter starts: a command whose environment differs here
# from the server's cannot be forked from it.
STARTUP_ENV = (
    "PYTHONWARNINGS",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONDONTWRITEBYTECODE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
)
PRELOAD = (
    "torch",
    "torch._dynamo",
    "pytorch_lightning",
    "torchmetrics",
    "hydra",
    "sklearn.metrics",
    "sklearn.model_selection",
    "pandas",
    "scipy.stats",
    "supernet.commands.cli",
    "supernet.commands.pipeline",
    "supernet.commands.rank",
    "supernet.commands.bench",
    "supernet.train.fit",
    "supernet.train.retrain",
)


def console_scripts() -> dict[str, str]:
    """supernet's console scripts: name -> ``module:function`` (pyproject.toml's [project.scripts])."""
    return {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.value.startswith("supernet.")}


def exit_code(value: object) -> int:
    """What ``sys.exit(value)`` makes the process's exit code (a message is printed, as Python does)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def run_child(request: dict) -> None:
    """In the forked child: become the command, run it, and end the process."""
    import atexit
    import random
    import threading
    import traceback

    import numpy as np
    import torch

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["out"], 0), (2, request["err"], 0)):
        target = os.open(path, flags or (os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 0o644)
        os.dup2(target, fd)
        os.close(target)
    random.seed()
    np.random.seed()
    torch.seed()
    tempfile.tempdir = None
    module, _, function = request["entry"].partition(":")
    sys.argv = [request["argv0"], *request["args"]]
    try:
        code = exit_code(getattr(__import__(module, fromlist=[function]), function)())
    except SystemExit as exc:
        code = exit_code(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints an uncaught error
        traceback.print_exc()
        code = 1
    threading._shutdown()  # what the interpreter does at exit: wait for non-daemon threads
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    """The server: preload, then for each request line fork a child and report its pid and status."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing the server prints reaches the protocol
    print(json.dumps({"ready": os.getpid()}), file=reply)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            reply.close()
            run_child(request)
        print(json.dumps({"pid": pid}), file=reply)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), file=reply)


class WarmServer:
    """The test worker's side: one server process, started on first use."""

    def __init__(self, bin_dir: Path, root: Path, env: dict[str, str]):
        self.bin_dir, self.root, self.env = bin_dir, root, env
        self.scripts = console_scripts()
        self.proc: subprocess.Popen | None = None

    def can_run(self, command: str, env: dict[str, str]) -> bool:
        return command in self.scripts and all(env.get(k) == self.env.get(k) for k in STARTUP_ENV)

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, __file__], cwd=self.root, env=self.env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, bufsize=1,
            )  # fmt: skip
            assert "ready" in json.loads(self.proc.stdout.readline())
        return self.proc

    def run(self, command: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float):
        """Like ``subprocess.run(capture_output=True, text=True, timeout=timeout)`` of the script."""
        proc = self._start()
        with tempfile.TemporaryDirectory(prefix="warm-") as tmp:
            out, err = Path(tmp) / "out", Path(tmp) / "err"
            request = {
                "entry": self.scripts[command], "argv0": str(self.bin_dir / command), "args": list(args),
                "cwd": str(cwd), "env": env, "out": str(out), "err": str(err),
            }  # fmt: skip
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            pid = json.loads(proc.stdout.readline())["pid"]
            timed_out = not select.select([proc.stdout], [], [], timeout)[0]
            if timed_out:
                os.kill(pid, signal.SIGKILL)
            status = json.loads(proc.stdout.readline())["status"]
            argv = [str(self.bin_dir / command), *args]
            stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
            if timed_out:
                raise subprocess.TimeoutExpired(argv, timeout, output=stdout, stderr=stderr)
            return subprocess.CompletedProcess(argv, status, stdout, stderr)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


if __name__ == "__main__":
    serve()
