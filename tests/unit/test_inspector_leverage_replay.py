"""The leverage state survives the journal and its snapshots: a journal with margin reports, a
leveraged entry, a reduction near liquidation and a liquidation replays to the same core, a
snapshot taken after any of its entries restores the core whole, and the restored core answers
the rest of the journal exactly as the original."""

from __future__ import annotations

from collections import deque
from dataclasses import fields, is_dataclass, replace
from decimal import Decimal
from enum import Enum
from typing import Any

from tests.inspector_support import MS, T0, D, fill, intent
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.advisor.convert import intent_to_pb
from trademesh.core.domain.convert import fill_to_pb, position_to_pb
from trademesh.core.domain.model import MarginMode, Position, PositionMargin, Side
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskState, RiskVerdict
from trademesh.core.inspector.engine.margin_policies import LeveragePolicy, LiquidationPolicy, MarginPolicy
from trademesh.core.inspector.engine.policies import PolicySet
from trademesh.core.inspector.engine.policy_dump import dump_policies
from trademesh.core.inspector.snapshot import audit_from_snapshot, from_snapshot, to_snapshot
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

PERP = "BTC/USDT:USDT"
POLICIES = PolicySet(
    leverage=LeveragePolicy(max=D(20), max_overall=D(5)),
    liquidation=LiquidationPolicy(min_distance_entry=D("0.02"), min_distance_open=D("0.03")),
    margin=MarginPolicy(max_use=D("0.8")),
)


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


def _margin(liquidation: str, mark: str, leverage: str = "10") -> jr.JournalMargin:
    margin = PositionMargin(
        "USDT", leverage=D(leverage), mode=MarginMode.CROSS, mark_price=D(mark), initial_margin=D("20.00"),
        maintenance_margin=D("0.80"), margin_ratio=D("0.04"), unrealized_pnl=D("-1.5"),
        liquidation_price=D(liquidation),
    )  # fmt: skip
    entry = jr.JournalMargin(venue="sim", leverage=True, positions_said=True)
    entry.positions.append(position_to_pb(Position(PERP, D(2), D(100), margin=margin)))
    entry.balances.add(asset="USDT", total="10000.00", free="9980", position_margin="20.00")
    entry.settings.add(symbol=PERP, leverage=leverage, margin_mode=tf.MARGIN_MODE_CROSS)
    return entry


def _journal() -> list[jr.JournalEntry]:
    """Built by running a core: each entry's input as the shell journals it."""
    at = iter(range(T0, T0 + 10_000 * MS, MS))
    start = jr.JournalStart(policies=dump_policies(POLICIES), starting_equity="100000", instance="t")
    entries = [jr.JournalEntry(now_ns=next(at), start=start)]
    item = common.Instrument(
        venue="sim", symbol=PERP, kind=common.INSTRUMENT_KIND_PERPETUAL, base_asset="BTC", quote_asset="USDT",
        settle_asset="USDT", tick_size="0.1", lot_size="0.001", min_size="0.001", contract_size="1",
    )  # fmt: skip
    entries.append(
        jr.JournalEntry(now_ns=next(at), instruments=jr.JournalInstruments(venue="sim", instruments=[item]))
    )
    empty = jr.JournalMargin(venue="sim", leverage=True, positions_said=True)
    empty.balances.add(asset="USDT", total="10000", position_margin="0")
    empty.settings.add(symbol=PERP, leverage="5", margin_mode=tf.MARGIN_MODE_CROSS)
    entries.append(jr.JournalEntry(now_ns=next(at), margin=empty))
    wanted = replace(intent(size="2", symbol=PERP, price="100", intent_id="lev-1"), leverage=D(10))
    message = jr.JournalIntent(intent=intent_to_pb(wanted, None, None), bid="99.9", ask="100.1", last="100")
    entries.append(jr.JournalEntry(now_ns=next(at), intent=message))
    core = new_core(entries[0])
    for entry in entries[1:]:
        verdict = apply_entry(core, entry)
    assert isinstance(verdict, RiskVerdict) and verdict.allowed, verdict
    (order,) = verdict.orders
    assert order.leverage == D(10)
    entries.append(
        jr.JournalEntry(now_ns=next(at), fill=jr.JournalFill(venue="sim", fill=fill_to_pb(fill(order))))
    )
    entries.append(jr.JournalEntry(now_ns=next(at), margin=_margin("96", "100")))
    entries.append(
        jr.JournalEntry(now_ns=next(at), mark=jr.JournalMark(venue="sim", symbol=PERP, price="98.7"))
    )
    for entry in entries[len(entries) - 3 :]:
        apply_entry(core, entry)
    reducing = next(w.order for w in core.book.orders if w.order.role is OrderRole.FLATTEN)
    entries.append(_fill(next(at), reducing, "1", "98.6"))
    entries.append(jr.JournalEntry(now_ns=next(at), margin=_margin("96.2", "98.6")))
    liquidated = replace(
        fill(reducing, size="1", price="96.1"), client_order_id="", order_id="liq", liquidation=True
    )
    entries.append(
        jr.JournalEntry(now_ns=next(at), fill=jr.JournalFill(venue="sim", fill=fill_to_pb(liquidated)))
    )
    return entries


def _fill(now_ns: int, order: PlaceOrder, size: str, price: str) -> jr.JournalEntry:
    made = fill_to_pb(fill(order, size=size, price=price))
    return jr.JournalEntry(now_ns=now_ns, fill=jr.JournalFill(venue="sim", fill=made))


JOURNAL = _journal()


def _replayed(entries: list[jr.JournalEntry]) -> tuple[InspectorCore, Audit, list[Any]]:
    core, audit, results = new_core(entries[0]), Audit(), []
    for entry in entries[1:]:
        result = apply_entry(core, entry)
        audit.observe(entry, result)
        results.append(result)
    return core, audit, results


def test_the_journal_replays_the_leverage_policies_decisions() -> None:
    core, _, results = _replayed(JOURNAL)
    events = [e for r in results for e in (r.output.events if isinstance(r, RiskVerdict) else r.events)]
    assert [e.policy for e in events if e.action is RiskAction.REDUCE] == ["liquidation.min_distance_open"]
    assert any(e.policy == "liquidation.venue" for e in events)
    assert core.state is RiskState.STANDING_DOWN
    again, _, results_again = _replayed(JOURNAL)
    assert results_again == results and dump(again) == dump(core)


def test_a_snapshot_after_any_entry_restores_the_margin_state_whole() -> None:
    core, audit = new_core(JOURNAL[0]), Audit()
    policies = JOURNAL[0].start.policies
    held = 0
    for number, entry in enumerate(JOURNAL[1:], start=1):
        audit.observe(entry, apply_entry(core, entry))
        held += bool(core.margin.positions) + bool(core.margin.reduced)
        snap = jr.JournalSnapshot.FromString(
            to_snapshot(core, audit, JOURNAL[0], policies, (1, 0)).SerializeToString()
        )
        restored, restored_audit = from_snapshot(snap), audit_from_snapshot(snap)
        assert dump((restored, restored_audit)) == dump((core, audit)), f"after entry {number}"
    assert held > 0, "the journal reached margin state the snapshot must hold"


def test_a_restored_core_answers_the_rest_of_the_journal_as_the_original() -> None:
    for cut in range(3, len(JOURNAL)):
        core, audit, _ = _replayed(JOURNAL[:cut])
        snap = to_snapshot(core, audit, JOURNAL[0], JOURNAL[0].start.policies, (1, 0))
        again = from_snapshot(jr.JournalSnapshot.FromString(snap.SerializeToString()))
        for entry in JOURNAL[cut:]:
            assert apply_entry(again, entry) == apply_entry(core, entry), f"cut at {cut}"
        assert dump(again) == dump(core)


def test_a_reduce_events_side_closes_the_long() -> None:
    _, _, results = _replayed(JOURNAL[:7])
    reduce = [
        a for r in results if not isinstance(r, RiskVerdict) for a in r.actions if isinstance(a, PlaceOrder)
    ]
    flatten = [a for a in reduce if a.role is OrderRole.FLATTEN]
    assert [(a.side, a.size, a.reduce_only) for a in flatten] == [(Side.SELL, D(1), True)]
