"""Post-trade audit: per order, what was asked against what happened (slippage against the
intent's price in bps, fill rate, time to fill, fees, partial fills), and the same aggregated
per strategy and per venue. Built from the journal's entries and the core's answers, so a
restarted inspector has the audit it had. Pure.

An inverse contract's order (BTC/USD:BTC, sized in contracts of a face value in the quote
asset) is valued as the rest of the inspector values it: its filled notional is the face value
filled (contracts x face), and its average fill price the harmonic mean of the fills' prices
weighted by face, face / (the sum of face / price: the coin the fills were worth), which is the
price a position of those fills holds (docs/inspector.md). Its slippage is that average against
the intent's price, as for any other order. A linear contract of a value other than one base
unit a contract (OKX's BTC-USDT-SWAP: 0.01 BTC) is valued at size x value x price, its average
the notional over size x value."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.domain.convert import SIDE_TO_PB
from trademesh.core.domain.decimals import WIDE
from trademesh.core.domain.decimals import format_optional as dec
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.actions import PlaceOrder
from trademesh.core.inspector.engine.events import RiskOutput, RiskVerdict
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["Audit", "FaceOf", "MultiplierOf", "OrderRecord"]

# An inverse contract's face value a unit of size at (venue, symbol); None for any other market.
FaceOf = Callable[[str, str], Decimal | None]
# A linear contract's value a unit of size in the base asset at (venue, symbol) (1: spot).
MultiplierOf = Callable[[str, str], Decimal]

ZERO = Decimal(0)
_BPS = Decimal(10_000)
_PRICE_STEP = Decimal("1e-18")
_KEPT = 10_000  # orders kept (the oldest leave first)


@dataclass
class OrderRecord:
    order: PlaceOrder
    intent_price: Decimal | None
    placed_ns: int
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO
    fills: int = 0
    last_fill_ns: int = 0
    status: int = tf.ORDER_STATUS_UNSPECIFIED
    fill_ids: set[str] = field(default_factory=set)
    face: Decimal | None = None  # an inverse contract's face value a unit of size
    coin: Decimal = ZERO  # an inverse order's fills in its coin: the sum of face / price
    multiplier: Decimal = Decimal(1)  # a linear contract's value a unit of size (base asset)

    @property
    def average(self) -> Decimal | None:
        if not self.filled:
            return None
        if self.face is not None:
            return _price(WIDE.divide(self.notional, self.coin)) if self.coin else None
        return self.notional / (self.filled * self.multiplier)

    def add_fill(self, size: Decimal, price: Decimal) -> None:
        """A fill's size and notional: size x price, or an inverse one's face (its coin kept)."""
        self.filled += size
        if self.face is None:
            self.notional += size * self.multiplier * price
            return
        face = size * self.face
        self.notional += face
        self.coin += WIDE.divide(face, price)

    @property
    def slippage_bps(self) -> Decimal | None:
        """Positive is worse for us: paid more on a buy, got less on a sell."""
        average, asked = self.average, self.intent_price
        if average is None or not asked:
            return None
        sign = 1 if self.order.side is Side.BUY else -1
        return (average - asked) / asked * _BPS * sign

    @property
    def fill_rate(self) -> Decimal:
        return self.filled / self.order.size if self.order.size else ZERO

    @property
    def time_to_fill_ns(self) -> int:
        return self.last_fill_ns - self.placed_ns if self.fills else 0


def _price(value: Decimal) -> Decimal:
    """A harmonic mean to 1e-18, without trailing zeros: a face over a sum of quotients."""
    rounded = value.quantize(_PRICE_STEP, context=WIDE)
    return rounded.quantize(Decimal(1)) if rounded == rounded.to_integral_value() else rounded.normalize(WIDE)


def _intent_price(entry: jr.JournalEntry) -> Decimal | None:
    intent = entry.intent
    if intent.intent.entry_price:
        return Decimal(intent.intent.entry_price)
    far = intent.ask if intent.intent.side == SIDE_TO_PB[Side.BUY] else intent.bid
    text = far or intent.last
    return Decimal(text) if text else None


def _no_face(venue: str, symbol: str) -> Decimal | None:
    return None


def _unit(venue: str, symbol: str) -> Decimal:
    return Decimal(1)


class Audit:
    def __init__(self, face_of: FaceOf = _no_face, multiplier_of: MultiplierOf = _unit) -> None:
        self.records: dict[str, OrderRecord] = {}
        self.face_of = face_of
        self.multiplier_of = multiplier_of

    def observe(self, entry: jr.JournalEntry, result: RiskOutput | RiskVerdict) -> None:
        kind = entry.WhichOneof("input")
        output = result.output if isinstance(result, RiskVerdict) else result
        price = _intent_price(entry) if kind == "intent" else None
        for action in output.actions:
            if isinstance(action, PlaceOrder) and action.client_order_id not in self.records:
                asked = price if kind == "intent" else (action.price or action.trigger_price)
                face = self.face_of(action.venue, action.symbol)
                multiplier = self.multiplier_of(action.venue, action.symbol)
                record = OrderRecord(action, asked, entry.now_ns, face=face, multiplier=multiplier)
                self.records[action.client_order_id] = record
        if kind == "fill":
            self._fill(entry.fill.fill)
        elif kind == "order_update":
            self.status(entry.order_update)
        while len(self.records) > _KEPT:
            del self.records[next(iter(self.records))]

    def status(self, order: tf.Order) -> None:
        """An order's status as the venue last gave it."""
        record = self.records.get(order.client_order_id)
        if record is not None:
            record.status = order.status

    def _fill(self, fill: tf.Fill) -> None:
        record = self.records.get(fill.client_order_id)
        if record is None or fill.fill_id in record.fill_ids:
            return
        record.fill_ids.add(fill.fill_id)
        record.add_fill(Decimal(fill.size), Decimal(fill.price))
        record.fees += Decimal(fill.fee or "0")
        record.fills += 1
        record.last_fill_ns = max(record.last_fill_ns, fill.ts_event_ns)

    def report(self, venue: str, strategy: str, limit: int) -> rk.GetAuditResponse:
        chosen = [
            r for r in self.records.values()
            if (not venue or r.order.venue == venue) and (not strategy or r.order.strategy_id == strategy)
        ]  # fmt: skip
        answer = rk.GetAuditResponse(orders=[_order(r) for r in chosen[-limit:][::-1]])
        scopes: dict[str, list[OrderRecord]] = {}
        for record in chosen:
            if record.order.strategy_id:
                scopes.setdefault(f"strategy/{record.order.strategy_id}", []).append(record)
            scopes.setdefault(f"venue/{record.order.venue}", []).append(record)
        answer.summaries.extend(_summary(scope, records) for scope, records in sorted(scopes.items()))
        return answer


def _order(r: OrderRecord) -> rk.OrderAudit:
    return rk.OrderAudit(
        client_order_id=r.order.client_order_id,
        intent_id=r.order.intent_id,
        strategy_id=r.order.strategy_id,
        venue=r.order.venue,
        symbol=r.order.symbol,
        side=SIDE_TO_PB[r.order.side],
        intent_price=dec(r.intent_price),
        average_fill_price=dec(r.average),
        slippage_bps=dec(_rounded(r.slippage_bps)),
        size=dec(r.order.size),
        filled_size=dec(r.filled),
        fill_rate=dec(_rounded(r.fill_rate)),
        time_to_fill_ns=r.time_to_fill_ns,
        fees=dec(r.fees),
        fills=r.fills,
        role=r.order.role.value,
        status=r.status,  # type: ignore[arg-type]
        placed_ns=r.placed_ns,
    )


def _rounded(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.0001"))


def _weighted(records: Iterable[OrderRecord]) -> Decimal | None:
    pairs = [(r.slippage_bps, r.filled) for r in records if r.slippage_bps is not None]
    total = sum((w for _, w in pairs), ZERO)
    if not total:
        return None
    return sum((s * w for s, w in pairs if s is not None), ZERO) / total


def _summary(scope: str, records: list[OrderRecord]) -> rk.AuditSummary:
    filled = [r for r in records if r.fills]
    times = [r.time_to_fill_ns for r in filled]
    rates = [r.fill_rate for r in records]
    return rk.AuditSummary(
        scope=scope,
        orders=len(records),
        filled_notional=dec(sum((r.notional for r in records), ZERO)),
        mean_slippage_bps=dec(_rounded(_weighted(records))),
        mean_fill_rate=dec(_rounded(sum(rates, ZERO) / len(rates)) if rates else None),
        median_time_to_fill_ns=int(statistics.median(times)) if times else 0,
        fees=dec(sum((r.fees for r in records), ZERO)),
        partially_filled=sum(1 for r in records if 0 < r.filled < r.order.size),
    )
