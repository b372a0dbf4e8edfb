"""The package's layers, as docs/architecture.md states them, held by the import graph.

Every import inside `supernet/` (at the top of a file, in a function, or under TYPE_CHECKING) is an
edge between two files. The graph has no circle, and no edge points up the order below; the search
never imports Lightning, and only the estimators import the command layer.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "supernet"

# docs/architecture.md, first paragraph: each layer may import only the layers before it.
LAYERS = (
    ("errors", "files", "signals"),
    ("core",),
    ("data",),
    ("config", "io", "evaluation"),
    ("fidelity", "search"),
    ("train",),
    ("commands", "baseline"),
    ("sklearn",),
    ("", "__main__"),  # the lazy top-level API and `python -m supernet`
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement can load (a `from` import: the module and each name,
    or only the submodules it names)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([node.module] if node.module else []))
    names = [f"{base}.{alias.name}" for alias in node.names]
    # `from supernet import signals` imports the module, not the package's API.
    return names if all(n in FILES for n in names) else [base, *names]


FILES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(module: str) -> set[str]:
    """Every dotted name `module`'s file imports, anywhere in it."""
    path = FILES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return {t for node in ast.walk(ast.parse(path.read_text())) for t in imported(node, package)}


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Each module of `supernet/` -> the modules of `supernet/` it imports."""
    return {m: frozenset(t for t in imports_of(m) if t in FILES and t != m) for m in FILES}


def reachable(graph: dict[str, set[str]], start: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def layer(module: str) -> int:
    head = module.split(".")[1] if "." in module else ""
    return next(i for i, names in enumerate(LAYERS) if head in names)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_every_file():
    graph = import_graph()
    assert len(graph) == len(list(PACKAGE.rglob("*.py")))
    assert "supernet.core.space" in graph["supernet.core.supermlp"]
    assert "supernet.data.datasets" in graph["supernet.data.tables"]


def test_no_import_circle_between_files():
    assert circles(import_graph()) == []


def test_circles_are_found():
    """The check itself: a circle of three and a self-contained chain."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_every_module_has_a_layer():
    for module in import_graph():
        layer(module)  # raises StopIteration for a package the order does not name


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_no_import_points_up_the_order(module):
    up = sorted(t for t in import_graph()[module] if layer(t) > layer(module))
    assert up == [], f"{module} (layer {layer(module)}) imports a later layer: {up}"


def test_only_the_estimators_import_the_commands():
    graph = import_graph()
    importers = {m for m, targets in graph.items() if any(t.startswith("supernet.commands") for t in targets)}
    assert {m.split(".")[1] for m in importers} <= {"commands", "sklearn", "__main__"}


def test_the_search_never_imports_lightning():
    """Not even through what it imports: the search scores archs with plain torch."""
    search = [m for m in FILES if m.startswith("supernet.search")]
    lightning = {m for m in reachable(import_graph(), search) if {"pytorch_lightning", "lightning"} & top_names(m)}
    assert search and lightning == set()


def top_names(module: str) -> set[str]:
    return {name.split(".")[0] for name in imports_of(module)}
