"""The regime classifier (trademesh/core/domain/regime) and Overwatch's engine
(trademesh/core/overwatch/engine) are pure (ARCHITECTURE.md, "Engine cores"): no I/O, no
concurrency, no wall clock, no random ids; a backtest driving them must give what the live service
gave. The rules: tests/purity.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import forbidden_in, modules

ROOT = Path(__file__).parents[2]
MODULES = modules(
    ROOT / "trademesh" / "core" / "domain" / "regime", ROOT / "trademesh" / "core" / "overwatch" / "engine"
)


def test_there_are_modules_to_check() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in MODULES}
    assert {"regime/classifier.py", "regime/indicators.py", "engine/core.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[f"{p.parent.name}/{p.name}" for p in MODULES])
def test_a_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    assert forbidden_in(path.read_text(), ("numpy",)) == []
