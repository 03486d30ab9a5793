"""The ledger's engine core is pure (ARCHITECTURE.md, "Engine cores"): none of its modules
imports I/O, concurrency, randomness or the clock, or calls the clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).parents[2] / "core" / "ledger" / "engine"
MODULES = sorted(ENGINE.glob("*.py"))
BANNED_MODULES = {
    "asyncio", "socket", "time", "datetime", "threading", "multiprocessing", "subprocess", "os",
    "pathlib", "io", "random", "secrets", "logging", "ssl", "http", "urllib", "grpc", "redis",
    "asyncpg", "psycopg", "core.foundations.bus", "core.foundations.rpc", "core.cli.mesh",
}  # fmt: skip
BANNED_CALLS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter", "sleep"}


def imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def banned(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in BANNED_MODULES)


def called(tree: ast.AST) -> set[str]:
    return {
        n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }


def test_the_engine_modules_are_all_checked() -> None:
    names = {path.name for path in MODULES}
    assert {"core.py", "postings.py", "books.py", "model.py", "events.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_an_engine_module_does_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert sorted(module for module in imported(tree) if banned(module)) == []
    assert sorted(called(tree) & BANNED_CALLS) == []


def test_the_check_catches_a_clock_read() -> None:
    tree = ast.parse("import datetime\nstamp = datetime.datetime.now()\n")
    assert any(banned(module) for module in imported(tree))
    assert "now" in called(tree)
