"""Command-line overrides checked before Hydra or a job runs: keys that exist, dirs that can be written.

Hydra reports a mistyped key in several lines and accepts a mistyped ``+key`` silently; here both
become one line, with a close key suggested (``did you mean search.budget?``).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from supernet.errors import UsageError

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
    """The run dir a command will write must be writable: say so before Hydra or any work starts."""
    target = _dir_arg(argv, ("hydra.run.dir",)) or Path("outputs") / task
    probe_dir = target
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    key = "hydra.run.dir" if _dir_arg(argv, ("hydra.run.dir",)) else "outputs/"
    if probe_dir.exists() and not probe_dir.is_dir():
        raise UsageError(f"{key}={target}: {probe_dir} is a file, not a directory; pick another hydra.run.dir")
    probe = probe_dir / f".supernet-write-test-{id(argv)}"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"{key}={target} is not writable ({probe_dir}: {exc.strerror.lower()}); pick another hydra.run.dir"
        ) from None


def explicit_overrides() -> set[str]:
    """The keys the user set on this command line (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return set()
    return {o.lstrip("+~").split("=", 1)[0] for o in overrides}


def is_explicit(key: str, explicit: set[str]) -> bool:
    """Whether `key` (``search.finetune.top``) or a node above it was set on the command line."""
    parts = key.split(".")
    return any(".".join(parts[:i]) in explicit for i in range(1, len(parts) + 1))


def differences(saved: Any, asked: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf where two plain configs differ, as (dotted key, saved value, asked value)."""
    if isinstance(saved, dict) and isinstance(asked, dict):
        keys = sorted(set(saved) | set(asked), key=str)
        return [d for k in keys for d in differences(saved.get(k), asked.get(k), f"{key}.{k}" if key else str(k))]
    return [] if saved == asked else [(key, saved, asked)]
