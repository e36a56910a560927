"""No import circle among the toolchain's modules.

Every ``import`` and ``from ... import`` in ``toolchain/mnmcu`` is an edge,
wherever it stands: at the top of a module or inside a function. An import
inside a function does not fail at import time, but it still makes the two
modules depend on each other, and DESIGN.md's data flow runs one way. Only
imports under ``if TYPE_CHECKING:`` are left out (they are never executed).
An import of a package's submodule (``from mnmcu.emit import cgen``) is an
edge to that submodule; the package's ``__init__`` that Python runs first is
not counted, since a package importing its own submodules is no circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "toolchain" / "mnmcu"


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """The package's modules each import statement of ``tree`` reaches."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name:
                    yield name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    yield f"{source}.{alias.name}"  # a submodule
                elif source in modules:
                    yield source
        stack.extend(ast.iter_child_nodes(node))


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere but under TYPE_CHECKING)."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = set(_imports(tree, module, path.name == "__init__.py", set(files)))
        graph[module] = found - {module}
    return graph


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _path(graph: Mapping[str, set[str]], members: list[str]) -> list[str]:
    """One circle through the first member, for the failure message."""
    start = members[0]
    inside = set(members)
    trail = [start]
    seen = {start}
    while True:
        nxt = sorted(d for d in graph[trail[-1]] if d in inside)
        back = [d for d in nxt if d == start]
        if back and len(trail) > 1:
            return [*trail, start]
        fresh = [d for d in nxt if d not in seen]
        if not fresh:
            return [*trail, start]
        trail.append(fresh[0])
        seen.add(fresh[0])


def test_the_toolchain_has_no_import_circle() -> None:
    graph = import_graph()
    assert "mnmcu.pipeline" in graph and "mnmcu.emit.project" in graph
    found = circles(graph)
    assert not found, "import circles: " + "; ".join(" -> ".join(_path(graph, c)) for c in found)


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "mnmcu"
    (package / "emit").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "emit" / "__init__.py").write_text("from mnmcu.emit.project import emit\n")
    (package / "pipeline.py").write_text("def build():\n    from mnmcu import build\n")
    (package / "build.py").write_text("from mnmcu.emit.project import emit\n")
    (package / "emit" / "project.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mnmcu import fit\n"
        "def emit():\n    from mnmcu.pipeline import build\n"
    )
    (package / "fit.py").write_text("from mnmcu.emit import project\n")
    graph = import_graph(package)
    assert graph["mnmcu.fit"] == {"mnmcu.emit.project"}  # the submodule, not the package
    assert graph["mnmcu.emit.project"] == {"mnmcu.pipeline"}  # TYPE_CHECKING left out
    assert circles(graph) == [["mnmcu.build", "mnmcu.emit.project", "mnmcu.pipeline"]]
