"""The inspector's engine core is pure (ARCHITECTURE.md, "Engine cores"): none of its modules
imports I/O, concurrency or the wall clock, or reads the clock through datetime."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).parents[2] / "core" / "inspector" / "engine"
MODULES = sorted(ENGINE.glob("*.py"))

FORBIDDEN_IMPORTS = {
    "asyncio", "socket", "time", "threading", "multiprocessing", "subprocess", "os", "pathlib", "io",
    "random", "secrets", "logging", "selectors", "ssl", "http", "urllib", "grpc", "redis", "asyncpg",
    "ccxt", "core.foundations.bus", "core.foundations.rpc", "core.cli.mesh",
}  # fmt: skip
# The wall clock through datetime (local_time converts a given now_ns instead).
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time_ns", "monotonic", "perf_counter", "sleep"}


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


def test_the_engine_has_modules_to_check() -> None:
    assert len(MODULES) >= 10
    assert ENGINE / "core.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_an_engine_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert sorted(n for n in _imports(tree) if _forbidden(n)) == []
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert sorted(calls & FORBIDDEN_CALLS) == []


def test_the_checker_would_catch_a_clock_read() -> None:
    tree = ast.parse("import time\nfrom datetime import datetime\nx = datetime.now()\n")
    assert _forbidden("time") and "time" in _imports(tree)
    calls = {
        n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert "now" in calls
