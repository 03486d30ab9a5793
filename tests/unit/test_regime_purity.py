"""The regime classifier (core/foundations/regime) and Overwatch's engine (core/overwatch/engine)
are pure (ARCHITECTURE.md, "Engine cores"): no I/O, no concurrency, no wall clock, no random ids;
a backtest driving them must give what the live service gave."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MODULES = sorted(
    [
        *(ROOT / "core" / "foundations" / "regime").glob("*.py"),
        *(ROOT / "core" / "overwatch" / "engine").glob("*.py"),
    ]
)

FORBIDDEN_IMPORTS = {
    "asyncio", "socket", "time", "threading", "multiprocessing", "subprocess", "os", "pathlib", "io",
    "random", "secrets", "logging", "selectors", "ssl", "http", "urllib", "grpc", "redis", "asyncpg",
    "numpy", "core.foundations.bus", "core.foundations.rpc", "core.foundations.service", "core.cli",
}  # fmt: skip
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


def test_there_are_modules_to_check() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in MODULES}
    assert {"regime/classifier.py", "regime/indicators.py", "engine/core.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[f"{p.parent.name}/{p.name}" for p in MODULES])
def test_a_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert sorted(n for n in _imports(tree) if _forbidden(n)) == []
    assert sorted(_calls(tree) & FORBIDDEN_CALLS) == []


def test_the_checker_would_catch_a_clock_read() -> None:
    tree = ast.parse("import time\nfrom datetime import datetime\nx = datetime.now()\n")
    assert _forbidden("time") and "time" in _imports(tree)
    assert "now" in _calls(tree)
