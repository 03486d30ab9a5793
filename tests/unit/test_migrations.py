"""The shared migration runner's checks that need no database (the rest: test_recorder_store, auth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.core.platform.errors import FailedPrecondition
from trademesh.core.platform.postgres.migrations import Migration, MigrationSet, load_migrations


def test_files_load_in_version_order_whatever_their_names_sort_as(tmp_path: Path) -> None:
    (tmp_path / "010_later.sql").write_text("SELECT 10")
    (tmp_path / "002_first.sql").write_text("SELECT 2")
    assert [m.label for m in load_migrations(tmp_path)] == ["002_first", "010_later"]


def test_a_misnamed_or_duplicated_file_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "1_short.sql").write_text("")
    with pytest.raises(FailedPrecondition, match=r"1_short\.sql is not named NNN_name\.sql"):
        load_migrations(tmp_path)
    (tmp_path / "1_short.sql").unlink()
    (tmp_path / "003_a.sql").write_text("")
    (tmp_path / "003_b.sql").write_text("")
    with pytest.raises(FailedPrecondition, match="two migrations numbered 003"):
        load_migrations(tmp_path)


def test_a_set_refuses_versions_out_of_order_and_a_ledger_that_is_not_an_identifier() -> None:
    one, two = Migration(1, "a", "SELECT 1"), Migration(2, "b", "SELECT 2")
    with pytest.raises(FailedPrecondition, match="ledger: migrations must have distinct versions"):
        MigrationSet("ledger", "ledger_migrations", 1, (two, one))
    with pytest.raises(ValueError, match="not a plain identifier"):
        MigrationSet("ledger", "x; DROP TABLE y", 1, (one,))


def test_the_checksum_changes_with_the_text() -> None:
    assert Migration(1, "a", "SELECT 1").checksum != Migration(1, "a", "SELECT 1 ").checksum
