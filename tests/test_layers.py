"""The package's layers, read from its import graph: imports point inward only.

Primitives (events, errors, clock, serialization, retry, flow, metrics) and
the pattern engine are the centre; the core (every other ``eventbus/_*.py``
module) builds on them; the outer layers (sources, AWS interop, HTTP,
bridges, testing kit, state stores, telemetry, workers) build on the core.
``eventbus/__init__.py`` and ``__main__.py`` are the face and may import
anything. Imports under ``if TYPE_CHECKING:`` do not count: they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import eventbus

PACKAGE_DIR = Path(eventbus.__file__).parent
FACE = frozenset({"eventbus", "eventbus.__main__"})
OUTER = (
    "sources",
    "aws",
    "http",
    "bridges",
    "testing",
    "state",
    "otel",
    "prometheus",
    "worker",
    "demo",
)
PRIMITIVES = frozenset(
    f"eventbus.{name}"
    for name in (
        "_events",
        "_exceptions",
        "_clock",
        "_serialization",
        "_retry",
        "_flow",
        "_metrics",
    )
)


class Import(NamedTuple):
    """One run-time import: who imports what, where, and whether at module level."""

    source: str
    target: str
    line: int
    module_level: bool

    def __str__(self) -> str:
        where = "" if self.module_level else " (inside a function)"
        return f"{self.source} -> {self.target} (line {self.line}){where}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.AST, bool]]:
    """Yield (import node, inside a function?) for every import outside TYPE_CHECKING blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _walk(ast.Module(body=[other], type_ignores=[]), in_function)
        else:
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from _walk(child, nested)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[Import] = []
    for node, in_function in _walk(tree, False):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            assert isinstance(node, ast.ImportFrom)
            base = _resolve(module, node) if node.level else (node.module or "")
            # "from pkg import submodule" imports the submodule itself.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for target in dict.fromkeys(targets):
            if target == "eventbus" or target.startswith("eventbus."):
                found.append(Import(module, target, node.lineno, not in_function))
    return found


GRAPH = [edge for module in MODULES for edge in _imports(module)]


def _is_outer(module: str) -> bool:
    return any(module == f"eventbus.{o}" or module.startswith(f"eventbus.{o}.") for o in OUTER)


def _is_patterns(module: str) -> bool:
    return module == "eventbus.patterns" or module.startswith("eventbus.patterns.")


def _is_core(module: str) -> bool:
    return _is_patterns(module) or (
        module.startswith("eventbus._") and module.count(".") == 1 and module not in FACE
    )


def _cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), as sorted lists."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    """The parser finds known run-time imports and skips TYPE_CHECKING-only ones."""
    pairs = {(e.source, e.target) for e in GRAPH}
    assert ("eventbus._bus", "eventbus._subscription") in pairs
    assert ("eventbus.sources.logs", "eventbus._events") in pairs
    # _subscription names Bus in annotations only.
    assert ("eventbus._subscription", "eventbus._bus") not in pairs


def test_core_does_not_import_outer_layers() -> None:
    """No module of the core imports sources, AWS, HTTP, bridges, testing etc. at run time."""
    bad = [e for e in GRAPH if _is_core(e.source) and _is_outer(e.target)]
    assert not bad, "the core imports an outer layer:\n" + "\n".join(map(str, bad))


def test_primitives_and_pattern_engine_do_not_import_the_core() -> None:
    """Primitives and the pattern engine import only each other."""
    centre = [e for e in GRAPH if e.source in PRIMITIVES or _is_patterns(e.source)]
    bad = [
        e
        for e in centre
        if e.target not in PRIMITIVES and not _is_patterns(e.target) and e.target != e.source
    ]
    assert not bad, "a primitive or the pattern engine imports the core:\n" + "\n".join(
        map(str, bad)
    )


def test_no_import_cycles_at_run_time() -> None:
    """Module-level imports among the package's modules form no cycle (the face aside)."""
    edges = [
        e
        for e in GRAPH
        if e.module_level and e.source not in FACE and e.target not in FACE and e.target in MODULES
    ]
    cycles = _cycles(edges)
    detail = []
    for component in cycles:
        members = set(component)
        detail.extend(str(e) for e in edges if e.source in members and e.target in members)
    assert not cycles, "import cycles: " + "; ".join(map(str, cycles)) + "\n" + "\n".join(detail)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("eventbus._bus", True),
        ("eventbus.patterns._pattern", True),
        ("eventbus.sources.logs", False),
        ("eventbus", False),
    ],
)
def test_core_membership(source: str, expected: bool) -> None:
    """The core is every eventbus/_*.py module and the pattern engine, nothing else."""
    assert _is_core(source) is expected
