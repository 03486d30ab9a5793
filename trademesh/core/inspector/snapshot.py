"""The core's whole state as a journal entry (risk.v1.JournalSnapshot), and the core rebuilt
from one: a restart begins at the latest snapshot and replays only the entries after it
(trademesh.core.inspector.input_journal), so its length does not grow with the journal's age.

Every piece of the core's state is here; tests/unit/test_inspector_snapshot.py compares a core
with its restored copy attribute by attribute, so a piece added to the core and left out here
fails there."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import (
    KIND_FROM_PB,
    KIND_TO_PB,
    ORDER_TYPE_FROM_PB,
    ORDER_TYPE_TO_PB,
    SIDE_FROM_PB,
    SIDE_TO_PB,
    TIF_FROM_PB,
    TIF_TO_PB,
)
from trademesh.core.inspector.audit import Audit, FaceOf, MultiplierOf, OrderRecord
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskState, Transition
from trademesh.core.inspector.engine.guard import Gap, Guard
from trademesh.core.inspector.engine.instruments import InstrumentFacts, Minimum
from trademesh.core.inspector.engine.policy_file import load_policies
from trademesh.core.inspector.engine.positions import Key, PositionState
from trademesh.core.inspector.engine.protect import Levels
from trademesh.core.inspector.engine.working import WorkingOrder
from trademesh.core.inspector.margin_convert import margin_to_pb, report_from_pb
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = ["audit_from_snapshot", "from_snapshot", "to_snapshot"]


def _text(value: Decimal) -> str:
    """Exact: Decimal(str(x)) keeps x's digits and exponent (format_decimal would normalize them)."""
    return str(value)


def _dec(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _opt(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _key(key: Key) -> jr.SnapshotKey:
    return jr.SnapshotKey(venue=key[0], symbol=key[1])


def _at(key: jr.SnapshotKey) -> Key:
    return (key.venue, key.symbol)


def to_snapshot(
    core: InspectorCore,
    audit: Audit,
    start: jr.JournalEntry,
    policies: str,
    through: tuple[int, int],
) -> jr.JournalSnapshot:
    """`core` and the shell's `audit` as they are after the entry `through` (its stream id),
    under the policy text `policies` (the last policy input); `start` the journal's start entry."""
    snap = jr.JournalSnapshot(
        start=start.start,
        start_ns=start.now_ns,
        book=core.protector.book,
        through_ms=through[0],
        through_seq=through[1],
        policies=policies,
        orders_asked=core.book.orders.asked,
        fees=_text(core._fees),
        intents=core._intents,
        fills=sorted(core._fills),
        suppressed={s: _text(v) for s, v in core._suppressed.items()},
    )
    _book_to(core, snap)
    _protection_to(core, snap)
    _risk_to(core, snap)
    for record in audit.records.values():
        snap.audit.append(_record_to(record))
    return snap


def _record_to(record: OrderRecord) -> jr.SnapshotAudit:
    return jr.SnapshotAudit(
        order=_place_to(record.order),
        intent_price=_dec(record.intent_price),
        placed_ns=record.placed_ns,
        filled=_text(record.filled),
        notional=_text(record.notional),
        fees=_text(record.fees),
        fills=record.fills,
        last_fill_ns=record.last_fill_ns,
        status=record.status,  # type: ignore[arg-type]
        fill_ids=sorted(record.fill_ids),
        face_value=_dec(record.face),
        coin_notional="" if record.face is None else _text(record.coin),
        multiplier="" if record.multiplier == 1 else _text(record.multiplier),
    )


def _book_to(core: InspectorCore, snap: jr.JournalSnapshot) -> None:
    book = core.book
    for key, p in book.positions.positions.items():
        snap.positions.add(
            key=_key(key),
            size=_text(p.size),
            avg_price=_text(p.avg_price),
            realized=_text(p.realized),
            trade_pnl=_text(p.trade_pnl),
        )
    for (strategy, venue, symbol), size in book.positions.by_strategy.items():
        snap.shares.add(strategy_id=strategy, key=_key((venue, symbol)), size=_text(size))
    for working in book.orders:
        snap.orders.append(_order_to(working))
    for key, price in book.marks.items():
        snap.marks.add(key=_key(key), price=_text(price))
    for key, (size, entry) in book.legacy.items():
        snap.legacy.add(key=_key(key), size=_text(size), entry_price=_dec(entry))
    snap.venues_down.update(book.venues_down)
    for key, why in book.delisted.items():
        snap.delisted.add(key=_key(key), reason=why)
    snap.margin.extend(margin_to_pb(core.margin))
    for key, order_id in core.margin.reduced.items():
        snap.reduced.add(key=_key(key), reason=order_id)


def _order_to(working: WorkingOrder) -> jr.SnapshotOrder:
    snap = _place_to(working.order)
    snap.filled = _text(working.filled)
    snap.unknown, snap.cancelling, snap.triggered = working.unknown, working.cancelling, working.triggered
    snap.accepted = working.accepted
    snap.final_size = _dec(working.final_size)
    snap.reported = _text(working.reported) if working.reported else ""
    snap.number = working.number
    return snap


def _place_to(order: PlaceOrder) -> jr.SnapshotOrder:
    return jr.SnapshotOrder(
        client_order_id=order.client_order_id,
        key=_key((order.venue, order.symbol)),
        side=SIDE_TO_PB[order.side],
        type=ORDER_TYPE_TO_PB[order.type],
        size=_text(order.size),
        price=_dec(order.price),
        time_in_force=TIF_TO_PB[order.time_in_force],
        reduce_only=order.reduce_only,
        role=order.role.value,
        intent_id=order.intent_id,
        strategy_id=order.strategy_id,
        trigger_price=_dec(order.trigger_price),
        oco_group=order.oco_group,
        leverage=_dec(order.leverage),
    )


def _protection_to(core: InspectorCore, snap: jr.JournalSnapshot) -> None:
    for key, levels in core.protector.levels.items():
        snap.levels.add(
            key=_key(key),
            stop=_text(levels.stop),
            target=_text(levels.target),
            best=_text(levels.best),
            sign=levels.sign,
            source=levels.source,
            intent_id=levels.intent_id,
            strategy_id=levels.strategy_id,
        )
    for key, count in core.protector._generation.items():
        snap.generations.add(key=_key(key), count=count)
    for coid, (stop, target) in core._levels.items():
        snap.order_levels.add(client_order_id=coid, stop=_dec(stop), target=_dec(target))
    for field, counts in (("rejected", core._rejected), ("tried", core._tried), ("flattens", core._flattens)):
        for key, count in counts.items():
            getattr(snap, field).add(key=_key(key), count=count)
    _guard_to(core.guard, snap.guard)
    for key, minimum in core._short.items():
        snap.short.append(_short_to(key, minimum))
    for key, facts in core.instruments.items():
        snap.instruments.add(
            key=_key(key),
            tick_size=_text(facts.tick_size),
            lot_size=_text(facts.lot_size),
            min_size=_text(facts.min_size),
            min_notional=_text(facts.min_notional),
            contract_value=_text(facts.contract_value),
            inverse=facts.inverse,
            kind=common.INSTRUMENT_KIND_UNSPECIFIED if facts.kind is None else KIND_TO_PB[facts.kind],
        )


def _guard_to(guard: Guard, snap: jr.SnapshotGuard) -> None:
    snap.now_ns = guard.now_ns
    for key, at in guard.retry_at.items():
        snap.retry_at.add(key=_key(key), at_ns=at)
    for key, count in guard.refusals.items():
        snap.refusals.add(key=_key(key), count=count)
    for key, reason in guard.reasons.items():
        snap.reasons.add(key=_key(key), reason=reason)
    for key, at in guard.coalesce_until.items():
        snap.coalesce_until.add(key=_key(key), at_ns=at)
    for key, at in guard.reprice_held.items():
        snap.reprice_held.add(key=_key(key), at_ns=at)
    for key, gap in guard.gaps.items():
        snap.gaps.add(key=_key(key), since_ns=gap.since_ns, due_ns=gap.due_ns, reported=gap.reported)


def _short_to(key: Key, minimum: Minimum | None) -> jr.SnapshotShort:
    if minimum is None:
        return jr.SnapshotShort(key=_key(key))
    return jr.SnapshotShort(
        key=_key(key),
        below=True,
        size=_text(minimum.size),
        notional=_text(minimum.notional),
        min_size=_text(minimum.min_size),
        min_notional=_text(minimum.min_notional),
    )


def _risk_to(core: InspectorCore, snap: jr.JournalSnapshot) -> None:
    machine = core.machine
    snap.machine.state = machine.state.value
    snap.machine.throttled_until_ns = machine.throttled_until_ns
    for t in machine.history:
        snap.machine.history.add(at_ns=t.at_ns, before=t.before.value, after=t.after.value, reason=t.reason)
    curve = core.curve
    snap.curve.start = _text(curve.start)
    snap.curve.equity = _text(curve.equity)
    snap.curve.peak = _text(curve.peak)
    snap.curve.day_open = _text(curve.day_open)
    snap.curve.day = "" if curve.day is None else curve.day.isoformat()
    snap.loss_streak = core.streak.count
    snap.had_loss = core.streak.last_loss_ns is not None
    snap.last_loss_ns = core.streak.last_loss_ns or 0
    for name, times in core._rates._times.items():
        snap.rates.add(name=name, times_ns=list(times))


def audit_from_snapshot(
    snap: jr.JournalSnapshot, face_of: FaceOf | None = None, multiplier_of: MultiplierOf | None = None
) -> Audit:
    audit = Audit()
    if face_of is not None:
        audit.face_of = face_of
    if multiplier_of is not None:
        audit.multiplier_of = multiplier_of
    for r in snap.audit:
        record = OrderRecord(_order_from(r.order), _opt(r.intent_price), r.placed_ns, face=_opt(r.face_value))
        record.coin = Decimal(r.coin_notional or "0")
        record.multiplier = Decimal(r.multiplier or "1")
        record.filled, record.notional, record.fees = Decimal(r.filled), Decimal(r.notional), Decimal(r.fees)
        record.fills, record.last_fill_ns, record.status = r.fills, r.last_fill_ns, r.status
        record.fill_ids = set(r.fill_ids)
        audit.records[record.order.client_order_id] = record
    return audit


def from_snapshot(snap: jr.JournalSnapshot) -> InspectorCore:
    """The core `snap` describes (its policies parsed from their text)."""
    curve = snap.curve
    core = InspectorCore(load_policies(snap.policies), Decimal(curve.start), 0, snap.book)
    core._fees = Decimal(snap.fees)
    core._intents = dict(snap.intents)
    core._fills = set(snap.fills)
    core._suppressed = {s: Decimal(v) for s, v in snap.suppressed.items()}
    _book_from(snap, core)
    _protection_from(snap, core)
    _risk_from(snap, core)
    return core


def _book_from(snap: jr.JournalSnapshot, core: InspectorCore) -> None:
    book = core.book
    for p in snap.positions:
        book.positions.positions[_at(p.key)] = PositionState(
            Decimal(p.size), Decimal(p.avg_price), Decimal(p.realized), Decimal(p.trade_pnl)
        )
    for share in snap.shares:
        book.positions.by_strategy[(share.strategy_id, *_at(share.key))] = Decimal(share.size)
    for order in snap.orders:
        working = book.orders.add(_order_from(order))
        working.filled = Decimal(order.filled)
        working.unknown, working.cancelling, working.triggered = (
            order.unknown,
            order.cancelling,
            order.triggered,
        )
        working.accepted = order.accepted
        working.final_size = _opt(order.final_size)
        working.reported = Decimal(order.reported or "0")
        working.number = order.number
    book.orders.asked = snap.orders_asked
    book.marks = {_at(m.key): Decimal(m.price) for m in snap.marks}
    book.legacy = {_at(item.key): (Decimal(item.size), _opt(item.entry_price)) for item in snap.legacy}
    book.venues_down = dict(snap.venues_down)
    book.delisted = {_at(item.key): item.reason for item in snap.delisted}
    for entry in snap.margin:
        core.margin.apply(report_from_pb(entry))
    core.margin.reduced = {_at(item.key): item.reason for item in snap.reduced}


def _order_from(order: jr.SnapshotOrder) -> PlaceOrder:
    return PlaceOrder(
        client_order_id=order.client_order_id,
        venue=order.key.venue,
        symbol=order.key.symbol,
        side=SIDE_FROM_PB[order.side],
        type=ORDER_TYPE_FROM_PB[order.type],
        size=Decimal(order.size),
        price=_opt(order.price),
        time_in_force=TIF_FROM_PB[order.time_in_force],
        reduce_only=order.reduce_only,
        role=OrderRole(order.role),
        intent_id=order.intent_id,
        strategy_id=order.strategy_id,
        trigger_price=_opt(order.trigger_price),
        oco_group=order.oco_group,
        leverage=_opt(order.leverage),
    )


def _protection_from(snap: jr.JournalSnapshot, core: InspectorCore) -> None:
    core.protector.levels = {
        _at(lv.key): Levels(
            Decimal(lv.stop),
            Decimal(lv.target),
            Decimal(lv.best),
            lv.sign,
            lv.source,
            lv.intent_id,
            lv.strategy_id,
        )
        for lv in snap.levels
    }
    core.protector._generation = {_at(g.key): g.count for g in snap.generations}
    core._levels = {lv.client_order_id: (_opt(lv.stop), _opt(lv.target)) for lv in snap.order_levels}
    core._rejected = {_at(c.key): c.count for c in snap.rejected}
    core._tried = {_at(c.key): c.count for c in snap.tried}
    core._flattens = {_at(c.key): c.count for c in snap.flattens}
    _guard_from(snap.guard, core.guard)
    core._short = {
        _at(m.key): (
            Minimum(Decimal(m.size), Decimal(m.notional), Decimal(m.min_size), Decimal(m.min_notional))
            if m.below
            else None
        )
        for m in snap.short
    }
    core.instruments = {
        _at(f.key): InstrumentFacts(
            Decimal(f.tick_size),
            Decimal(f.lot_size),
            Decimal(f.min_size),
            Decimal(f.min_notional),
            Decimal(f.contract_value),
            f.inverse,
            KIND_FROM_PB.get(f.kind),
        )
        for f in snap.instruments
    }


def _guard_from(snap: jr.SnapshotGuard, guard: Guard) -> None:
    guard.now_ns = snap.now_ns
    guard.retry_at = {_at(t.key): t.at_ns for t in snap.retry_at}
    guard.refusals = {_at(c.key): c.count for c in snap.refusals}
    guard.reasons = {_at(r.key): r.reason for r in snap.reasons}
    guard.coalesce_until = {_at(t.key): t.at_ns for t in snap.coalesce_until}
    guard.reprice_held = {_at(t.key): t.at_ns for t in snap.reprice_held}
    guard.gaps = {_at(g.key): Gap(g.since_ns, g.due_ns, g.reported) for g in snap.gaps}


def _risk_from(snap: jr.JournalSnapshot, core: InspectorCore) -> None:
    machine = core.machine
    machine.state = RiskState(snap.machine.state)
    machine.throttled_until_ns = snap.machine.throttled_until_ns
    machine.history = [
        Transition(t.at_ns, RiskState(t.before), RiskState(t.after), t.reason) for t in snap.machine.history
    ]
    curve = core.curve
    curve.equity, curve.peak = Decimal(snap.curve.equity), Decimal(snap.curve.peak)
    curve.day_open = Decimal(snap.curve.day_open)
    curve.day = date.fromisoformat(snap.curve.day) if snap.curve.day else None
    core.streak.count = snap.loss_streak
    core.streak.last_loss_ns = snap.last_loss_ns if snap.had_loss else None
    core._rates._times = {r.name: sorted(r.times_ns) for r in snap.rates}
