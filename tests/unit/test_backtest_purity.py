"""A backtest's run is the engine cores on a simulated clock (ARCHITECTURE.md, "Engine cores"):
the modules that make the run (its stages, the replayed venue, the schedule, the results) import
no clock, concurrency, network or database, and call no clock. Reading the data, the progress
bar's wall clock and the store are the shell's (source.py, session.py, store.py, command.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BACKTEST = Path(__file__).parents[2] / "trademesh" / "core" / "backtest"
RUN = [
    "run", "detect", "advise", "inspect", "books", "market", "prices", "trips", "outcome", "results",
    "metrics",
]  # fmt: skip
BANNED_MODULES = {
    "asyncio", "socket", "time", "threading", "multiprocessing", "subprocess", "random", "secrets",
    "grpc", "redis", "asyncpg", "psycopg", "trademesh.core.platform.bus", "trademesh.core.platform.rpc",
    "trademesh.core.backtest.source", "trademesh.core.backtest.store", "trademesh.core.backtest.session",
}  # fmt: skip
BANNED_CALLS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter", "sleep"}


def _tree(name: str) -> ast.AST:
    return ast.parse((BACKTEST / f"{name}.py").read_text())


def _imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", RUN)
def test_the_runs_modules_import_no_clock_io_or_concurrency(name: str) -> None:
    bad = {m for m in _imported(_tree(name)) if any(m == b or m.startswith(b + ".") for b in BANNED_MODULES)}
    assert bad == set(), f"trademesh/core/backtest/{name}.py imports {sorted(bad)}"


@pytest.mark.parametrize("name", RUN)
def test_the_runs_modules_call_no_clock(name: str) -> None:
    calls = {
        n.func.attr
        for n in ast.walk(_tree(name))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert calls & BANNED_CALLS == set(), (
        f"trademesh/core/backtest/{name}.py calls {sorted(calls & BANNED_CALLS)}"
    )
