"""Plain files written safely: atomic text/JSON writes and plain-data conversion.

Every file a job writes goes through `atomic_write_text` (a temporary sibling, fsync, rename), so a
reader or a resumed job never sees half a file. `to_plain` turns configs, tensors and tuples into
JSON/YAML-safe data; it is the one converter the checkpoints, states and exports use.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# The YAML under conf/ is the single source of defaults; library code reads its blocks from here.
CONF_DIR = Path(os.environ.get("SUPERNET_CONF", Path(__file__).resolve().parent.parent / "conf"))


def conf_node(name: str, drop: tuple[str, ...] = ("defaults",)) -> dict[str, Any]:
    """``conf/<name>.yaml`` as plain data without its defaults list (and the `drop` keys): the
    defaults a library entry point fills in when it is called without Hydra. A value that follows
    the data set (``${oc.select:data.default_pipeline.<key>,<default>}``) is its default here."""
    import yaml

    text = (CONF_DIR / f"{name}.yaml").read_text()
    doc = yaml.safe_load(text) or {}
    doc = {k: v for k, v in doc.items() if k not in drop}
    if "${" in text:
        from omegaconf import OmegaConf

        doc = OmegaConf.to_container(OmegaConf.create(doc), resolve=True)
    return doc


def to_plain(obj: Any) -> Any:
    """Plain JSON/YAML-safe data: OmegaConf nodes resolved, tuples as lists, numpy/torch scalars
    as Python numbers; anything else unknown as its string."""
    if type(obj).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return to_plain(OmegaConf.to_container(obj, resolve=True))
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [to_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # before the plain types: np.float64 is a float
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a hidden temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, payload: Mapping) -> None:
    """Atomic JSON write: a reader never sees half a file."""
    atomic_write_text(path, json.dumps(to_plain(payload), indent=2) + "\n")


def read_json_object(path: Path, key: str) -> dict[str, Any]:
    """A JSON file that must hold an object; anything else is a one-line `UsageError` naming `key`."""
    from supernet.errors import UsageError

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{key}: {path} is not readable JSON ({type(exc).__name__})") from exc
    if not isinstance(doc, dict):
        raise UsageError(f"{key}: {path} holds JSON {type(doc).__name__}, not an object")
    return doc


def check_dir_writable(target: Path, what: str, fix: str) -> None:
    """`target` (made later where it is absent) can be written: its nearest existing folder is a
    directory that takes a file. Said in one line before any work, not as an OSError at the first
    write; `what` names the setting (``hydra.run.dir=X``), `fix` what to do instead."""
    from supernet.errors import UsageError

    probe_dir = Path(target)
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if probe_dir.exists() and not probe_dir.is_dir():
        raise UsageError(f"{what}: {probe_dir} is a file, not a directory; {fix}")
    probe = probe_dir / f".supernet-write-test-{os.getpid()}"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{what} is not writable ({probe_dir}: {_reason(exc)}); {fix}") from None


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


@contextlib.contextmanager
def run_dir_lock(run_dir: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `run_dir` (``.lock`` inside it) while a job writes there, so two
    jobs never write one run dir; the second gets a one-line error. The OS drops the lock when the
    process dies, so a killed job never leaves a stale lock behind."""
    from supernet.errors import UsageError

    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / ".lock", "a+")  # noqa: SIM115 (held for the whole block)
    except OSError as exc:  # a read-only run dir: a job could write nothing there
        raise UsageError(f"{run_dir} is not writable ({_reason(exc)}); the {what} needs to write there") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise UsageError(f"another {what} is using {run_dir}: wait for it to finish, or use another run dir") from exc
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (on this machine): a temporary file or folder named after
    its writer's pid is a leftover only once that writer is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


# libyaml's C loader and dumper where PyYAML has them: a table export's arch.yaml holds its
# scalers' quantiles, thousands of numbers that the pure-Python ones take seconds over.
def load_yaml(text: str) -> Any:
    """``yaml.safe_load``, faster."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def dump_yaml(doc: Any) -> str:
    """``yaml.safe_dump(doc, sort_keys=False)``, faster."""
    import yaml

    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
