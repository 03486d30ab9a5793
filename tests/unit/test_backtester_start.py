"""The backtest hub starts without the run's engine: what `trademesh backtester` imports to
serve (its API, the store, the runs' manager) reaches neither the engine cores nor the report's
matplotlib. They cost 0.9 CPU s at every hub's start; the engine is imported at the first
StartBacktest, which builds the run to check it (trademesh/core/backtest/hub/runs.py), and a run's report
only by a run asked for one (trademesh/core/backtest/summary.py).

Read from the sources (the imports a module makes when it is imported: not those inside a
function or under TYPE_CHECKING), followed through every module of the repository."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
HUB = ("trademesh.core.backtest.hub.command", "trademesh.core.backtest.hub.app")
NOT_AT_START = (
    "trademesh.core.backtest.run", "trademesh.core.backtest.assemble", "trademesh.core.backtest.report",
    "matplotlib", "sklearn",
)  # fmt: skip


def _source(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _at_import(tree: ast.Module) -> set[str]:
    """The modules imported by the module's own statements (and by its classes' and ifs' bodies,
    but not `if TYPE_CHECKING:`), with each package a `from` names a module of."""
    found: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.ClassDef | ast.Try | ast.With):
            pending.extend(node.body)
    return found


def _imported_at_start(roots: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # its packages run first
        path = _source(module)
        if path is not None:
            pending.extend(_at_import(ast.parse(path.read_text())) - seen)
    return seen


def test_the_hub_imports_neither_the_engine_nor_matplotlib_to_start() -> None:
    imported = _imported_at_start(HUB)
    assert (
        "trademesh.core.backtest.store" in imported and "trademesh.core.backtest.hub.runs" in imported
    )  # it reads them
    early = sorted(m for m in imported if any(m == n or m.startswith(f"{n}.") for n in NOT_AT_START))
    assert early == [], f"the hub's start imports {early}"
