"""The inspector's wire forms: intents in (validated, field by field), risk events, transitions
and states out, and the core's order actions as TradeFlow requests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.contracts.intent import MAX_AMOUNT, ExecutionIntent, intent_violations
from trademesh.core.domain.convert import (
    KIND_FROM_PB,
    ORDER_TYPE_FROM_PB,
    ORDER_TYPE_TO_PB,
    SIDE_FROM_PB,
    SIDE_TO_PB,
    TIF_FROM_PB,
    TIF_TO_PB,
)
from trademesh.core.domain.decimals import format_decimal, parse_decimal
from trademesh.core.domain.decimals import format_optional as dec
from trademesh.core.domain.model import OrderType, TimeInForce
from trademesh.core.inspector.engine.actions import OrderAction, PlaceOrder, placed_by
from trademesh.core.inspector.engine.events import RiskAction, RiskEvent, RiskState, Transition
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    TrademeshError,
)
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "ACTION_TO_PB",
    "AMENDED_IN_PLACE",
    "STATE_TO_PB",
    "amended_away",
    "decode_intent",
    "facts_from_pb",
    "intent_from_pb",
    "market_from_pb",
    "market_to_pb",
    "order_links",
    "order_snapshot",
    "place_request",
    "refusal_of",
    "refusal_reason",
    "risk_event_to_pb",
    "transition_to_pb",
    "venue_reason",
]

ACTION_TO_PB = {
    RiskAction.ALLOW: rk.RISK_ACTION_ALLOW,
    RiskAction.BLOCK: rk.RISK_ACTION_BLOCK,
    RiskAction.THROTTLE: rk.RISK_ACTION_THROTTLE,
    RiskAction.STAND_DOWN: rk.RISK_ACTION_STAND_DOWN,
    RiskAction.CLOSE_ALL: rk.RISK_ACTION_CLOSE_ALL,
    RiskAction.POLICY_CHANGE: rk.RISK_ACTION_POLICY_CHANGE,
    RiskAction.RESUME: rk.RISK_ACTION_RESUME,
    RiskAction.NOTICE: rk.RISK_ACTION_NOTICE,
    RiskAction.REDUCE: rk.RISK_ACTION_REDUCE,
}
STATE_TO_PB = {
    RiskState.ACTIVE: rk.RISK_STATE_ACTIVE,
    RiskState.THROTTLED: rk.RISK_STATE_THROTTLED,
    RiskState.STANDING_DOWN: rk.RISK_STATE_STANDING_DOWN,
    RiskState.HALTED: rk.RISK_STATE_HALTED,
}


def _positive(field: str, text: str, required: bool, bad: list[FieldViolation]) -> Decimal | None:
    """A positive decimal field, or None with its violation added to `bad`."""
    try:
        value = parse_decimal(field, text, required=required)
    except InvalidArgument as exc:
        bad.extend(exc.violations)
        return None
    if value is not None and value <= 0:
        bad.append(FieldViolation(field, f"{text} is not above 0"))
        return None
    return value


def intent_from_pb(message: am.Intent) -> ExecutionIntent:
    """An intent from the bus or SubmitIntent, each field checked for its type and its meaning
    (trademesh.core.advisor.engine.intent.intent_violations): every bad field named (`intent.<field>`)."""
    bad = _wire_violations(message)
    try:
        intent = decode_intent(message)
    except InvalidArgument as exc:
        raise InvalidArgument([*exc.violations, *bad]) from None
    reference = parse_decimal("intent.entry_price", message.entry_price, required=False)
    named = {v.field for v in bad}
    bad += [v for v in intent_violations(intent, reference) if v.field not in named]
    if bad:
        raise InvalidArgument(bad)
    return intent


def _wire_violations(message: am.Intent) -> list[FieldViolation]:
    """What only the wire form can get wrong: enums out of range, text that is no number."""
    bad = []
    if message.time_in_force not in TIF_FROM_PB and message.time_in_force != tf.TIME_IN_FORCE_UNSPECIFIED:
        bad.append(FieldViolation("intent.time_in_force", f"{message.time_in_force} is not a TimeInForce"))
    if message.venue:
        try:
            venue_name(message.venue)  # as the bus and the recorder take it
        except InvalidArgument as exc:
            bad += [FieldViolation("intent.venue", v.description) for v in exc.violations]
    for name, low, high in (("conviction", Decimal(0), Decimal(1)), ("risk_amount", Decimal(0), MAX_AMOUNT)):
        try:
            value = parse_decimal(f"intent.{name}", getattr(message, name), required=False)
        except InvalidArgument as exc:
            bad.extend(exc.violations)
            continue
        if value is not None and not low <= value <= high:
            bad.append(FieldViolation(f"intent.{name}", f"{value} is not within {low}-{high}"))
    if message.ts_signal_ns < 0:
        bad.append(FieldViolation("intent.ts_signal_ns", f"{message.ts_signal_ns} is before 1970"))
    return bad


def decode_intent(message: am.Intent) -> ExecutionIntent:
    """An intent's fields as types, checked only as far as that needs: how a journal's intents
    are read back (they were checked whole before they were journaled; a rule added since must
    not stop a replay of what was taken then).

    A MARKET intent's entry_price is the reference it was sized at: it is no limit price (the
    core values a market order at the far touch; the shell passes the reference as the last
    price when there is no market)."""
    bad: list[FieldViolation] = []
    for name in ("intent_id", "venue", "symbol", "strategy_id"):
        if not getattr(message, name):
            bad.append(FieldViolation(f"intent.{name}", "is required"))
    if message.side not in SIDE_FROM_PB:
        bad.append(FieldViolation("intent.side", "must be BUY or SELL"))
    if message.entry_type not in ORDER_TYPE_FROM_PB:
        bad.append(FieldViolation("intent.entry_type", "must be LIMIT or MARKET"))
    size = _positive("intent.size", message.size, True, bad)
    limit = message.entry_type == tf.ORDER_TYPE_LIMIT
    price = _positive("intent.entry_price", message.entry_price, limit, bad)
    stop = _positive("intent.stop_loss", message.stop_loss, False, bad)
    target = _positive("intent.take_profit", message.take_profit, False, bad)
    leverage = _positive("intent.leverage", message.leverage, False, bad)
    if bad or size is None:
        raise InvalidArgument(bad)
    kind = ORDER_TYPE_FROM_PB[message.entry_type]
    market = kind is OrderType.MARKET
    return ExecutionIntent(
        intent_id=message.intent_id,
        decision_id=message.decision_id,
        signal_id=message.signal_id,
        strategy_id=message.strategy_id,
        venue=message.venue,
        symbol=message.symbol,
        side=SIDE_FROM_PB[message.side],
        size=size,
        entry_type=kind,
        entry_price=None if market else price,
        stop_loss=stop,
        take_profit=target,
        time_in_force=TIF_FROM_PB.get(message.time_in_force, TimeInForce.IOC if market else TimeInForce.GTC),
        expires_ns=message.expires_at_ns,
        conviction=_conviction(message.conviction),
        reduce_only=message.reduce_only,
        created_ns=message.ts_intent_ns,
        leverage=leverage,
    )


def _conviction(text: str) -> float:
    """NaN when it is no plain decimal (intent_violations names it then)."""
    try:
        value = parse_decimal("intent.conviction", text, required=False)
    except InvalidArgument:
        return math.nan
    return 0.0 if value is None else float(value)


def market_to_pb(market: MarketView, entry: jr.JournalIntent) -> None:
    entry.bid, entry.ask, entry.last = dec(market.bid), dec(market.ask), dec(market.last)


def market_from_pb(entry: jr.JournalIntent) -> MarketView:
    def value(text: str) -> Decimal | None:
        return Decimal(text) if text else None

    return MarketView(value(entry.bid), value(entry.ask), value(entry.last))


def risk_event_to_pb(event: RiskEvent, event_id: str = "") -> rk.RiskEvent:
    return rk.RiskEvent(
        event_id=event_id,
        ts_ns=event.at_ns,
        action=ACTION_TO_PB[event.action],
        policy=event.policy,
        reason=event.reason,
        values=[rk.Value(name=n, value=v) for n, v in event.values],
        intent_id=event.intent_id,
        strategy_id=event.strategy_id,
        venue=event.venue,
        symbol=event.symbol,
    )


def transition_to_pb(transition: Transition) -> rk.Transition:
    return rk.Transition(
        ts_ns=transition.at_ns,
        before=STATE_TO_PB[transition.before],
        after=STATE_TO_PB[transition.after],
        reason=transition.reason,
    )


def place_request(order: PlaceOrder, native_stop: bool) -> tf.PlaceOrderRequest:
    """The TradeFlow request for a core's order. A stop-loss placed natively is the venue's
    stop-market (IOC once triggered); an emulated one is placed as a market order once it
    triggers (the core's triggered form has no trigger price)."""
    request = tf.PlaceOrderRequest(
        symbol=order.symbol,
        side=SIDE_TO_PB[order.side],
        type=ORDER_TYPE_TO_PB[order.type],
        size=format_decimal(order.size),
        price=dec(order.price),
        time_in_force=TIF_TO_PB[order.time_in_force],
        reduce_only=order.reduce_only,
        client_order_id=order.client_order_id,
    )
    if order.trigger_price is not None and native_stop:
        request.type = tf.ORDER_TYPE_STOP_MARKET
        request.trigger_price = format_decimal(order.trigger_price)
        request.time_in_force = tf.TIME_IN_FORCE_IOC
    return request


# What a venue takes as a cancel's reason (tradeflow CancelOrderRequest.reason).
_VENUE_REASON_CHARS = 256


def venue_reason(reason: str) -> str:
    """A cancel's reason as the venue records it on the order: said to be the inspector's, one
    line, within the venue's limit (an operator's reason may be as long as the venue's)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
    text = f"inspector: {line}"
    return text if len(text) <= _VENUE_REASON_CHARS else text[: _VENUE_REASON_CHARS - 1] + "…"


def order_links(actions: Sequence[OrderAction], now_ns: int) -> list[rk.OrderLink]:
    """The protective orders among `actions`, each linked to its position's intent (the ledger
    keeps the links; `trademesh trace` walks a stop's fill back to its signal)."""
    links = []
    for action in actions:
        order = placed_by(action)
        if order is not None and order.role.protective and order.intent_id:
            links.append(
                rk.OrderLink(
                    client_order_id=order.client_order_id, venue=order.venue, symbol=order.symbol,
                    intent_id=order.intent_id, strategy_id=order.strategy_id, role=order.role.value,
                    ts_ns=now_ns,
                )
            )  # fmt: skip
    return links


def order_snapshot(order: PlaceOrder, status: int, reason: str, now_ns: int) -> tf.Order:
    """An order update of our own making (a refusal, an emulated stop's end)."""
    return tf.Order(
        venue=order.venue,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=SIDE_TO_PB[order.side],
        type=ORDER_TYPE_TO_PB[order.type],
        time_in_force=TIF_TO_PB[order.time_in_force],
        reduce_only=order.reduce_only,
        price=dec(order.price),
        trigger_price=dec(order.trigger_price),
        size=format_decimal(order.size),
        filled_size="0",
        status=status,  # type: ignore[arg-type]
        status_reason=reason,
        created_ns=now_ns,
        updated_ns=now_ns,
    )


# How an order amended in place (renamed) ends under its old client order id.
AMENDED_IN_PLACE = "amended in place"


def amended_away(amended: tf.Order, old_client_order_id: str) -> tf.Order:
    """The old order's end as the core counts an amendment in place: the venue's order went on
    under the new client order id, so the old one is CANCELED (filled only what it had)."""
    ended = tf.Order()
    ended.CopyFrom(amended)
    ended.client_order_id = old_client_order_id
    ended.status = tf.ORDER_STATUS_CANCELED
    ended.status_reason = f"{AMENDED_IN_PLACE}: now {amended.client_order_id}"
    return ended


def refusal_reason(code: str, details: str) -> str:
    """A venue's refusal as the core reads it: "<gRPC code>: <details>" (an INVALID_ARGUMENT is
    a refusal of the request itself, which the core does not count toward a stand-down:
    trademesh.core.inspector.engine.guard)."""
    return f"{code}: {details}"


_REFUSAL_CODES = (
    (InvalidArgument, "INVALID_ARGUMENT"),
    (NotFound, "NOT_FOUND"),
    (FailedPrecondition, "FAILED_PRECONDITION"),
)


def refusal_of(error: TrademeshError) -> str:
    """A refusal raised in-process (a backtest's venue validation), as the live shell writes
    the venue's gRPC answer."""
    code = next((name for kind, name in _REFUSAL_CODES if isinstance(error, kind)), "FAILED_PRECONDITION")
    return refusal_reason(code, str(error))


def facts_from_pb(item: common.Instrument) -> InstrumentFacts:
    """What the core needs of a ListInstruments entry (empty decimals read as none)."""

    def value(text: str, default: Decimal = Decimal(0)) -> Decimal:
        return Decimal(text) if text else default

    value_asset = item.contract_value_asset or item.base_asset
    contract_size = value(item.contract_size, Decimal(1))
    return InstrumentFacts(
        tick_size=value(item.tick_size),
        lot_size=value(item.lot_size),
        min_size=value(item.min_size),
        min_notional=value(item.min_notional),
        contract_value=value(item.contract_value, contract_size if contract_size > 0 else Decimal(1)),
        inverse=value_asset == item.quote_asset and item.quote_asset != item.base_asset,
        kind=KIND_FROM_PB.get(item.kind),
    )
