"""Stops whose trigger the last trade price has already crossed, refused before they are sent.

Some venues' trigger orders carry no direction: the venue reads it from the last price when
the order arrives, so a sell stop above the market would wait for a rise (the opposite of
what TradeFlow's stop means). Their exchange classes ask the last price first and refuse such
a stop (it would trigger at once). The price may still move between that read and the order's
arrival: a race the venues' APIs leave open.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.pro

__all__ = ["refuse_crossed_stop"]


async def refuse_crossed_stop(exchange: Any, symbol: str, side: str, trigger: Decimal, why: str) -> None:
    """InvalidOrder for a `side` stop the last trade price has crossed (a sell stop's trigger at or
    above the last price, a buy stop's at or below it), `why` naming what the venue would do
    instead; nothing when the last price is unknown."""
    last = (await exchange.fetch_ticker(symbol)).get("last")
    if last is None:
        return
    last_price = Decimal(str(last)).normalize()
    if last_price <= trigger if side == "sell" else last_price >= trigger:
        where = "at or above" if side == "sell" else "at or below"
        raise ccxt.InvalidOrder(
            f"{exchange.id} a {side} stop's trigger {trigger} is {where} the last price {last_price:f}: "
            f"it would trigger at once ({why})"
        )
