"""Commands that do not train import neither Lightning nor TensorBoard: they start in about a
second (docs/experiments/speed.md#start-up-cpu). Each runs for real in a fresh interpreter, which
prints the heavy modules it holds when it exits.

    .venv/bin/python -m pytest tests/test_startup.py -q
"""

import ast
import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("pytorch_lightning", "lightning", "lightning_fabric", "tensorboard", "torch.utils.tensorboard")


def heavy_modules(command: str, *args: str) -> list[str]:
    """The HEAVY modules `supernet-<command> args` has imported when it exits (its exit code 0)."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
        f"sys.argv = ['supernet-{command}', *{list(args)!r}]\n"
        f"from supernet.commands.cli import {command}\n"
        f"{command}()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("HEAVY "))
    return ast.literal_eval(line.removeprefix("HEAVY "))


@pytest.mark.parametrize("command", ["score", "export", "report", "search", "pipeline"])
def test_help_imports_no_training_stack(command):
    assert heavy_modules(command, "--help") == []


def test_score_and_export_import_no_training_stack(digits_ckpt, tmp_path):
    archs = tmp_path / "archs.json"
    archs.write_text("[[32, 16], [64]]")
    score = heavy_modules("score", f"ckpt_path={digits_ckpt}", f"archs_file={archs}", f"hydra.run.dir={tmp_path / 's'}")
    assert score == []
    assert (tmp_path / "s" / "result.json").is_file()
    out = tmp_path / "subnet"
    export = heavy_modules(
        "export", f"ckpt_path={digits_ckpt}", "arch=[32,16]", f"out={out}", f"hydra.run.dir={tmp_path}/e"
    )
    assert export == []
    assert (out / "model.safetensors").is_file()
