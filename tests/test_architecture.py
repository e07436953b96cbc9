"""The engine's shape: grader/ imports form a one-way graph (no cycle), and the
arrows point labs -> grader -> servers, never back. Read from the source with
ast, so a hidden import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO


def modules(package: Path) -> dict[str, Path]:
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def graph() -> dict[str, set[str]]:
    mods = modules(REPO / "grader")
    return {m: {t for t in imports_of(p) if t in mods and t != m and not m.startswith(t + ".")}
            for m, p in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_grader_has_no_import_cycle():
    assert cycles(graph()) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_arrows_point_one_way():
    for path in (REPO / "servers").rglob("*.py"):
        assert not any(name.split(".")[0] in ("grader", "labs", "bench")
                       for name in imports_of(path)), path
    for path in (REPO / "grader").rglob("*.py"):
        assert not any(name.split(".")[0] in ("labs", "bench", "tests")
                       for name in imports_of(path)), path
