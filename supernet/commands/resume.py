"""Where ``resume=`` points: one lookup for every command that continues a run in place.

``resume=true`` is the newest run under the command's runs dir that holds its marker file (the
pipeline's request, the search's state: `overrides.RESUME_FILES`); ``resume=<dir>`` is that dir,
which must hold it; ``false`` is a new run. The command line uses the same lookup
(`overrides.resumed_dir`) to write into the resumed dir before Hydra starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from supernet.commands.overrides import RESUME_FILES, resumed_dir, runs_dir
from supernet.errors import UsageError


def newest_run(resume: Any, task: str) -> Path | None:
    """The run dir `resume` names for command `task` (``pipeline``, ``search``), or a one-line error."""
    if resume in (False, None, "", "false", "null"):
        return None
    found = resumed_dir(resume, task)
    if found is not None:
        return found
    marker, runs = RESUME_FILES[task], runs_dir(task)
    if resume in (True, "true"):
        raise UsageError(f"resume=true: no {task} run with {marker} under {runs}/")
    raise UsageError(f"resume={resume}: {Path(str(resume))} has no {marker}; pass a {task} run dir or resume=true")
