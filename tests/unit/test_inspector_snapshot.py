"""A snapshot of the inspector's core restores it whole: every attribute equal (digits and
exponents of every Decimal included), and the restored core answers the rest of the journal
exactly as the original does."""

from __future__ import annotations

from collections import deque
from dataclasses import fields, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from tests.journal_support import make_journal
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskState
from trademesh.core.inspector.snapshot import audit_from_snapshot, from_snapshot, to_snapshot
from trademesh.risk.v1 import journal_pb2 as jr

_JOURNAL = make_journal(900, intent_every_s=6, rich=True)


def dump(value: Any) -> Any:
    """Everything an object holds, private attributes included, as comparable plain values."""
    if isinstance(value, Decimal):
        return ("D", str(value))
    if isinstance(value, Enum) or value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {repr(dump(k)): dump(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(repr(dump(v)) for v in value)
    if isinstance(value, list | tuple | deque):
        return [dump(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in fields(value)}
    attrs = getattr(value, "__dict__", None)
    if attrs is not None:
        return {name: dump(v) for name, v in attrs.items()}
    slots = getattr(type(value), "__slots__", ())
    if slots:
        return {name: dump(getattr(value, name)) for name in slots}
    return repr(value)


def _replayed(entries: list[jr.JournalEntry]) -> tuple[InspectorCore, Audit]:
    core, audit = new_core(entries[0]), Audit()
    for entry in entries[1:]:
        audit.observe(entry, apply_entry(core, entry))
    return core, audit


def _policies(entries: list[jr.JournalEntry]) -> str:
    """The text of the last policy input among `entries`."""
    texts = [e.policies for e in entries if e.WhichOneof("input") == "policies"]
    return texts[-1] if texts else entries[0].start.policies


def _round_trip(core: InspectorCore, audit: Audit, policies: str) -> tuple[InspectorCore, Audit]:
    snap = to_snapshot(core, audit, _JOURNAL[0], policies, (1, 0))
    read = jr.JournalSnapshot.FromString(snap.SerializeToString())
    return from_snapshot(read), audit_from_snapshot(read)


def test_the_synthetic_journal_reaches_every_kind_of_state_the_snapshot_holds() -> None:
    kinds = {entry.WhichOneof("input") for entry in _JOURNAL}
    wanted = {"intent", "fill", "order_update", "mark", "command", "policies", "legacy", "venue_stand"}
    assert wanted | {"timer", "instruments"} <= kinds
    core, audit = _replayed(_JOURNAL[: len(_JOURNAL) * 3 // 4])
    assert audit.records and any(r.fills for r in audit.records.values())
    assert core.book.positions.positions and core.book.orders.asked > 0
    assert core._rejected or core._tried, "the toy venue's refusals reached the protection counts"
    assert any(t.after is RiskState.STANDING_DOWN for t in core.machine.history)


def test_the_synthetic_journal_holds_entries_the_venue_said_filled_before_their_fills() -> None:
    """The snapshot carries the venue's word (an entry answered FILLED, its fills on their way)."""
    core, said = new_core(_JOURNAL[0]), 0
    for entry in _JOURNAL[1:]:
        apply_entry(core, entry)
        said += any(w.unheard > 0 for w in core.book.orders)
    assert said > 0


def test_a_restored_core_holds_everything_the_core_held_at_every_point() -> None:
    """The core at every entry (a piece of state may live for one entry only), the audit with it
    at every 25th (it changes slowly, and is the snapshot's bulk)."""
    core, audit, policies = new_core(_JOURNAL[0]), Audit(), _JOURNAL[0].start.policies
    for number, entry in enumerate(_JOURNAL[1:], start=1):
        audit.observe(entry, apply_entry(core, entry))
        policies = entry.policies if entry.WhichOneof("input") == "policies" else policies
        held = audit if number % 25 == 0 else Audit()
        restored = _round_trip(core, held, policies)
        assert dump(restored) == dump((core, held)), f"after entry {number}"


def test_a_restored_core_answers_the_rest_of_the_journal_as_the_original() -> None:
    for cut in (len(_JOURNAL) // 5, len(_JOURNAL) // 2, len(_JOURNAL) * 4 // 5):
        core, audit = _replayed(_JOURNAL[:cut])
        again, audit_again = _round_trip(core, audit, _policies(_JOURNAL[:cut]))
        for entry in _JOURNAL[cut:]:
            result = apply_entry(core, entry)
            assert apply_entry(again, entry) == result
            audit.observe(entry, result)
            audit_again.observe(entry, result)
        assert dump((again, audit_again)) == dump((core, audit))


def test_a_policy_change_is_carried_by_its_text() -> None:
    changed = next(e for e in _JOURNAL if e.WhichOneof("input") == "policies")
    core, audit = _replayed(_JOURNAL[: _JOURNAL.index(changed) + 1])
    snap = to_snapshot(core, audit, _JOURNAL[0], changed.policies, (1, 0))
    assert from_snapshot(snap).policies == core.policies
