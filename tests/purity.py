"""What an engine core may not do (ARCHITECTURE.md, "Engine cores"), read from its source: import
I/O, concurrency, the wall clock or a service's shell, or call the clock or make a random id. The
engines' purity tests (tests/unit/test_*_purity.py) name their modules and what else they forbid."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

__all__ = ["FORBIDDEN_CALLS", "FORBIDDEN_IMPORTS", "called", "forbidden_in", "imported", "modules"]

# Every engine's: I/O, concurrency, the clock, randomness, logging, the bus and RPC, the CLI.
FORBIDDEN_IMPORTS = frozenset(
    {
        "asyncio", "socket", "time", "threading", "multiprocessing", "subprocess", "os", "pathlib", "io",
        "random", "secrets", "logging", "selectors", "ssl", "http", "urllib", "grpc", "redis", "asyncpg",
        "ccxt", "trademesh.core.platform.bus", "trademesh.core.platform.rpc",
        "trademesh.core.platform.service.lifecycle", "trademesh.core.cli",
    }
)  # fmt: skip
# The wall clock through datetime, and ids that differ from run to run.
FORBIDDEN_CALLS = frozenset(
    {"now", "utcnow", "today", "time_ns", "monotonic", "perf_counter", "sleep", "uuid1", "uuid4"}
)


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def called(tree: ast.AST) -> set[str]:
    return {
        node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
    }


def forbidden_in(source: str, also: Iterable[str] = (), also_calls: Iterable[str] = ()) -> list[str]:
    """What a module's source imports or calls that an engine may not, sorted (`also`, `also_calls`:
    modules and calls forbidden to this engine besides, e.g. its own service's shell)."""
    banned = FORBIDDEN_IMPORTS | set(also)
    tree = ast.parse(source)
    bad = {n for n in imported(tree) if any(n == b or n.startswith(f"{b}.") for b in banned)}
    return sorted(bad | (called(tree) & (FORBIDDEN_CALLS | set(also_calls))))


def modules(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.glob("*.py"))
