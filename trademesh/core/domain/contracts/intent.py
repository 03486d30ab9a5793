"""The execution intent: what the advisor asks the inspector to trade (stream `intents`), and
what its fields mean, whoever made it: `intent_violations` says where an intent has no meaning
as an order (the inspector refuses it: INVALID_ARGUMENT at its API, a BLOCK from the bus). The
advisor makes intents (trademesh.core.advisor.engine.intent), the inspector checks and carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.model import OrderType, Side, TimeInForce
from trademesh.core.platform.errors import FieldViolation

__all__ = [
    "MAX_AMOUNT",
    "MAX_ID_CHARS",
    "MAX_LEVERAGE",
    "ExecutionIntent",
    "intent_violations",
    "level_violations",
]

# Past any size, price or amount a venue trades (the policies' money limits stop there too).
MAX_AMOUNT = Decimal(10) ** 15
MAX_ID_CHARS = 128
# Past any venue's leverage (Binance USD-M offers 125x; the inspector's leverage.max caps it too).
MAX_LEVERAGE = Decimal(1000)


@dataclass(frozen=True, slots=True)
class ExecutionIntent:
    intent_id: str
    decision_id: str
    signal_id: str
    strategy_id: str
    venue: str
    symbol: str
    side: Side
    size: Decimal
    entry_type: OrderType
    entry_price: Decimal | None  # None for a market entry
    stop_loss: Decimal | None
    take_profit: Decimal | None
    time_in_force: TimeInForce
    expires_ns: int
    conviction: float
    reduce_only: bool
    created_ns: int
    # Derivatives: the leverage to hold the position at (set at the venue before the order);
    # None: the venue's setting in force. Ignored for spot (docs/inspector-orders.md, "Leverage").
    leverage: Decimal | None = None


def intent_violations(intent: ExecutionIntent, reference: Decimal | None = None) -> list[FieldViolation]:
    """What in `intent` has no meaning as an order (empty when nothing): each violation named
    `intent.<field>`. `reference` is the price a market entry was sized at (its limit price is
    used for a limit entry). A market entry without one has its stop and target checked against
    each other only: against the market they are not, which moves between the check and the fill
    (a level the market has crossed by then triggers at once, reduce-only)."""
    bad = _ids(intent) + _amounts(intent) + _times(intent)
    if intent.entry_type is OrderType.MARKET and intent.time_in_force is TimeInForce.GTC:
        bad.append(FieldViolation("intent.time_in_force", "a market order cannot rest: IOC or FOK"))
    if not 0 <= intent.conviction <= 1:  # NaN too
        bad.append(FieldViolation("intent.conviction", f"{intent.conviction} is not within 0-1"))
    if intent.reduce_only:
        for name in ("stop_loss", "take_profit"):
            if getattr(intent, name) is not None:
                bad.append(
                    FieldViolation(f"intent.{name}", "a reduce-only intent closes: it sets no protection")
                )
        return bad
    price = intent.entry_price if intent.entry_price is not None else reference
    return bad + level_violations(intent.side, price, intent.stop_loss, intent.take_profit)


def level_violations(
    side: Side, price: Decimal | None, stop: Decimal | None, target: Decimal | None
) -> list[FieldViolation]:
    """A long's stop-loss below its price and its take-profit above (a short's the other way);
    the stop and the target on either side of each other, price or not."""
    sign, bad = side.sign, []
    above, below = ("above", "below") if sign > 0 else ("below", "above")
    for name, what, level, wanted, where in (
        ("stop_loss", "stop-loss", stop, -sign, below),
        ("take_profit", "take-profit", target, sign, above),
    ):
        if level is not None and price is not None and (level - price) * wanted <= 0:
            reason = f"a {side.value}'s {what} {level} is not {where} its price {price}"
            bad.append(FieldViolation(f"intent.{name}", reason))
    if stop is not None and target is not None and (target - stop) * sign <= 0:
        reason = f"a {side.value}'s take-profit {target} is not {above} its stop-loss {stop}"
        bad.append(FieldViolation("intent.take_profit", reason))
    return bad


def _ids(intent: ExecutionIntent) -> list[FieldViolation]:
    bad = []
    for name in ("intent_id", "decision_id", "signal_id", "strategy_id", "venue", "symbol"):
        value = getattr(intent, name)
        if name in ("intent_id", "strategy_id", "venue", "symbol") and not value:
            bad.append(FieldViolation(f"intent.{name}", "is required"))
        elif len(value) > MAX_ID_CHARS:
            bad.append(
                FieldViolation(f"intent.{name}", f"is {len(value)} characters long; at most {MAX_ID_CHARS}")
            )
    return bad


def _amounts(intent: ExecutionIntent) -> list[FieldViolation]:
    bad = []
    if intent.entry_type is OrderType.LIMIT and intent.entry_price is None:
        bad.append(FieldViolation("intent.entry_price", "a limit entry needs its price"))
    if intent.leverage is not None and not (
        intent.leverage.is_finite() and 0 < intent.leverage <= MAX_LEVERAGE
    ):
        bad.append(FieldViolation("intent.leverage", f"{intent.leverage} is not in (0, {MAX_LEVERAGE}]"))
    for name in ("size", "entry_price", "stop_loss", "take_profit"):
        value = getattr(intent, name)
        if value is not None and not (value.is_finite() and 0 < value <= MAX_AMOUNT):
            bad.append(FieldViolation(f"intent.{name}", f"{value} is not in (0, {MAX_AMOUNT}]"))
    return bad


def _times(intent: ExecutionIntent) -> list[FieldViolation]:
    bad = []
    if intent.created_ns < 0:
        bad.append(FieldViolation("intent.ts_intent_ns", f"{intent.created_ns} is before 1970"))
    if intent.expires_ns <= 0:
        bad.append(FieldViolation("intent.expires_at_ns", "is required (ns since the Unix epoch)"))
    elif intent.expires_ns < intent.created_ns:
        bad.append(FieldViolation("intent.expires_at_ns", "is before the intent was made (ts_intent_ns)"))
    return bad
