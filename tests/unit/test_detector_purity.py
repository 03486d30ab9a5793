"""The detector's engine core is pure (ARCHITECTURE.md, "Engine cores"): none of the modules of
the engine, of its module types or of their indicators imports I/O, concurrency or the wall
clock, reads the clock through datetime or makes a random id (the fast paths of issue 18's
backtests included: a replay must give what a live run gave). The rules: tests/purity.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import forbidden_in, modules

DETECTOR = Path(__file__).parents[2] / "trademesh" / "core" / "detector"
MODULES = modules(*(DETECTOR / part for part in ("engine", "modules", "indicators")))
SHELL = ("trademesh.core.detector.app", "trademesh.core.detector.runner")


def test_the_core_has_modules_to_check() -> None:
    assert len(MODULES) >= 25
    assert DETECTOR / "engine" / "engine.py" in MODULES
    assert DETECTOR / "modules" / "bar_builder.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=[f"{p.parent.name}/{p.name}" for p in MODULES])
def test_a_core_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    assert forbidden_in(path.read_text(), SHELL) == []


def test_the_checker_would_catch_a_clock_read_and_a_random_id() -> None:
    source = "import time\nfrom datetime import datetime\nx = datetime.now()\ny = uuid4()\n"
    assert forbidden_in(source) == ["now", "time", "uuid4"]
    assert forbidden_in("import trademesh.core.detector.app\n", SHELL) == ["trademesh.core.detector.app"]
