"""Deribit instruments for a capture that holds no get_instruments answer, from their names.

A Deribit instrument name says most of what get_instruments lists (Deribit's *Naming*):
- "BTC-PERPETUAL": an inverse perpetual (priced in USD, settled in BTC);
- "ETH_USDC-PERPETUAL": a linear perpetual (priced and settled in USDC);
- "BTC-27DEC24": an inverse future expiring at 08:00 UTC that day;
- "BTC-27DEC24-100000-C" / "-P": an inverse option (priced in BTC) of that strike and expiry;
  "SOL_USDC-27DEC24-150-C": a linear one (priced in USDC);
- "BTC_USDC": a spot pair.
What the name does not say is a documented default: tick and minimum amount from the
decimals the frames write (trademesh.venues.replay.synthesis), contract size 1 (the log says so),
commissions 0.0003 taker / 0 maker. Anything else is not described.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from trademesh.venues.replay.synthesis import SeenMarket

__all__ = ["instrument"]

_EXPIRY = re.compile(r"^(\d{1,2})([A-Z]{3})(\d{2})$")
_PERPETUAL_MS = 32503708800000  # Deribit's expiration for perpetuals (year 3000)


def _expiry_ms(text: str) -> int | None:
    match = _EXPIRY.match(text)
    if match is None:
        return None
    try:
        day = datetime.strptime(f"{match[1]}{match[2].title()}{match[3]}", "%d%b%y").replace(
            hour=8, tzinfo=UTC
        )
    except ValueError:
        return None
    return int(day.timestamp() * 1000)


def _currencies(head: str) -> tuple[str, str | None]:
    """("ETH", "USDC") for "ETH_USDC"; ("BTC", None) for "BTC" (inverse: USD-priced, base-settled)."""
    base, _, quote = head.partition("_")
    return base, quote or None


def instrument(market: SeenMarket) -> dict[str, Any] | None:
    parts = market.native.split("-")
    base, quote = _currencies(parts[0])
    common: dict[str, Any] = {
        "instrument_name": market.native,
        "base_currency": base,
        "counter_currency": quote or "USD",
        "settlement_currency": quote or base,
        "is_active": True,
        "tick_size": float(market.tick),
        "min_trade_amount": float(market.lot),
        "contract_size": 1.0,
        "taker_commission": 0.0003,
        "maker_commission": 0.0,
        "creation_timestamp": 0,
        "rfq": False,
    }
    if len(parts) == 1 and quote is not None:
        return {**common, "kind": "spot", "quote_currency": quote, "expiration_timestamp": _PERPETUAL_MS}
    if len(parts) == 2 and parts[1] == "PERPETUAL":
        return {
            **_future(common, quote),
            "settlement_period": "perpetual",
            "expiration_timestamp": _PERPETUAL_MS,
        }
    expiry = _expiry_ms(parts[1]) if len(parts) >= 2 else None
    if expiry is None:
        return None
    if len(parts) == 2:
        return {**_future(common, quote), "settlement_period": "month", "expiration_timestamp": expiry}
    if len(parts) == 4 and parts[3] in ("C", "P"):
        return {
            **common,
            "kind": "option",
            "quote_currency": quote or base,
            "strike": float(parts[2].replace("d", ".")),
            "option_type": "call" if parts[3] == "C" else "put",
            "settlement_period": "month",
            "expiration_timestamp": expiry,
        }
    return None


def _future(common: dict[str, Any], quote: str | None) -> dict[str, Any]:
    return {
        **common,
        "kind": "future",
        "quote_currency": quote or "USD",
        "future_type": "linear" if quote else "reversed",
        "instrument_type": "linear" if quote else "reversed",
    }
