"""Command-line overrides checked before Hydra or a job runs: keys that exist, dirs that can be written.

Hydra reports a mistyped key in several lines and accepts a mistyped ``+key`` silently; here both
become one line, with a close key suggested (``did you mean search.budget?``).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from supernet.errors import UsageError
from supernet.files import check_dir_writable

# Folders of conf/ that are no config group of ours: Hydra's own settings, and the shared blocks
# (read through the defaults lists that include them).
SKIP_DIRS = ("hydra", "blocks")


def _flatten(node: Any, prefix: str) -> Iterable[str]:
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        if key == "defaults":
            continue
        full = f"{prefix}.{key}" if prefix else str(key)
        yield full
        yield from _flatten(value, full)


def _package(entry: str, here: str) -> tuple[str, str]:
    """A defaults-list entry ``/blocks/model@model`` or ``optim: adamw`` as (config path, package)."""
    path, _, package = entry.partition("@")
    package = here if package in ("", "_here_") and not path.startswith("/") else package
    package = here if package == "_here_" else package
    return path.strip("/"), package


def _config_keys(conf: Path, rel: str, package: str) -> set[str]:
    file = conf / f"{rel}.yaml"
    if not file.is_file():
        return set()
    doc = yaml.safe_load(file.read_text()) or {}
    keys = set(_flatten(doc, package))
    for entry in doc.get("defaults") or []:
        if isinstance(entry, str) and entry != "_self_" and "/" in entry:
            path, pkg = _package(entry, package)
            keys |= _config_keys(conf, path, pkg)
    return keys


@functools.cache
def known_keys(conf: Path) -> frozenset[str]:
    """Every key some command's config defines: the primary configs, each group's options, the blocks."""
    keys: set[str] = set()
    for file in conf.glob("*.yaml"):
        keys |= _config_keys(conf, file.stem, "")
    for group in conf.iterdir():
        if group.is_dir() and group.name not in SKIP_DIRS:
            keys.add(group.name)
            for file in group.rglob("*.yaml"):
                keys |= _config_keys(conf, str(file.relative_to(conf).with_suffix("")), group.name)
    keys |= {f"retrain.optim.{k.split('.', 1)[1]}" for k in keys if k.startswith("optim.")}
    return frozenset(keys)


def suggestion(key: str, conf: Path) -> str:
    close = difflib.get_close_matches(key, sorted(known_keys(conf)), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def console_name(config_name: str) -> str:
    """``pipeline`` -> ``supernet``, ``train`` -> ``supernet-train``."""
    return "supernet" if config_name == "pipeline" else f"supernet-{config_name}"


@functools.cache
def command_sections(conf: Path, config_name: str) -> frozenset[str]:
    """The top-level names a command's config has (its own keys, its groups, the packages of its
    blocks): a key under any other name is one this command never reads."""
    doc = yaml.safe_load((conf / f"{config_name}.yaml").read_text()) or {}
    names = {k for k in doc if k != "defaults"}
    for entry in doc.get("defaults") or []:
        if isinstance(entry, dict):
            names |= {str(group).split("@")[-1].split("/")[0].split(".")[0] for group in entry}
        elif entry != "_self_":
            names.add(_package(entry, "")[1].split(".")[0])
    return frozenset(names - {"hydra", "override hydra"})


def _not_read_here(item: str, key: str, conf: Path, config_name: str | None) -> UsageError | None:
    """A key some other command reads but `config_name`'s never does: say so (None when it may)."""
    top = key.split(".")[0]
    if config_name is None or top in command_sections(conf, config_name):
        return None
    readers = [console_name(f.stem) for f in sorted(conf.glob("*.yaml")) if top in command_sections(conf, f.stem)]
    read_by = f" ({', '.join(readers)} read it)" if readers else ""
    command = console_name(config_name)
    return UsageError(f"{item}: {command} reads no {top} setting, so it does nothing here{read_by}; drop it")


def check_appended_keys(overrides: Iterable[str], conf: Path, config_name: str | None = None) -> None:
    """Refuse ``+key=value`` for a key no config defines, or one `config_name`'s command never reads."""
    for item in overrides:
        if not item.startswith("+") or item.startswith("++"):
            continue
        key = item[1:].split("=", 1)[0].split("@", 1)[0]
        if key not in known_keys(conf):
            raise UsageError(f"{item}: no command reads {key}{suggestion(key, conf)}; drop it or fix the key")
        if (conf / key).is_dir():  # +experiment=<preset>: a group that sets keys anywhere
            continue
        if (error := _not_read_here(item, key, conf, config_name)) is not None:
            raise error


def check_keys(overrides: Iterable[str], conf: Path, config_name: str | None = None) -> None:
    """``key=value`` for a key no config defines, or (`config_name`) a group or key that command
    never reads, is refused in one line, with a close key if any."""
    for item in overrides:
        if item.startswith(("-", "+", "~")) or "=" not in item:
            continue
        key, value = item.split("=", 1)
        if key.startswith(("hydra.", "hydra/")) or "@" in key:
            continue
        if (conf / key).is_dir() or key in known_keys(conf):
            if (error := _not_read_here(item, key, conf, config_name)) is not None:
                raise error
            if (conf / key).is_dir():
                check_group_option(conf, key, value)
            continue
        raise UsageError(f"Could not override '{key}': no such key{suggestion(key, conf)}; see --help for the keys")


def check_group_option(conf: Path, group: str, value: str) -> None:
    """``data=nope``: the option must be a file of the group (each of a sweep's ``a,b``)."""
    options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
    for option in value.split(","):
        if option not in options and option != "null":
            raise UsageError(f"Could not find '{group}/{option}'; {group}= takes one of {', '.join(options)}")


def _dir_arg(argv: Iterable[str], keys: tuple[str, ...]) -> Path | None:
    for item in argv:
        key, sep, value = item.lstrip("+").partition("=")
        if sep and key in keys and value not in ("", "true", "false", "null"):
            return Path(value)
    return None


def check_writable(argv: list[str], task: str) -> None:
    """The run dir a command will write must be writable: say so before Hydra or any work starts.
    Without ``hydra.run.dir``, a ``resume=<dir>`` writes into that dir (`resume_run_dir_args`)."""
    run_dir = _dir_arg(argv, ("hydra.run.dir",))
    resumed = None if run_dir else resumed_dir(_resume_arg(argv), task)
    if resumed is not None:
        fix = "copy the run dir somewhere writable and resume the copy"
        check_dir_writable(resumed, f"resume={_resume_arg(argv)}", fix)
        return
    target = run_dir or Path("outputs") / task
    key = "hydra.run.dir" if run_dir else "outputs/"
    check_dir_writable(target, f"{key}={target}", "pick another hydra.run.dir")


# ---------------------------------------------------------------------------- resume
RESUME_FILES = {"pipeline": "pipeline_request.json", "search": "search_state.json"}  # what marks a run to resume


def runs_dir(task: str) -> Path:
    """Where a command's runs go without ``hydra.run.dir`` (conf/hydra/default.yaml)."""
    return Path("outputs") / task / "runs"


def resumed_dir(resume: Any, task: str) -> Path | None:
    """The run dir ``resume=`` names: ``true`` the newest run under `runs_dir` with the task's
    `RESUME_FILES` entry, a path that dir when it holds that file; None otherwise (not resuming,
    or nothing to resume: the job then says which)."""
    marker = RESUME_FILES.get(task)
    if marker is None or resume in (False, None, "", "false", "null"):
        return None
    if resume in (True, "true"):
        runs = sorted(runs_dir(task).glob(f"*/{marker}"), key=lambda p: p.stat().st_mtime)
        return runs[-1].parent if runs else None
    path = Path(str(resume))
    return path if (path / marker).is_file() else None


def _resume_arg(argv: Iterable[str]) -> str | None:
    return next((item.partition("=")[2] for item in argv if item.lstrip("+").startswith("resume=")), None)


def resume_run_dir_args(argv: list[str], task: str) -> list[str]:
    """Hydra's run-dir overrides for a ``resume=<dir>`` without ``hydra.run.dir``: the resumed dir
    itself, and no ``.hydra/`` there (it keeps the first run's config, which supernet-report reads).
    Hydra makes its run dir before the job starts, so without them a resume would leave an empty
    ``outputs/<task>/runs/<stamp>/`` behind. None for a sweep, or a path Hydra would parse."""
    if _dir_arg(argv, ("hydra.run.dir",)) or any(a in ("-m", "--multirun") for a in argv):
        return []
    resumed = resumed_dir(_resume_arg(argv), task)
    if resumed is None or not re.fullmatch(r"[\w./@+:~-]+", str(resumed)):
        return []
    return [f"hydra.run.dir={resumed}", "hydra.output_subdir=null"]


def explicit_overrides() -> set[str]:
    """The keys the user set on this command line (empty outside Hydra)."""
    return set(typed_overrides())


def typed_overrides() -> dict[str, str]:
    """The overrides of this command line as typed, by key (``data`` -> ``data=friedman``)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return {}
    return {o.lstrip("+~").split("=", 1)[0]: str(o) for o in overrides}


def explicit_node(key: str, explicit: set[str] | dict[str, str]) -> str | None:
    """The most specific key set on the command line that `key` is, or lies under (``data`` for
    ``data.batch_size`` after ``data=friedman``); None when neither was set."""
    parts = key.split(".")
    return next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in explicit), None)


def is_explicit(key: str, explicit: set[str]) -> bool:
    """Whether `key` (``search.finetune.top``) or a node above it was set on the command line."""
    return explicit_node(key, explicit) is not None


def differences(saved: Any, asked: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf where two plain configs differ, as (dotted key, saved value, asked value)."""
    if isinstance(saved, dict) and isinstance(asked, dict):
        keys = sorted(set(saved) | set(asked), key=str)
        return [d for k in keys for d in differences(saved.get(k), asked.get(k), f"{key}.{k}" if key else str(k))]
    return [] if saved == asked else [(key, saved, asked)]
