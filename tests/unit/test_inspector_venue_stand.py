"""A venue the reconciliation stood down (issue 37, item 6): an input of the core, so its check
is the core's, whatever way an intent comes in, and a replay of the journal gets it back."""

from __future__ import annotations

from tests.inspector_support import T0, core, fill, intent, market
from trademesh.core.domain.model import Side
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.risk.v1 import journal_pb2 as jr


def test_a_stood_down_venue_refuses_entries_takes_exits_and_is_taken_up_again() -> None:
    c = core()
    entry = c.on_intent(intent(Side.BUY, "1"), market(), T0)
    c.on_fill("sim", fill(entry.orders[0], "1"), T0)
    c.on_venue_stand("sim", "position BTC/USDT is 3 at the venue, 1 in our book", T0)
    refused = c.on_intent(intent(Side.BUY), market(), T0)
    assert refused.action is RiskAction.BLOCK
    assert [(r.policy, r.reason) for r in refused.reasons] == [
        ("reconcile.position", "sim is stood down: position BTC/USDT is 3 at the venue, 1 in our book")
    ]
    assert c.on_intent(intent(Side.BUY, venue="other"), market(), T0).allowed  # another venue
    assert c.on_intent(intent(Side.SELL, "1", reduce_only=True), market(), T0).allowed  # an exit
    c.on_venue_stand("sim", "", T0)
    assert c.on_intent(intent(Side.BUY), market(), T0).allowed


def test_the_journal_replays_a_stand_down() -> None:
    start = jr.JournalStart(policies="", starting_equity="100000", instance="i")
    c = new_core(jr.JournalEntry(now_ns=T0, start=start))
    apply_entry(
        c, jr.JournalEntry(now_ns=T0, venue_stand=jr.JournalVenueStand(venue="sim", reason="diverged"))
    )
    assert c.book.venues_down == {"sim": "diverged"}
    apply_entry(c, jr.JournalEntry(now_ns=T0, venue_stand=jr.JournalVenueStand(venue="sim")))
    assert c.book.venues_down == {}
