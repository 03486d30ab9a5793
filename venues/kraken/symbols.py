"""Kraken's names for a pair: the native symbol trademesh lists is the wsname (venues/kraken/spec.py)."""

from __future__ import annotations

from venues.live.spec import Market

__all__ = ["wsname"]


def wsname(market: Market) -> str:
    """Kraken's wsname ("XBT/CHF"), falling back to ccxt's id for markets without one."""
    info = market.get("info") or {}
    return str(info.get("wsname") or market["id"])
