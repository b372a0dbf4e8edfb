"""Where ``resume=`` points: one lookup for every command that continues a run in place.

``resume=true`` is the newest run under the command's runs dir that holds its marker file (the
pipeline's request, the search's state); ``resume=<dir>`` is that dir, which must hold it;
``false`` is a new run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from supernet.errors import UsageError


def newest_run(resume: Any, runs: Path, marker: str, what: str) -> Path | None:
    """The run dir `resume` names (see the module docstring); `what` names the command's runs
    (``pipeline``, ``search``) in the one-line errors."""
    if resume in (False, None, "false"):
        return None
    if resume in (True, "true"):
        found = sorted(runs.glob(f"*/{marker}"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise UsageError(f"resume=true: no {what} run with {marker} under {runs}/")
        return found[-1].parent
    path = Path(str(resume))
    if not (path / marker).is_file():
        raise UsageError(f"resume={resume}: {path} has no {marker}; pass a {what} run dir or resume=true")
    return path
