"""One journal entry into the engine core: the only way the shell moves the core, so the live
run and the replay at a restart (trademesh.core.inspector.input_journal) make the same calls and
reach the same state. Pure: the entry carries the time."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.convert import fill_from_pb, order_from_pb
from trademesh.core.inspector.convert import decode_intent, facts_from_pb, market_from_pb
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskOutput, RiskVerdict
from trademesh.core.inspector.engine.policy_file import load_policies
from trademesh.core.inspector.margin_convert import report_from_pb
from trademesh.core.inspector.snapshot import from_snapshot
from trademesh.core.platform.errors import Corrupt
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = ["apply_entry", "new_core"]

_COMMANDS = {
    jr.JournalCommand.KIND_STAND_DOWN: InspectorCore.stand_down,
    jr.JournalCommand.KIND_RESUME: InspectorCore.resume,
    jr.JournalCommand.KIND_CLOSE_ALL: InspectorCore.close_all,
}


def new_core(entry: jr.JournalEntry) -> InspectorCore:
    """The core a journal's first entry describes: its start, or (a trimmed journal, or a
    restart's replay) a snapshot of its state."""
    kind = entry.WhichOneof("input")
    if kind == "snapshot":
        return from_snapshot(entry.snapshot)
    if kind != "start":
        raise Corrupt("the inspector's journal does not begin with its start entry or a snapshot")
    start = entry.start
    book = f"{start.instance}/{entry.now_ns}"
    return InspectorCore(load_policies(start.policies), Decimal(start.starting_equity), entry.now_ns, book)


def apply_entry(core: InspectorCore, entry: jr.JournalEntry) -> RiskOutput | RiskVerdict:
    """The core's answer to one input; a RiskVerdict for an intent."""
    now = entry.now_ns
    kind = entry.WhichOneof("input")
    if kind == "intent":
        return core.on_intent(decode_intent(entry.intent.intent), market_from_pb(entry.intent), now)
    if kind == "fill":
        return core.on_fill(entry.fill.venue, fill_from_pb(entry.fill.fill), now)
    if kind == "order_update":
        return core.on_order_update(order_from_pb(entry.order_update), now)
    if kind == "mark":
        mark = entry.mark
        return core.on_mark(mark.venue, mark.symbol, Decimal(mark.price), now)
    if kind == "placement_unknown":
        return core.on_placement_unknown(entry.placement_unknown, now)
    if kind == "query_result":
        result = entry.query_result
        order = order_from_pb(result.order) if result.HasField("order") else None
        return core.on_query_result(result.client_order_id, order, now)
    if kind == "command":
        return _COMMANDS[entry.command.kind](core, entry.command.reason, now)
    if kind == "stop_triggered":
        return core.on_stop_triggered(entry.stop_triggered, now)
    if kind == "policies":
        return core.update_policies(load_policies(entry.policies), now)
    if kind == "snapshot":  # the state the core has already reached: nothing to apply
        return RiskOutput()
    if kind == "timer":
        return core.on_timer(now)
    if kind == "instruments":
        facts = {i.symbol: facts_from_pb(i) for i in entry.instruments.instruments}
        return core.on_instruments(entry.instruments.venue, facts, now)
    if kind == "legacy":
        legacy = entry.legacy
        price = Decimal(legacy.entry_price) if legacy.entry_price else None
        return core.on_legacy(legacy.venue, legacy.symbol, Decimal(legacy.size), price, now)
    if kind == "listing":
        listing = entry.listing
        return core.on_listing(listing.venue, listing.symbol, listing.delisted, now)
    if kind == "margin":
        return core.on_margin(report_from_pb(entry.margin), now)
    if kind == "venue_stand":
        return core.on_venue_stand(entry.venue_stand.venue, entry.venue_stand.reason, now)
    raise Corrupt(f"the inspector's journal holds an entry it cannot apply: {kind}")
