"""Synthetic inspector journals: a real InspectorCore trading against a toy venue that answers
its actions as a venue would (acknowledgements, market orders filled in parts, resting
protective orders filled when the price walks through them, some protective orders refused,
cancels), a mark a second per market, and, in `rich` journals, operator commands, a policy
change, a legacy position, and market entries answered FILLED before their fills come (as the
venue's PlaceOrder answer comes before the fills through ingest and the bus). The entries are
what the live shell would have journaled (trademesh.core.inspector.runtime). Used by the snapshot tests
and bench/inspector_replay.py."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as cm
from trademesh.core.domain.convert import SIDE_TO_PB
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Side
from trademesh.core.inspector.convert import order_snapshot
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import (
    Amend,
    CancelAll,
    CancelOrder,
    OrderAction,
    OrderRole,
    PlaceOrder,
    QueryOrder,
)
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskVerdict
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["START_NS", "make_journal"]

VENUE = "sim"
SECOND = 1_000_000_000
START_NS = 1_790_000_000 * SECOND
_MARKETS = {"BTC/USDT": Decimal(65000), "ETH/USDT": Decimal(3200)}
_SIZES = {"BTC/USDT": "0.05", "ETH/USDT": "0.8"}
POLICIES = """[position]
max_notional = "20000"
[orders]
max_notional = "10000"
[loss]
max_loss_streak = 4
[rate]
window_ms = 1000
max_per_strategy = 20
[protect]
stop_loss = "0.004"
take_profit = "0.006"
trailing_stop = "0.005"
"""
_CHANGED = POLICIES.replace('take_profit = "0.006"', 'take_profit = "0.008"')


@dataclass
class ToyVenue:
    """Answers the core's actions as a venue would, each answer a journal entry."""

    rng: random.Random
    prices: dict[str, Decimal]
    refuse_every: int = 0  # every n-th protective placement is refused (0: none)
    answer_first: bool = False  # some market entries answered FILLED before their fills
    resting: dict[str, tf.Order] = field(default_factory=dict)
    orders: dict[str, PlaceOrder] = field(default_factory=dict)
    fills: int = 0
    protective: int = 0

    def answer(self, action: OrderAction, now_ns: int) -> list[jr.JournalEntry]:
        if isinstance(action, PlaceOrder):
            return self._place(action, now_ns)
        if isinstance(action, CancelOrder):
            return self._cancel(action.client_order_id, now_ns)
        if isinstance(action, Amend):  # as the executor carries it out today: cancel, then place
            return self._cancel(action.client_order_id, now_ns) + self._place(action.order, now_ns)
        if isinstance(action, CancelAll):
            return [e for coid in list(self.resting) for e in self._cancel(coid, now_ns)]
        assert isinstance(action, QueryOrder), f"the toy venue has no answer to {action}"
        result = jr.JournalQueryResult(client_order_id=action.client_order_id)
        if action.client_order_id in self.resting:
            result.order.CopyFrom(self.resting[action.client_order_id])
        return [jr.JournalEntry(now_ns=now_ns, query_result=result)]

    def _cancel(self, coid: str, now_ns: int) -> list[jr.JournalEntry]:
        order = self.resting.pop(coid, None)
        return [] if order is None else [_update(order, tf.ORDER_STATUS_CANCELED, now_ns)]

    def _place(self, order: PlaceOrder, now_ns: int) -> list[jr.JournalEntry]:
        pb = order_snapshot(order, tf.ORDER_STATUS_OPEN, "", now_ns)
        if order.role.protective:
            self.protective += 1
            if self.refuse_every and self.protective % self.refuse_every == 0:
                pb.status_reason = "toy venue: refused"
                return [_update(pb, tf.ORDER_STATUS_REJECTED, now_ns)]
        self.orders[order.client_order_id] = order
        if order.trigger_price is None and order.price is None:  # market: filled now, in parts
            parts = self.rng.randint(1, 3)
            filled = self._fill(order, pb, self.prices[order.symbol], now_ns, parts)
            if self.answer_first and order.role is OrderRole.ENTRY and self.rng.random() < 0.5:
                return [filled[-1], *filled[:-1]]  # the answer, then the fills (no update after)
            return filled
        self.resting[order.client_order_id] = pb
        return [_update(pb, tf.ORDER_STATUS_OPEN, now_ns)]

    def walk(self, now_ns: int) -> list[jr.JournalEntry]:
        """The resting orders the price crossed, filled."""
        out: list[jr.JournalEntry] = []
        for coid, pb in list(self.resting.items()):
            order = self.orders[coid]
            if _crossed(order, self.prices[order.symbol]):
                del self.resting[coid]
                out += self._fill(order, pb, self.prices[order.symbol], now_ns, 1)
        return out

    def _fill(
        self, order: PlaceOrder, pb: tf.Order, price: Decimal, now_ns: int, parts: int
    ) -> list[jr.JournalEntry]:
        out = []
        left = order.size
        for part in range(parts):
            size = left if part == parts - 1 else (order.size / parts).quantize(Decimal("0.0001"))
            left -= size
            self.fills += 1
            fill = tf.Fill(
                fill_id=f"f{self.fills}",
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=SIDE_TO_PB[order.side],
                price=format_decimal(price),
                size=format_decimal(size),
                fee=format_decimal((price * size * Decimal("0.001")).quantize(Decimal("0.00000001"))),
                fee_asset="USDT",
                ts_event_ns=now_ns,
            )
            out.append(jr.JournalEntry(now_ns=now_ns, fill=jr.JournalFill(venue=VENUE, fill=fill)))
        pb.filled_size = pb.size
        pb.average_fill_price = format_decimal(price)
        out.append(_update(pb, tf.ORDER_STATUS_FILLED, now_ns))
        return out


def _crossed(order: PlaceOrder, price: Decimal) -> bool:
    sells = order.side is Side.SELL
    if order.trigger_price is not None:  # a stop triggers moving against the position
        return price <= order.trigger_price if sells else price >= order.trigger_price
    assert order.price is not None
    return price >= order.price if sells else price <= order.price


def _update(order: tf.Order, status: tf.OrderStatus.ValueType, now_ns: int) -> jr.JournalEntry:
    update = tf.Order()
    update.CopyFrom(order)
    update.status = status
    update.updated_ns = now_ns
    return jr.JournalEntry(now_ns=now_ns, order_update=update)


def _intent(number: int, symbol: str, price: Decimal, now_ns: int, limit: bool) -> jr.JournalEntry:
    side = cm.SIDE_BUY if number % 2 == 0 else cm.SIDE_SELL
    intent = am.Intent(
        intent_id=f"i{number}",
        venue=VENUE,
        symbol=symbol,
        side=side,
        size=_SIZES[symbol],
        entry_type=tf.ORDER_TYPE_LIMIT if limit else tf.ORDER_TYPE_MARKET,
        entry_price=format_decimal(price) if limit else "",
        expires_at_ns=now_ns + 30 * SECOND,
        strategy_id=f"s{number % 3}",
        ts_intent_ns=now_ns,
    )
    spread = price / 10_000
    journaled = jr.JournalIntent(
        intent=intent, bid=format_decimal(price - spread), ask=format_decimal(price + spread)
    )
    return jr.JournalEntry(now_ns=now_ns, intent=journaled)


# One market of each kind: a spot one is never sold short (its sell entries sell what their
# strategy holds), the other (taken for a perpetual) is.
_KINDS = {"BTC/USDT": cm.INSTRUMENT_KIND_PERPETUAL, "ETH/USDT": cm.INSTRUMENT_KIND_SPOT}


def _instruments(now_ns: int) -> jr.JournalEntry:
    """The venue's facts: a lot of 0.001 and a minimum notional a small part fill misses."""
    facts = [
        cm.Instrument(
            venue=VENUE,
            symbol=symbol,
            kind=_KINDS[symbol],
            base_asset=symbol.split("/")[0],
            quote_asset="USDT",
            tick_size="0.01",
            lot_size="0.001",
            min_size="0.001",
            min_notional="100",
        )
        for symbol in sorted(_MARKETS)
    ]
    return jr.JournalEntry(now_ns=now_ns, instruments=jr.JournalInstruments(venue=VENUE, instruments=facts))


def _command(kind: jr.JournalCommand.Kind.ValueType, now_ns: int) -> jr.JournalEntry:
    return jr.JournalEntry(now_ns=now_ns, command=jr.JournalCommand(kind=kind, reason="test"))


def _extras(second: int, seconds: int, now_ns: int) -> list[jr.JournalEntry]:
    """A rich journal's operator inputs, at fixed points of its span."""
    if second == 1:
        legacy = jr.JournalLegacy(venue=VENUE, symbol="SOL/USDT", size="3", entry_price="150")
        return [jr.JournalEntry(now_ns=now_ns, legacy=legacy), _instruments(now_ns)]
    stand = jr.JournalVenueStand(venue=VENUE, reason="positions diverged (test)")
    at = {
        seconds // 8: [jr.JournalEntry(now_ns=now_ns, venue_stand=stand)],
        seconds // 8 + 40: [jr.JournalEntry(now_ns=now_ns, venue_stand=jr.JournalVenueStand(venue=VENUE))],
        seconds // 4: [_command(jr.JournalCommand.KIND_STAND_DOWN, now_ns)],
        seconds // 4 + 30: [_command(jr.JournalCommand.KIND_RESUME, now_ns)],
        seconds // 2: [jr.JournalEntry(now_ns=now_ns, policies=_CHANGED)],
        seconds * 3 // 4: [_command(jr.JournalCommand.KIND_CLOSE_ALL, now_ns)],
        seconds * 3 // 4 + 20: [_command(jr.JournalCommand.KIND_RESUME, now_ns)],
    }
    return at.get(second, [])


def make_journal(
    seconds: int, *, intent_every_s: int = 20, seed: int = 7, rich: bool = False
) -> list[jr.JournalEntry]:
    """`seconds` of trading, as the entries the live shell would have journaled."""
    rng = random.Random(seed)
    start = jr.JournalStart(policies=POLICIES, starting_equity="100000", instance="toy")
    entries = [jr.JournalEntry(now_ns=START_NS, start=start)]
    core = new_core(entries[0])
    venue = ToyVenue(rng, dict(_MARKETS), refuse_every=7 if rich else 0, answer_first=rich)
    intents = 0
    for second in range(1, seconds + 1):
        now = START_NS + second * SECOND
        _wake(core, venue, now, entries)
        for symbol, price in venue.prices.items():
            venue.prices[symbol] = max(price / 2, price + price * Decimal(rng.randint(-8, 8)) / 10_000)
        pending = venue.walk(now) + (_extras(second, seconds, now) if rich else [])
        if second % intent_every_s == 0:
            symbol = sorted(_MARKETS)[intents % len(_MARKETS)]
            if core.book.positions.size((VENUE, symbol)) == 0:
                limit = rich and intents % 4 == 3
                pending.append(_intent(intents, symbol, venue.prices[symbol], now, limit))
                intents += 1
        for symbol, price in venue.prices.items():
            mark = jr.JournalMark(venue=VENUE, symbol=symbol, price=format_decimal(price))
            pending.append(jr.JournalEntry(now_ns=now, mark=mark))
        _feed(core, venue, pending, entries)
    return entries


def _wake(core: InspectorCore, venue: ToyVenue, before_ns: int, out: list[jr.JournalEntry]) -> None:
    """The timer entries the shell journals when the core asked to be woken before `before_ns`."""
    while core.wake_ns is not None and core.wake_ns < before_ns:
        timer = jr.JournalEntry(now_ns=core.wake_ns, timer=jr.JournalTimer(due_ns=core.wake_ns))
        _feed(core, venue, [timer], out)


def _feed(
    core: InspectorCore, venue: ToyVenue, pending: list[jr.JournalEntry], out: list[jr.JournalEntry]
) -> None:
    while pending:
        entry = pending.pop(0)
        out.append(entry)
        result = apply_entry(core, entry)
        output = result.output if isinstance(result, RiskVerdict) else result
        for action in output.actions:
            pending.extend(venue.answer(action, entry.now_ns))
