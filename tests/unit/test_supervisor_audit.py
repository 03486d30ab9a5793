"""The Supervisor's audit trail's StreamAudit subscribers as its metrics count them
(trademesh_supervisor_watchers: the fuzz reads it after its fuzz, as every *_watchers gauge): one
that ends, or falls behind and is ended, is no longer counted."""

from __future__ import annotations

from prometheus_client import REGISTRY

from trademesh.core.supervisor.audit import AuditTrail
from trademesh.core.supervisor.engine import AuditEntry


def _watchers() -> float:
    value = REGISTRY.get_sample_value("trademesh_supervisor_watchers")
    assert value is not None, "no trademesh_supervisor_watchers"
    return value


def test_the_watchers_gauge_counts_the_open_streams_until_each_ends_or_falls_behind() -> None:
    trail = AuditTrail(queue_size=2)
    _, first = trail.watch()
    _, second = trail.watch()
    assert _watchers() == 2
    trail.drop(first)
    assert _watchers() == 1
    trail.add([AuditEntry(i, "observation") for i in range(3)])  # past the second's queue: ended
    assert _watchers() == 0
    trail.drop(second)  # its stream ends after: counted once
    assert _watchers() == 0
