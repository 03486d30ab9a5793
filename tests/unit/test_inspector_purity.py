"""The inspector's engine core is pure (ARCHITECTURE.md, "Engine cores"): none of its modules
imports I/O, concurrency or the wall clock, or reads the clock through datetime (local_time
converts a given now_ns instead). The rules: tests/purity.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import forbidden_in, modules

ENGINE = Path(__file__).parents[2] / "trademesh" / "core" / "inspector" / "engine"
MODULES = modules(ENGINE)


def test_the_engine_has_modules_to_check() -> None:
    assert len(MODULES) >= 10
    assert ENGINE / "core.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_an_engine_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    assert (
        forbidden_in(path.read_text(), ("trademesh.core.inspector.app", "trademesh.core.inspector.runtime"))
        == []
    )
