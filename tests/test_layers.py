"""The layer contracts of docs/ARCHITECTURE.md, checked on the import graph of the source:
no package imports a layer above it, no import cycles, the service without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_graph import (
    LAYERS,
    PACKAGES,
    Edge,
    cycles,
    edges,
    layer_violations,
    module_graph,
    package_graph,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph() -> list[Edge]:
    return edges(ROOT)


def test_the_graph_is_read_from_every_package(graph: list[Edge]) -> None:
    sources = {e.source.split(".")[0] for e in graph}
    assert sources == set(PACKAGES)
    known = [e for e in graph if (e.source, e.target) == ("hwlat.cli", "hwlat.commands.search")]
    assert known and known[0].toplevel  # `from hwlat.commands import search` is a module


def test_every_import_is_allowed_by_its_layer(graph: list[Edge]) -> None:
    assert layer_violations(graph) == []


def test_no_package_cycles_and_no_import_time_module_cycles(graph: list[Edge]) -> None:
    assert cycles(package_graph(graph)) == []
    assert cycles(module_graph(graph)) == []


def test_a_deliberate_cycle_fails(graph: list[Edge]) -> None:
    """The profiler importing the CLI: both a layer violation and a package cycle."""
    added = [*graph, Edge("profiler.ops", "hwlat.cli", 1, True)]
    assert layer_violations(added) == [
        "profiler.ops:1 imports hwlat.cli (profiler may import: nothing of hwlat)"
    ]
    assert any({"hwlat", "profiler"} <= set(c) for c in cycles(package_graph(added)))
    assert any("profiler.ops" in c and "hwlat.cli" in c for c in cycles(module_graph(added)))


def test_a_cycle_in_a_source_tree_is_found(tmp_path: Path) -> None:
    """Read from files: a -> b at import time, b -> a inside a function is no import-time
    cycle; b -> a at import time is, and `if TYPE_CHECKING:` imports never count."""
    pkg = tmp_path / "profiler"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from profiler import b\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from profiler import a\n"
        "def f():\n    from profiler.a import x\n"
    )
    assert cycles(module_graph(edges(tmp_path, ["profiler"]))) == []
    (pkg / "b.py").write_text("import profiler.a\n")
    assert cycles(module_graph(edges(tmp_path, ["profiler"]))) == [["profiler.a", "profiler.b"]]


def test_the_commands_share_a_module_that_imports_nothing_of_hwlat(graph: list[Edge]) -> None:
    assert LAYERS["hwlat.commands.common"] == ()
    assert not [e for e in graph if e.source == "hwlat.commands.common"]


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(out.stdout.split())


def test_the_service_does_not_import_torch() -> None:
    """The service enumerates a space's ops without building a network."""
    loaded = _loaded_after("import latency_service.main")
    assert "torch" not in loaded
    assert "searchers.spaces" in loaded  # it does use the spaces


def test_the_client_imports_neither_the_server_nor_scikit_learn() -> None:
    loaded = _loaded_after("import latency_service.client, latency_service.calibration_formula")
    assert not loaded & {"torch", "sklearn", "scipy", "fastapi", "sqlalchemy"}
