"""The backtest meets each service through one module (issue 61): trademesh.core.<service>.replay,
which names what a backtest uses of that service (its engine core, config loading, conversions).
Every import of trademesh/core/backtest/ (its hub included, imports inside functions too) is of
the backtest itself, the platform, the domain, the generated contracts (trademesh.<area>.v1), a
service's `replay` module, or a library outside trademesh. A replay module is of the pure side of its
service: importing it loads none of the shells' I/O libraries (gRPC, Redis, PostgreSQL, HTTP, the LLM
client); the protobuf runtime of the generated contracts is allowed."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CORE = ROOT / "trademesh" / "core"
BACKTEST = CORE / "backtest"
ALLOWED = re.compile(
    r"^trademesh\.(core\.(backtest|platform|domain)(\..+)?|core\.[a-z_]+\.replay|[a-z_]+\.v1(\..+)?)$"
)
SERVICES_MET = ["advisor", "bars", "detector", "inspector", "ledger", "overwatch", "screener"]
IO_LIBRARIES = ("grpc", "redis", "asyncpg", "aiohttp", "openai")
# Run in a fresh interpreter (this one has loaded everything): imports argv[1] and prints, for each
# library of argv[2:] then loaded, the trademesh modules being imported when it was first looked for.
_PROBE = r"""
import importlib, json, sys

class Watch:
    def __init__(self, roots):
        self.roots, self.chains = roots, {}

    def find_spec(self, name, path=None, target=None):
        root = name.partition(".")[0]
        if root in self.roots and root not in self.chains:
            chain, frame = [], sys._getframe(1)
            while frame is not None:
                module = frame.f_globals.get("__name__", "")
                if module.startswith("trademesh") and module not in chain:
                    chain.append(module)
                frame = frame.f_back
            self.chains[root] = " -> ".join([*reversed(chain), root])
        return None

watch = Watch(set(sys.argv[2:]))
sys.meta_path.insert(0, watch)
importlib.import_module(sys.argv[1])
loaded = watch.roots & {name.partition(".")[0] for name in sys.modules}
print(json.dumps({root: watch.chains.get(root, root) for root in sorted(loaded)}))
"""


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each import of trademesh in the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, module) for line, module in found if module.split(".")[0] == "trademesh"]


def _backtest_files() -> list[Path]:
    return sorted(BACKTEST.rglob("*.py"))


@pytest.mark.parametrize("path", _backtest_files(), ids=lambda p: str(p.relative_to(BACKTEST)))
def test_the_backtest_imports_a_service_only_through_its_replay_module(path: Path) -> None:
    bad = [f"{line}: {module}" for line, module in _imports(path) if not ALLOWED.match(module)]
    assert bad == [], f"trademesh/core/backtest/{path.relative_to(BACKTEST)} reaches into a service: {bad}"


def test_the_check_refuses_a_services_shell_module() -> None:
    assert not ALLOWED.match("trademesh.core.detector.strategy_file")
    assert not ALLOWED.match("trademesh.core.inspector.engine.core")
    assert not ALLOWED.match("trademesh.core.replay")
    assert ALLOWED.match("trademesh.core.detector.replay")
    assert ALLOWED.match("trademesh.risk.v1")


def test_the_backtest_meets_the_services_it_uses_each_through_its_replay_module() -> None:
    met = {
        module.split(".")[2]
        for path in _backtest_files()
        for _, module in _imports(path)
        if module.endswith(".replay")
    }
    assert met == set(SERVICES_MET)


@pytest.mark.parametrize("service", SERVICES_MET)
def test_a_replay_module_exports_what_it_imports(service: str) -> None:
    module = importlib.import_module(f"trademesh.core.{service}.replay")
    exported = set(module.__all__)
    imported = {
        alias.asname or alias.name
        for node in ast.parse((CORE / service / "replay.py").read_text()).body
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
    }
    assert exported == imported
    assert all(hasattr(module, name) for name in exported)


def _io_loaded(module: str) -> dict[str, str]:
    """Each I/O library importing `module` loads, with the chain of trademesh modules that loaded it."""
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, module, *IO_LIBRARIES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: dict[str, str] = json.loads(run.stdout)
    return found


@pytest.mark.parametrize("service", SERVICES_MET)
def test_a_replay_module_loads_no_io_library(service: str) -> None:
    assert _io_loaded(f"trademesh.core.{service}.replay") == {}


def test_the_io_check_names_the_chain_that_loads_a_library() -> None:
    found = _io_loaded("trademesh.core.ledger.attribution")
    assert {"asyncpg", "redis"} <= found.keys()
    assert found["asyncpg"] == "trademesh.core.ledger.attribution -> asyncpg"
    chain = _io_loaded("trademesh.core.inspector.ticks")["grpc"].split(" -> ")
    assert chain[0] == "trademesh.core.inspector.ticks" and chain[-1] == "grpc"
    assert "trademesh.core.inspector.venues" in chain
