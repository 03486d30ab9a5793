"""ccxt to ours: order, balance and position structures as trademesh.core.domain.model objects; error
texts made safe."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.core.domain.model import (
    Balance,
    FundingPayment,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionMargin,
    Side,
    TimeInForce,
)
from trademesh.venues.live.normalize import decimal_text

__all__ = ["balances_from_ccxt", "funding_from_ccxt", "order_from_ccxt", "position_from_ccxt", "safe_message"]

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK, "PO": TimeInForce.GTC}
_QUERY = re.compile(r"\?\S*")


def _decimal(value: Any) -> Decimal:
    text = decimal_text(value)
    return Decimal(text) if text else Decimal(0)


# Whether the exchange's raw order or trade (ccxt's `info`) is its liquidation of a position.
Liquidation = Callable[[Mapping[str, Any]], bool]


def is_liquidation(raw: Mapping[str, Any], liquidation: Liquidation | None) -> bool:
    info = raw.get("info")
    return liquidation is not None and isinstance(info, Mapping) and liquidation(info)


def order_from_ccxt(venue: str, raw: dict[str, Any], liquidation: Liquidation | None = None) -> Order:
    filled = _decimal(raw.get("filled"))
    status = _STATUS.get(str(raw.get("status")), OrderStatus.OPEN)
    if status is OrderStatus.OPEN and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    if status is OrderStatus.CANCELED and raw.get("remaining") == 0 and filled > 0:
        status = OrderStatus.FILLED
    # ccxt names a stop's trigger triggerPrice, or stopLossPrice where it reads the venue's own
    # stop-loss order type (Kraken's REST orders).
    trigger = decimal_text(raw.get("triggerPrice") or raw.get("stopPrice") or raw.get("stopLossPrice"))
    order_type = _order_type(str(raw.get("type") or ""), bool(trigger) and Decimal(trigger) > 0)
    price = decimal_text(raw.get("price"))
    has_price = order_type.has_price and bool(price) and Decimal(price) > 0
    average = decimal_text(raw.get("average"))
    created = int(raw.get("timestamp") or time.time() * 1000) * 1_000_000
    updated = raw.get("lastUpdateTimestamp") or raw.get("lastTradeTimestamp")
    return Order(
        venue=venue,
        order_id=str(raw.get("id") or ""),
        client_order_id=str(raw.get("clientOrderId") or ""),
        symbol=str(raw.get("symbol") or ""),
        side=Side.SELL if raw.get("side") == "sell" else Side.BUY,
        type=order_type,
        time_in_force=_TIF.get(str(raw.get("timeInForce") or "GTC").upper(), TimeInForce.GTC),
        price=Decimal(price) if has_price else None,
        size=_decimal(raw.get("amount")),
        post_only=bool(raw.get("postOnly")),
        reduce_only=bool(raw.get("reduceOnly")),
        filled_size=filled,
        average_fill_price=Decimal(average) if average else None,
        status=status,
        created_ns=created,
        updated_ns=int(updated) * 1_000_000 if updated else created,
        trigger_price=Decimal(trigger) if order_type.is_stop else None,
        # What ccxt says of a stop does not tell whether it triggered; a fill says it did.
        triggered=order_type.is_stop and filled > 0,
        liquidation=is_liquidation(raw, liquidation),
    )


def _order_type(ccxt_type: str, has_trigger: bool) -> OrderType:
    """Ours of ccxt's order type ("market", "limit", or the venue's own word ccxt passed on, e.g.
    Binance spot's "stop_loss_limit"); an order with a trigger price is a stop."""
    limit = ccxt_type != "market" and ("limit" in ccxt_type or not has_trigger)
    if has_trigger:
        return OrderType.STOP_LIMIT if limit else OrderType.STOP_MARKET
    return OrderType.LIMIT if limit else OrderType.MARKET


def balances_from_ccxt(
    raw: dict[str, Any], position_margins: Mapping[str, Decimal] | None = None
) -> list[Balance]:
    """ccxt's balance structure; `position_margins`: the initial margin positions hold, by asset,
    where the exchange says it (Balance.position_margin)."""
    free, used = raw.get("free") or {}, raw.get("used") or {}
    margins = position_margins or {}
    return [
        Balance(asset, _decimal(free.get(asset)), _decimal(used.get(asset)), margins.get(asset))
        for asset in sorted(set(free) | set(used))
        if _decimal(free.get(asset)) or _decimal(used.get(asset))
    ]


def position_from_ccxt(raw: dict[str, Any], margin: PositionMargin | None = None) -> Position:
    contracts = _decimal(raw.get("contracts")) * _decimal(raw.get("contractSize") or 1)
    size = -contracts if raw.get("side") == "short" else contracts
    entry = decimal_text(raw.get("entryPrice"))
    return Position(
        str(raw.get("symbol")),
        size,
        Decimal(entry) if entry else None,
        _decimal(raw.get("realizedPnl")),
        margin,
    )


def funding_from_ccxt(raw: dict[str, Any]) -> FundingPayment:
    """ccxt's funding history structure (fetch_funding_history): its id is the venue's (Binance's
    tranId, OKX's billId), its amount signed as ours; it carries no rate
    (trademesh/venues/live/funding_rates.py fills it from the venue's rate history) and no position
    size."""
    return FundingPayment(
        funding_id=str(raw.get("id") or ""),
        symbol=str(raw.get("symbol") or ""),
        asset=str(raw.get("code") or ""),
        amount=_decimal(raw.get("amount")),
        rate=None,
        position_size=None,
        ts_ns=int(raw.get("timestamp") or 0) * 1_000_000,
    )


def safe_message(exc: BaseException, secrets: list[str]) -> str:
    """An error text fit for logs and callers: no query strings (signatures), no secret values."""
    text = _QUERY.sub("?…", str(exc))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:500]
