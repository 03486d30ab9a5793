"""The Screener's engine is a pure core (ARCHITECTURE.md, "Engine cores"), as the detector's
(test_detector_purity): its modules import no I/O, concurrency or randomness and read no clock,
so a backtest evaluating a screen gives what the live service gave."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_detector_purity import FORBIDDEN_CALLS, _calls, _forbidden, _imports

ENGINE = Path(__file__).parents[2] / "core" / "screener" / "engine"
MODULES = sorted(ENGINE.glob("*.py"))


def test_the_engine_has_modules_to_check() -> None:
    assert {p.name for p in MODULES} >= {"definition.py", "metrics.py", "evaluate.py", "membership.py"}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_an_engine_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert sorted(n for n in _imports(tree) if _forbidden(n)) == []
    assert sorted(_calls(tree) & FORBIDDEN_CALLS) == []
