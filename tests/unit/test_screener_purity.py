"""The screener's engine (trademesh/core/screener/engine) is pure (ARCHITECTURE.md, "Engine cores"): no
I/O, no concurrency, no wall clock, no random ids; a backtest scanning with it gives what the live
service gave. The rules: tests/purity.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import forbidden_in, modules

ROOT = Path(__file__).parents[2]
# The membership rule sits in the domain (the detector follows screens by it too): as pure.
MODULES = [
    *modules(ROOT / "trademesh" / "core" / "screener" / "engine"),
    ROOT / "trademesh/core/domain/screen_membership.py",
]


def test_the_engine_has_modules_to_check() -> None:
    wanted = {"definition.py", "metrics.py", "evaluate.py", "membership.py", "screen_membership.py"}
    assert {p.name for p in MODULES} >= wanted


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_an_engine_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    assert forbidden_in(path.read_text()) == []
