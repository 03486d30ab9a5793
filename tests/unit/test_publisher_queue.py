"""What a Publisher holds before its flush: entries counted one by one (the writer's bound is in
entries), a run of fenced entries sent as one group write."""

from __future__ import annotations

from typing import Any, cast

from trademesh.core.platform.bus.group import Fenced, GroupWrite
from trademesh.core.platform.bus.publisher import Publisher


def test_a_run_of_fenced_entries_counts_each_entry_and_goes_as_one_group_write() -> None:
    publisher = Publisher(redis=cast(Any, None))
    fence = Fenced("lease.ingest.{sim}", "venue-sim@host/1")
    for n in range(5):
        publisher.add("md.{sim}.trades", b"batch %d" % n, fence=fence)
    assert publisher.queued == 5, "the bound counts entries, not round-trip items"
    publisher.add("exec.{sim}", b"fills", once=(1, 2), fence=fence)
    publisher.add("md.{sim}.book", b"book", fence=fence)
    assert publisher.queued == 7
    publisher._close_run()
    run, once, last = publisher._queued
    assert isinstance(run, GroupWrite) and len(run.appends) == 5 and run.fence == fence
    assert isinstance(once, GroupWrite) and once.guard is not None
    assert isinstance(last, GroupWrite) and [a.stream for a in last.appends] == ["md.{sim}.book"]
