"""The ledger's engine core is pure (ARCHITECTURE.md, "Engine cores"): none of its modules
imports I/O, concurrency, randomness or the clock (datetime itself), or calls the clock. The
rules: tests/purity.py, and for the ledger datetime and psycopg besides."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.purity import forbidden_in, modules

MODULES = modules(Path(__file__).parents[2] / "trademesh" / "core" / "ledger" / "engine")


def test_the_engine_modules_are_all_checked() -> None:
    names = {path.name for path in MODULES}
    assert {"core.py", "postings.py", "books.py", "model.py", "events.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[path.name for path in MODULES])
def test_an_engine_module_does_no_io_and_reads_no_clock(path: Path) -> None:
    assert forbidden_in(path.read_text(), ("datetime", "psycopg"), ("time",)) == []


def test_the_check_catches_a_clock_read() -> None:
    source = "import datetime\nstamp = datetime.datetime.now()\n"
    assert forbidden_in(source, ("datetime",)) == ["datetime", "now"]
