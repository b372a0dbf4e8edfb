"""Reliability of the files the jobs leave: run dirs, checkpoints, exports, tables (issue 24).

    .venv/bin/python -m pytest tests/test_reliability_files.py -q -p no:cacheprovider

A rerun never trains next to stale weights, a run killed between its epoch checkpoint and
``last.ckpt`` resumes, ``overwrite=true`` deletes only an export, exports are ordinary files,
unreadable files say so, and table surprises (a repeated column, a category or a class a split
never saw) are named.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from supernet import load_subnet
from supernet.data.datasets import load_data
from supernet.data.tables import load_table
from supernet.errors import UsageError
from supernet.files import run_dir_lock
from supernet.io.checkpoint import load_supernet, read_checkpoint, resolve_checkpoint
from supernet.io.export import ARCH_FILE, WEIGHTS_FILE, export_subnet

from conftest import BIN, kill_when, read_json, run_cli

ARCH = (64, 32)
TRAIN_ARGS = ["trainer.max_epochs=3", "trainer.deterministic=true", "trainer.enable_progress_bar=false", "logger=none"]


@pytest.fixture(scope="module")
def supernet(digits_ckpt):
    return load_supernet(digits_ckpt)


@pytest.fixture(scope="module")
def verify_x(supernet):
    from supernet.io.checkpoint import data_config

    return load_data(data_config(supernet)).val_x[:32]


def _export(supernet, verify_x, out: Path, overwrite: bool = False, arch=ARCH) -> dict:
    return export_subnet(supernet, arch, out, overwrite=overwrite, verify_x=verify_x, onnx=False)


def _dead_pid() -> int:
    """The pid of a process that has ended (a killed writer)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _weights(ckpt: Path) -> dict:
    payload = read_checkpoint(ckpt)
    return {**payload["state_dict"], **{f"raw.{k}": v for k, v in payload.get("current_model_state", {}).items()}}


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------- 1. reruns
@pytest.mark.slow
def test_rerun_into_a_trained_run_dir_is_refused_and_never_versions(tmp_path):
    run = tmp_path / "x"
    args = ["trainer.enable_progress_bar=false", "logger=none", f"hydra.run.dir={run}"]
    assert run_cli("supernet-train", "trainer.max_epochs=1", *args).returncode == 0
    before = _snapshot(run / "checkpoints")
    proc = run_cli("supernet-train", "trainer.max_epochs=2", *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        f"error: hydra.run.dir={run} already holds a training run (checkpoints/last.ckpt): "
        f"resume it with ckpt_path={run}, or pick a new hydra.run.dir" in proc.stderr
    )
    assert _snapshot(run / "checkpoints") == before  # nothing written or deleted
    # Resuming in place continues it, and writes over its own files: never a `-v1` sibling.
    proc = run_cli("supernet-train", "trainer.max_epochs=2", f"ckpt_path={run}", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["epoch001.ckpt", "last.ckpt"], names
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 1
    assert read_json(run / "result.json")["epochs"] == 2


@pytest.mark.slow
def test_training_into_a_locked_run_dir_is_refused(tmp_path):
    run = tmp_path / "busy"
    with run_dir_lock(run, "training"):
        proc = run_cli("supernet-train", "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={run}")
    assert proc.returncode == 2
    assert f"error: another training is using {run}" in proc.stderr
    assert not (run / "checkpoints").exists()


# ---------------------------------------------------------------------------- 2. killed before last.ckpt
def test_run_dir_without_last_ckpt_resolves_to_its_newest_complete_epoch(tmp_path, digits_ckpt):
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    good = digits_ckpt.read_bytes()
    (checkpoints / "epoch000.ckpt").write_bytes(good)
    (checkpoints / "epoch002.ckpt").write_bytes(good)
    (checkpoints / "epoch010.ckpt").write_bytes(good[: len(good) // 2])  # truncated: skipped
    leftovers = [checkpoints / f".last.ckpt.{_dead_pid()}.tmp", checkpoints / "last.ckpt.tmp"]
    for p in leftovers:
        p.write_bytes(good[:100])
    live = checkpoints / f".last.ckpt.{os.getpid()}.tmp"  # a writer still at work keeps its file
    live.write_bytes(b"")
    assert resolve_checkpoint(tmp_path / "run") == checkpoints / "epoch002.ckpt"
    assert not any(p.exists() for p in leftovers) and live.exists()
    for p in checkpoints.glob("epoch*.ckpt"):
        p.unlink()
    with pytest.raises(UsageError, match="without checkpoints/last.ckpt or a complete checkpoints/epochNNN.ckpt"):
        resolve_checkpoint(tmp_path / "run")


@pytest.mark.slow
def test_run_killed_before_last_ckpt_resumes_bit_identically(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_cli("supernet-train", *TRAIN_ARGS, f"hydra.run.dir={full}").returncode == 0
    checkpoints = killed / "checkpoints"
    kill_when(
        [str(BIN / "supernet-train"), *TRAIN_ARGS, f"hydra.run.dir={killed}"],
        lambda: any(checkpoints.glob("epoch*.ckpt")),
    )
    (checkpoints / "last.ckpt").unlink(missing_ok=True)  # killed between epochNNN.ckpt and last.ckpt
    (checkpoints / f".last.ckpt.{_dead_pid()}.tmp").write_bytes(b"half a checkpoint")
    assert not (killed / "result.json").exists()
    proc = run_cli("supernet-train", *TRAIN_ARGS, f"ckpt_path={killed}", f"hydra.run.dir={tmp_path / 'resume'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {p.name for p in checkpoints.iterdir()}
    # Only what the policy keeps: not the epoch000.ckpt it resumed from (Lightning spares that
    # one), a temporary file or a `-v1` sibling (issue 39 N13).
    assert names == {"epoch002.ckpt", "last.ckpt"}, names
    a, b = _weights(full / "checkpoints" / "last.ckpt"), _weights(checkpoints / "last.ckpt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert read_json(full / "result.json")["global_step"] == read_json(killed / "result.json")["global_step"]


# ---------------------------------------------------------------------------- 3. overwrite
def test_overwrite_keeps_a_folder_that_is_not_an_export(supernet, verify_x, tmp_path):
    v = tmp_path / "v"
    (v / "src").mkdir(parents=True)
    (v / ARCH_FILE).write_text("foo: bar\n")
    (v / "src" / "main.py").write_text("print(1)\n")
    before = _snapshot(v)
    with pytest.raises(UsageError) as err:
        _export(supernet, verify_x, v, overwrite=True)
    assert str(err.value) == (
        f"out={v} is not an export written by supernet-export (it holds src/): pick another out, or empty it yourself"
    )
    (v / "src" / "main.py").unlink()
    (v / "src").rmdir()
    with pytest.raises(UsageError, match=r"it holds arch.yaml without format: supernet-subnet"):
        _export(supernet, verify_x, v, overwrite=True)
    assert (v / ARCH_FILE).read_text() == "foo: bar\n"
    # A real export with a file of the user's added is not replaced either.
    out = tmp_path / "e"
    _export(supernet, verify_x, out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"it holds notes.txt\)"):
        _export(supernet, verify_x, out, overwrite=True, arch=(16,))
    assert (out / "notes.txt").read_text() == "mine" and load_subnet(out).arch == ARCH
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e", "v"]  # no temp dir left
    assert before.keys() >= {"arch.yaml"}


@pytest.mark.slow
def test_cli_overwrite_keeps_the_users_files(digits_ckpt, tmp_path):
    v = tmp_path / "v"
    (v / "src").mkdir(parents=True)
    (v / ARCH_FILE).write_text("foo: bar\n")
    (v / "src" / "main.py").write_text("print(1)\n")
    proc = run_cli(
        "supernet-export",
        f"ckpt_path={digits_ckpt}",
        "arch=[64,32]",
        f"out={v}",
        "overwrite=true",
        f"hydra.run.dir={tmp_path / 'job'}",
    )
    assert proc.returncode == 2
    assert f"error: out={v} is not an export written by supernet-export (it holds src/)" in proc.stderr
    assert (v / "src" / "main.py").read_text() == "print(1)\n"


def test_overwrite_replaces_an_export_and_cleans_what_a_killed_export_left(supernet, verify_x, tmp_path):
    out = tmp_path / "sub"
    _export(supernet, verify_x, out)
    dead = tmp_path / f".sub.tmp-{_dead_pid()}-0a1b2c3d"
    old_style = tmp_path / ".sub.tmp-k2j4h5g6"  # tempfile.mkdtemp's name, from before the pid
    moved_aside = tmp_path / ".sub.old-12-34"
    for leftover in (dead, old_style, moved_aside):
        leftover.mkdir()
        (leftover / WEIGHTS_FILE).write_bytes(b"half")
    alive = tmp_path / f".sub.tmp-{os.getpid()}-ffffffff"  # an export writing right now
    alive.mkdir()
    others = tmp_path / ".subway.tmp-1-2"  # another out's (".subway"), never touched
    others.mkdir()
    _export(supernet, verify_x, out, overwrite=True, arch=(16,))
    assert load_subnet(out).arch == (16,)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".subway.tmp-1-2", alive.name, "sub"])


# ---------------------------------------------------------------------------- 4. permissions
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_export_files_follow_the_umask(supernet, verify_x, tmp_path, umask):
    previous = os.umask(umask)
    try:
        out = tmp_path / "sub"
        _export(supernet, verify_x, out)
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes == dict.fromkeys([ARCH_FILE, WEIGHTS_FILE], 0o666 & ~umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask


def _deny_open(monkeypatch, name: str) -> None:
    """Opening any file called `name` fails as it would for a user without read permission (the
    tests run as root, whom chmod 000 does not stop)."""
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if Path(str(file)).name == name:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)


def test_unreadable_files_say_permission_denied(supernet, verify_x, tmp_path, monkeypatch, digits_ckpt):
    out = tmp_path / "sub"
    _export(supernet, verify_x, out)
    table = tmp_path / "t.csv"
    table.write_text("a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(30)))
    with monkeypatch.context() as m:
        _deny_open(m, WEIGHTS_FILE)
        with pytest.raises(UsageError) as err:
            load_subnet(out)
    assert str(err.value).startswith(f"subnet={out}: cannot read {WEIGHTS_FILE} (permission denied)")
    with monkeypatch.context() as m:
        _deny_open(m, digits_ckpt.name)
        with pytest.raises(UsageError, match=r"cannot read the checkpoint \(permission denied\)"):
            load_supernet(digits_ckpt)
    with monkeypatch.context() as m:
        _deny_open(m, table.name)
        with pytest.raises(UsageError, match=rf"data.path={table}: cannot read the file \(permission denied\)"):
            load_table({"name": "csv", "path": str(table), "target": "label"})


# ---------------------------------------------------------------------------- 5. tables
def test_repeated_column_name_is_an_error_naming_it(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,label\n" + "".join(f"{i},{i % 3},{-i},{'xy'[i % 2]}\n" for i in range(30)))
    with pytest.raises(UsageError, match=r"column 'a' appears more than once in the header"):
        load_table({"name": "csv", "path": str(path), "target": "label"})
    # A name that only looks like pandas' renaming is a column like any other.
    path.write_text("a,a.1,label\n" + "".join(f"{i},{-i},{'xy'[i % 2]}\n" for i in range(30)))
    raw = load_table({"name": "csv", "path": str(path), "target": "label"})
    assert [c["name"] for c in raw.preprocess["columns"]] == ["a", "a.1"]


def test_unseen_test_categories_and_tiny_classes_are_logged(tmp_path, caplog):
    rng = np.random.default_rng(0)
    n = 60
    train = pd.DataFrame(
        {"x": rng.normal(size=n), "color": rng.choice(["red", "blue"], size=n), "label": ["a", "b"] * (n // 2)}
    )
    train.loc[[0, 1], "label"] = "rare"  # 2 rows: below one row of a 20% split
    test = train.head(20).copy()
    test.loc[[2, 3], "color"] = "purple"
    test.loc[4, "color"] = "teal"
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    train.to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    caplog.set_level(logging.INFO)
    cfg = {"name": "csv", "path": str(train_path), "target": "label", "val_size": 0.2, "split_seed": 0}
    load_data({**cfg, "test_path": str(test_path)})
    assert re.search(
        rf"data.test_path={test_path}: column 'color' has 3 row\(s\) with categories the training rows never had "
        r"\(purple=2, teal=1\)",
        caplog.text,
    )
    assert "data=csv: class 'rare' (2 rows) too small to appear in the validation split" in caplog.text
    caplog.clear()
    load_data(cfg)  # the carved test split misses it too
    assert f"data.path={train_path}: class 'rare' (2 rows) too small to appear in the test split" in caplog.text
    assert "never had" not in caplog.text


# ---------------------------------------------------------------------------- 6. an export is not a supernet
def test_an_export_passed_as_ckpt_path_says_what_to_pass(supernet, verify_x, tmp_path):
    out = tmp_path / "sub"
    _export(supernet, verify_x, out)
    for path in (out, out / WEIGHTS_FILE, out / ARCH_FILE):
        with pytest.raises(UsageError) as err:
            load_supernet(path)
        assert str(err.value) == (
            f"ckpt_path={path} is an exported subnet (arch.yaml), not a supernet: pass a supernet .ckpt, a training "
            f"run dir or 'last' (supernet-retrain subnet={out} takes exports)"
        )


@pytest.mark.slow
def test_search_pointed_at_an_export_is_one_line(supernet, verify_x, tmp_path):
    out = tmp_path / "sub"
    _export(supernet, verify_x, out)
    proc = run_cli("supernet-search", f"ckpt_path={out}", "logger=none", f"hydra.run.dir={tmp_path / 's'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: ckpt_path={out} is an exported subnet (arch.yaml), not a supernet: pass a supernet .ckpt, "
        f"a training run dir or 'last' (supernet-retrain subnet={out} takes exports)"
    )
