"""The advisor's decision journal stays bounded however long the advisor runs (issue 57: it kept
10,000 decisions, ~60 kB each, and grew the demo mesh's advisor ~20-30 MB an hour): published
decisions and the log for WatchDecisions by age and count, dry runs by count."""

from __future__ import annotations

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.decision_journal import CAPACITY, DRY_RUNS, KEEP_S, DecisionJournal

_DEMO_EVERY_S = 13.0  # the demo mesh's ~275 decisions an hour


class _Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


def _add(journal: DecisionJournal, n: int, published: bool = True) -> None:
    event = am.TelemetryEvent(event_id=f"e{n}", decision_id=f"d{n}")
    journal.add(am.Decision(decision_id=f"d{n}"), [event], published=published)


def test_a_burst_of_decisions_keeps_at_most_the_capacity() -> None:
    journal = DecisionJournal()
    for n in range(3 * CAPACITY):
        _add(journal, n)
    made, sequence = journal.after(0)
    assert sequence == 3 * CAPACITY
    assert len(made) == CAPACITY
    assert made[0].sequence == 2 * CAPACITY + 1  # the newest kept
    assert journal.get(f"d{2 * CAPACITY - 1}") is None
    assert journal.get(f"d{3 * CAPACITY - 1}") is not None


def test_a_day_at_the_demo_rate_keeps_only_the_last_minutes() -> None:
    clock = _Clock()
    journal = DecisionJournal(clock=clock)
    most = int(KEEP_S / _DEMO_EVERY_S) + 1
    for n in range(int(24 * 3600 / _DEMO_EVERY_S)):
        _add(journal, n)
        journal.add(None, [am.TelemetryEvent(event_id=f"loose{n}")], published=True)
        clock.now_s += _DEMO_EVERY_S
        log, published, dry = journal.sizes()
        assert log <= 2 * most and published <= most and dry == 0
    newest = int(24 * 3600 / _DEMO_EVERY_S) - 1
    assert journal.get(f"d{newest}") is not None
    assert journal.get(f"d{newest - most - 1}") is None  # older than KEEP_S: the recorder's to answer


def test_dry_runs_outlive_the_age_limit_and_keep_their_own_count() -> None:
    clock = _Clock()
    journal = DecisionJournal(clock=clock)
    _add(journal, 0, published=False)
    clock.now_s += 10 * KEEP_S
    for n in range(1, 50):
        _add(journal, n)
        clock.now_s += KEEP_S
    assert journal.get("d0") is not None  # a dry run is in no other store
    for n in range(1_000, 1_000 + 2 * DRY_RUNS):
        _add(journal, n, published=False)
    assert journal.sizes()[2] == DRY_RUNS
    assert journal.get("d0") is None
    assert journal.get(f"d{1_000 + 2 * DRY_RUNS - 1}") is not None
