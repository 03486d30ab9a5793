"""OKX instruments for a capture that holds no /api/v5/public/instruments answer.

Rows are written as OKX's *Get instruments* documents them, for the instIds the frames
stream (trademesh.venues.replay.synthesis says how tick and lot are read off the frames):
- SPOT: "BTC-USDT" -> baseCcy BTC, quoteCcy USDT;
- SWAP: "BTC-USDT-SWAP" -> linear, settled in USDT (USDT/USDC quotes), or "BTC-USD-SWAP" ->
  inverse, settled in BTC. The contract value is not in the frames: ctVal is taken as 1
  (one base unit per contract for linear, 1 USD for inverse) and the log says so;
- other instrument types (futures, options) are not described.
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.replay.synthesis import SeenMarket

__all__ = ["instrument_row", "kind_of"]

_LINEAR_QUOTES = ("USDT", "USDC", "USDG")


def kind_of(inst_id: str) -> str | None:
    """SPOT or SWAP from the instId's shape; None for the other types."""
    parts = inst_id.split("-")
    if len(parts) == 2:
        return "SPOT"
    if len(parts) == 3 and parts[2] == "SWAP":
        return "SWAP"
    return None


def instrument_row(market: SeenMarket) -> dict[str, Any] | None:
    kind = kind_of(market.native)
    if kind is None:
        return None
    base, quote = market.native.split("-")[:2]
    row: dict[str, Any] = {
        "instId": market.native,
        "instType": kind,
        "baseCcy": base if kind == "SPOT" else "",
        "quoteCcy": quote if kind == "SPOT" else "",
        "settleCcy": "",
        "ctVal": "",
        "ctMult": "",
        "ctValCcy": "",
        "ctType": "",
        "uly": "",
        "instFamily": "",
        "lever": "",
        "listTime": "0",
        "expTime": "",
        "tickSz": market.tick,
        "lotSz": market.lot,
        "minSz": market.lot,
        "maxLmtSz": "1000000000",
        "maxMktSz": "1000000000",
        "state": "live",
        "alias": "",
        "optType": "",
        "stk": "",
    }
    if kind == "SWAP":
        linear = quote in _LINEAR_QUOTES
        row.update(
            settleCcy=quote if linear else base,
            ctVal="1",
            ctMult="1",
            ctValCcy=base if linear else quote,
            ctType="linear" if linear else "inverse",
            uly=f"{base}-{quote}",
            instFamily=f"{base}-{quote}",
            lever="100",
        )
    return row
