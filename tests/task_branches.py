"""Where `supernet/` outside `core/` branches on classification versus regression (issue 38).

A branch site is a conditional whose test names the task's kind: an ``if``/``elif``, a ternary, a
comprehension's ``if``, a ``match``, an ``and``/``or`` expression outside those tests, or a flag
(a name bound to a comparison, ``not`` or ``and``/``or``: a decision kept for later), whose source
mentions one of `MARKERS`. The decisions belong to `supernet.core.task.Task` (and the small
task-keyed tables of `supernet.core`), which callers ask instead.

    python tests/task_branches.py          # the count and every site
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "supernet"
MARKERS = (
    "is_regression",
    "task.kind",
    ".kind ==",
    ".kind !=",
    "REGRESSION",
    "CLASSIFICATION",
    '"regression"',
    '"classification"',
    "'regression'",
    "'classification'",
)


def _tests(tree: ast.AST) -> list[ast.expr]:
    """Every condition of `tree`: if/elif, while and ternary tests, comprehension ifs, match
    subjects, and the and/or expressions that are none of those (nor inside one)."""
    tests: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp, ast.While)):
            tests.append(node.test)
        elif isinstance(node, ast.comprehension):
            tests.extend(node.ifs)
        elif isinstance(node, ast.Match):
            tests.append(node.subject)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(
            node.value, (ast.Compare, ast.UnaryOp, ast.BoolOp)
        ):
            tests.append(node.value)
    inside = {id(n) for t in tests for n in ast.walk(t)}
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and id(node) not in inside:
            tests.append(node)
            inside |= {id(n) for n in ast.walk(node)}
    return tests


def branch_sites(package: Path = PACKAGE) -> list[str]:
    """``<file>:<line>: <test>`` for each branch on the task's kind outside `core/`."""
    sites = []
    for path in sorted(package.rglob("*.py")):
        if "core" in path.relative_to(package).parts[:1]:
            continue
        source = path.read_text()
        for test in _tests(ast.parse(source)):
            text = ast.get_source_segment(source, test) or ""
            if any(marker in text for marker in MARKERS):
                where = path.relative_to(package.parent)
                sites.append(f"{where}:{test.lineno}: {' '.join(text.split())}")
    return sorted(sites, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


if __name__ == "__main__":
    found = branch_sites()
    print("\n".join(found))
    print(f"{len(found)} branch sites on the task's kind outside supernet/core/")
