"""The Supervisor's engine (trademesh/core/supervisor/engine) is pure (ARCHITECTURE.md, "Engine cores"): no
I/O, no concurrency, no wall clock, no random ids; the same observations give the same
proposals, live or in a backtest. The rules: tests/purity.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import forbidden_in, modules

MODULES = modules(Path(__file__).parents[2] / "trademesh" / "core" / "supervisor" / "engine")


def test_the_engine_has_modules_to_check() -> None:
    assert {p.name for p in MODULES} >= {"bounds.py", "check.py", "core.py", "model.py", "rules.py"}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_an_engine_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    assert forbidden_in(path.read_text(), also=("openai", "trademesh.core.supervisor.app")) == []
