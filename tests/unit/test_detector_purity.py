"""The detector's engine core is pure (ARCHITECTURE.md, "Engine cores"): none of the modules of
the engine, of its module types or of their indicators imports I/O, concurrency or the wall
clock, reads the clock through datetime or makes a random id (the fast paths of issue 18's
backtests included: a replay must give what a live run gave)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DETECTOR = Path(__file__).parents[2] / "core" / "detector"
MODULES = sorted(p for part in ("engine", "modules", "indicators") for p in (DETECTOR / part).glob("*.py"))

FORBIDDEN_IMPORTS = {
    "asyncio", "socket", "time", "threading", "multiprocessing", "subprocess", "os", "pathlib", "io",
    "random", "secrets", "logging", "selectors", "ssl", "http", "urllib", "grpc", "redis", "asyncpg",
    "ccxt", "core.foundations.bus", "core.foundations.rpc", "core.cli.mesh", "core.detector.app",
    "core.detector.runner",
}  # fmt: skip
# The wall clock through datetime, and ids that differ from run to run.
FORBIDDEN_CALLS = {
    "now",
    "utcnow",
    "today",
    "time_ns",
    "monotonic",
    "perf_counter",
    "sleep",
    "uuid1",
    "uuid4",
}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN_IMPORTS)


def _calls(tree: ast.AST) -> set[str]:
    return {
        node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
    }


def test_the_core_has_modules_to_check() -> None:
    assert len(MODULES) >= 25
    assert DETECTOR / "engine" / "engine.py" in MODULES
    assert DETECTOR / "modules" / "bar_builder.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=[f"{p.parent.name}/{p.name}" for p in MODULES])
def test_a_core_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert sorted(n for n in _imports(tree) if _forbidden(n)) == []
    assert sorted(_calls(tree) & FORBIDDEN_CALLS) == []


def test_the_checker_would_catch_a_clock_read_and_a_random_id() -> None:
    tree = ast.parse("import time\nfrom datetime import datetime\nx = datetime.now()\ny = uuid4()\n")
    assert _forbidden("time") and "time" in _imports(tree)
    assert {"now", "uuid4"} <= _calls(tree)
