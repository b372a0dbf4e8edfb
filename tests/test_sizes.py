"""Modules and functions that fit on a screen (issue 38): no module of `supernet/` over 450 lines,
no function over 60 (its `def` line to its last line, decorators not counted)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "supernet"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def long_module(path: Path, root: Path = ROOT) -> list[str]:
    """``<file> (<n> lines)`` when `path` is over `MAX_MODULE_LINES` lines."""
    lines = len(path.read_text().splitlines())
    return [f"{path.relative_to(root)} ({lines} lines)"] if lines > MAX_MODULE_LINES else []


def long_functions(path: Path, root: Path = ROOT) -> list[str]:
    """``<file>:<line> <name> (<n> lines)`` for each function or method of `path` over
    `MAX_FUNCTION_LINES` lines."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_module_is_over_450_lines():
    long = [m for p in sorted(PACKAGE.rglob("*.py")) for m in long_module(p)]
    assert long == [], f"modules over {MAX_MODULE_LINES} lines (split them, one job a module): {long}"


def test_no_function_is_over_60_lines():
    long = [f for p in sorted(PACKAGE.rglob("*.py")) for f in long_functions(p)]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_checks_name_what_is_too_long(tmp_path):
    """The checks themselves: a function of 61 lines and a module of 451 are named, 60 and 450 are not."""
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    module = tmp_path / "m.py"
    module.write_text(f"def long():\n{body}\n    return 0\n\n\ndef short():\n{body}\n")
    assert long_functions(module, tmp_path) == ["m.py:1 long (61 lines)"]
    module.write_text("x = 0\n" * 450)
    assert long_module(module, tmp_path) == []
    module.write_text("x = 0\n" * 451)
    assert long_module(module, tmp_path) == ["m.py (451 lines)"]
