"""A spot market is never sold short: what a strategy can sell there is what it holds.

The books are kept per strategy (trademesh/core/ledger: a strategy's spot holding never goes below zero,
and a base asset deposited is cash of no strategy), so a sell one strategy makes is delivered
from its own holding: its share of the position (its own fills, and its part of the protective
and foreign fills), less what its sells already working may take (entries and exits, cancelling
ones too: they may still fill), and never more than the position less every sell working on it.
The venue's free base balance is not read: it can only refuse more (docs/inspector.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.decimals import format_decimal as text
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.actions import CancelOrder, OrderRole
from trademesh.core.inspector.engine.book import RiskBook
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.positions import Key
from trademesh.core.inspector.engine.state import Collector
from trademesh.core.inspector.engine.working import WorkingOrder

__all__ = ["POLICY", "Delivery", "base_asset", "cancel_outlived", "deliverable", "held_fee"]

POLICY = "position.spot_short"
ZERO = Decimal(0)
_SELLING = (OrderRole.ENTRY, OrderRole.EXIT, OrderRole.FLATTEN)


@dataclass(frozen=True)
class Delivery:
    """What a strategy holds of a spot market, what of it is on sale already, and what is left
    to sell (`free`: at most the position less every sell working there)."""

    holding: Decimal
    selling: Decimal
    free: Decimal


def base_asset(symbol: str) -> str:
    """A spot market's base asset: a canonical spot symbol is BASE/QUOTE."""
    return symbol.split("/", 1)[0]


def held_fee(symbol: str, facts: InstrumentFacts | None, fee: Decimal, fee_asset: str) -> Decimal:
    """What of a fill's fee was paid in the asset its position holds, so the holding is less by
    it: a spot fill's fee in the base (Binance, OKX and Bybit take a buy's fee from the base it
    brings in: 1123 NKN bought hold 1121.877). A derivative's fee is in its margin asset (an
    inverse contract's in its coin, which is not its size), so it holds its whole fills; so does
    a fill whose fee asset is not said (journals before fee assets were kept)."""
    if (facts is not None and not facts.spot) or ":" in symbol or "/" not in symbol:
        return ZERO  # a derivative's symbol names its settle asset after ':'
    return fee if fee_asset == base_asset(symbol) else ZERO


def _sells(book: RiskBook, key: Key, live_only: bool = False) -> list[WorkingOrder]:
    """The market's working sells that take from a holding (protective orders apart: the pair
    is one sale of the position, whichever comes first, and a sell entry that overtakes it
    shrinks it; a stop that sells first cancels the entries it leaves undeliverable)."""
    return [
        w
        for w in book.orders
        if w.key == key
        and w.order.side is Side.SELL
        and w.order.role in _SELLING
        and w.remaining > 0
        and not (live_only and w.cancelling)
    ]


def _held(book: RiskBook, key: Key, strategy: str) -> Decimal:
    return max(book.positions.by_strategy.get((strategy, *key), ZERO), ZERO)


def deliverable(book: RiskBook, key: Key, strategy: str) -> Delivery:
    sells = _sells(book, key)
    holding = _held(book, key, strategy)
    selling = sum((w.remaining for w in sells if w.order.strategy_id == strategy), ZERO)
    net = max(book.positions.size(key), ZERO) - sum((w.remaining for w in sells), ZERO)
    return Delivery(holding, selling, min(holding - selling, net))


def cancel_outlived(book: RiskBook, key: Key, facts: InstrumentFacts | None, out: Collector) -> None:
    """After a fill on a spot market: a resting sell entry that what its strategy holds no longer
    covers (a stop or a target sold the holding first) is cancelled, the newest first, with a
    NOTICE. Filling later, it would sell what is not there."""
    if facts is None or not facts.spot:
        return
    live = _sells(book, key, live_only=True)
    net = max(book.positions.size(key), ZERO) - sum((w.remaining for w in live), ZERO)
    for working in sorted(live, key=lambda w: -w.number):
        strategy = working.order.strategy_id
        own = sum((w.remaining for w in live if w.order.strategy_id == strategy and not w.cancelling), ZERO)
        if working.order.role is OrderRole.ENTRY and min(_held(book, key, strategy) - own, net) < 0:
            net += working.remaining
            _cancel(book, working, out)


def _cancel(book: RiskBook, working: WorkingOrder, out: Collector) -> None:
    working.cancelling = True
    order, key = working.order, working.key
    out.actions.append(CancelOrder(order.client_order_id, *key, "spot: its strategy no longer holds it"))
    held, size = text(_held(book, key, order.strategy_id)), text(working.remaining)
    reason = (
        f"a sell entry of {size} cancelled: strategy {order.strategy_id!r} holds {held} of "
        f"{base_asset(key[1])} now"
    )
    values = (("order", order.client_order_id), ("holding", held), ("size", size))
    out.event(
        RiskAction.NOTICE, POLICY, reason, values,
        venue=key[0], symbol=key[1], strategy_id=order.strategy_id, intent_id=order.intent_id,
    )  # fmt: skip
