"""Numbers in the words and tables that people read (verdicts, reports).

Kept apart from the modules that compute them so that a report can format without importing
scipy or torch.
"""

from __future__ import annotations


def signed(x: float, digits: int = 2) -> str:
    """``+0.03`` / ``-0.10``; a value that rounds to zero is ``+0.00``, never ``-0.00``."""
    return f"{round(x, digits) + 0.0:+.{digits}f}"
