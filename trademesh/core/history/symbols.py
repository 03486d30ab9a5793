"""Venue names and symbols as an import names them: canonical ccxt symbols, and Binance's native
archive names (BTCUSDT) read as them.

A venue is one the installation runs (the `trademesh.venues` entry points, plug-ins included;
read from package metadata, so no venue's code is imported), or an account of one
(binance.desk-a). A symbol is canonical: BASE/QUOTE, or BASE/QUOTE:SETTLE for a derivative.
"""

from __future__ import annotations

import importlib.metadata
import re

from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = ["BINANCE_QUOTES", "binance_symbol", "check_symbol", "check_venue", "known_venues"]

_VENUE_GROUP = "trademesh.venues"
_SYMBOL = re.compile(r"[A-Z0-9]+/[A-Z0-9]+(?::[A-Z0-9]+)?")
_NATIVE = re.compile(r"[A-Z0-9]+")
# Binance's quote assets, longest first: BTCFDUSD is BTC/FDUSD, not BTCFD/USD.
BINANCE_QUOTES = tuple(
    sorted(
        (
            "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "DAI", "USD", "BTC", "ETH", "BNB", "EUR",
            "TRY", "BRL", "GBP", "AUD", "JPY", "RUB", "UAH", "ZAR", "PLN", "RON", "ARS", "MXN", "IDR",
            "XRP", "DOGE", "TRX", "DOT", "SOL",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip
# Binance venues whose archives are linear: the quote settles (BTCUSDT is BTC/USDT:USDT).
_LINEAR = frozenset({"binanceusdm"})


def known_venues() -> frozenset[str]:
    return frozenset(entry.name for entry in importlib.metadata.entry_points(group=_VENUE_GROUP))


def check_venue(venue: str) -> str:
    """`venue` when it names a venue this installation runs (or an account of one)."""
    known = known_venues()
    base = venue.split(".", 1)[0]
    if known and base not in known:
        raise InvalidArgument.field(
            "venue", f"{shown(venue)} is not a venue; known: {', '.join(sorted(known))}"
        )
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", venue):
        raise InvalidArgument.field("venue", f"{shown(venue)} is not a venue name")
    return venue


def check_symbol(symbol: str) -> str:
    if _SYMBOL.fullmatch(symbol) is None:
        raise InvalidArgument.field(
            "symbol",
            f"{shown(symbol)} is not a canonical symbol (BASE/QUOTE or BASE/QUOTE:SETTLE, e.g. BTC/USDT)",
        )
    return symbol


def binance_symbol(native: str, venue: str) -> str:
    """A Binance archive's symbol (BTCUSDT) as the canonical one; InvalidArgument (`symbol`) when
    no known quote asset ends it (then --symbol names it)."""
    if _NATIVE.fullmatch(native) is not None:
        for quote in BINANCE_QUOTES:
            base = native[: -len(quote)]
            if native.endswith(quote) and base:
                settle = f":{quote}" if venue.split(".", 1)[0] in _LINEAR else ""
                return f"{base}/{quote}{settle}"
    raise InvalidArgument.field(
        "symbol",
        f"cannot tell the canonical symbol of {shown(native)}: name it with --symbol (e.g. BTC/USDT)",
    )
