"""hwlat's import graph, read from the source (ast: nothing is imported), and the layer
contracts of docs/ARCHITECTURE.md checked on it. `tests/test_layers.py` runs them."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("profiler", "devices", "latency_service", "searchers", "hwlat")

# Who may import whom at run time (imports under `if TYPE_CHECKING:` are not run). A
# module follows the entry of the longest prefix of its name listed here: it may import
# within that prefix and what the entry lists. hwlat, the top, may import every package.
LAYERS: dict[str, tuple[str, ...]] = {
    "profiler": (),
    "searchers": ("profiler",),
    "latency_service": ("profiler", "searchers.spaces"),
    "devices": ("profiler", "latency_service.client", "latency_service.schemas"),
    "hwlat": PACKAGES,
    # what every command shares imports nothing of hwlat's, so any command can use it
    "hwlat.commands.common": (),
}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module (or package)
    line: int
    toplevel: bool  # run when the module is imported (not inside a function)


def modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every .py file of the packages under `root`."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, toplevel: bool = True) -> Iterator[tuple[ast.stmt, bool]]:
    """Import statements with whether they run at import time; skips TYPE_CHECKING."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, toplevel
        elif isinstance(node, ast.If) and _type_checking(node):
            yield from (item for other in node.orelse for item in _imports(other, toplevel))
        else:
            inner = toplevel and not isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            yield from _imports(node, inner)


def _targets(node: ast.stmt, module: str, is_package: bool, known: Mapping[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:  # relative: from the module's package, `level` steps up
        parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join([*parts, base] if base else parts)
    # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def edges(root: Path, packages: Iterable[str] = PACKAGES) -> list[Edge]:
    """Every import of one of `packages` by a module of theirs."""
    known = modules(root, packages)
    tops = set(packages)
    out = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        for node, toplevel in _imports(tree):
            for target in _targets(node, name, path.name == "__init__.py", known):
                if target.split(".")[0] in tops:
                    out.append(Edge(name, target, node.lineno, toplevel))
    return out


def _rule(module: str, layers: Mapping[str, tuple[str, ...]]) -> tuple[str, tuple[str, ...]]:
    """The most specific entry of `layers` for a module: (its name, what it may import)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in layers:
            return prefix, layers[prefix]
    return parts[0], ()


def _within(target: str, allowed: str) -> bool:
    return target == allowed or target.startswith(allowed + ".")


def layer_violations(
    graph: Iterable[Edge], layers: Mapping[str, tuple[str, ...]] = LAYERS
) -> list[str]:
    """Imports a module's layer does not allow, as `file-ish: source -> target` lines."""
    bad = []
    for e in graph:
        scope, allowed = _rule(e.source, layers)
        if _within(e.target, scope) or any(_within(e.target, a) for a in allowed):
            continue
        bad.append(f"{e.source}:{e.line} imports {e.target} ({scope} may import: "
                   f"{', '.join(allowed) or 'nothing of hwlat'})")  # fmt: skip
    return bad


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
    return found


def package_graph(graph: Iterable[Edge]) -> dict[str, set[str]]:
    """Top-level package -> the other top-level packages it imports (any import)."""
    out: dict[str, set[str]] = {}
    for e in graph:
        a, b = e.source.split(".")[0], e.target.split(".")[0]
        out.setdefault(a, set())
        if a != b:
            out[a].add(b)
    return out


def module_graph(graph: Iterable[Edge]) -> dict[str, set[str]]:
    """Module -> the modules it imports when it is imported (import-time cycles only;
    an import inside a function runs later, once every module is loaded)."""
    out: dict[str, set[str]] = {}
    for e in graph:
        out.setdefault(e.source, set())
        if e.toplevel and e.target != e.source:
            out[e.source].add(e.target)
    return out
