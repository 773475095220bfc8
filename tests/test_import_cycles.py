"""Imports inside landforge run one way: no cycles, not even through function-local imports.

Every ``import``/``from ... import`` of a landforge module anywhere in a module (top
level or inside a function) is an edge; a package's ``__init__`` counts as a module.
``from landforge.x import name`` is an edge to ``landforge.x.name`` when that is a
module, else to ``landforge.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import landforge

ROOT = Path(landforge.__file__).resolve().parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        for t in targets:
            if t.startswith("landforge"):
                resolved = _resolve(t)
                if resolved and resolved != module:
                    out.add(resolved)
    return out


def _parents(module: str) -> set[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first: not an edge of ours."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def find_cycles() -> list[list[str]]:
    graph = {m: _edges(m, p) - _parents(m) for m, p in MODULES.items()}
    # a package __init__ that re-exports its own submodules is fine: drop init -> child
    for m, deps in graph.items():
        if MODULES[m].name == "__init__.py":
            graph[m] = {d for d in deps if not d.startswith(m + ".")}
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_import_cycles():
    cycles = find_cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_finder_sees_function_local_cycles(tmp_path, monkeypatch):
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text("def f():\n    from landforge.b import g\n")
    b.write_text("import landforge.a\n")
    monkeypatch.setitem(globals(), "MODULES", {"landforge.a": a, "landforge.b": b})
    assert find_cycles() == [["landforge.a", "landforge.b", "landforge.a"]]


def test_stage_table_in_docs_is_current():
    import subprocess
    import sys

    tool = ROOT.parents[1] / "tools" / "stage_table.py"
    if not tool.exists():  # an installed package without the repository around it
        pytest.skip("tools/stage_table.py not found")
    proc = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
