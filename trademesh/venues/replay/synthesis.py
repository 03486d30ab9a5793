"""What a stand-in can tell about the markets of a capture from its frames alone.

A session recorded by another tool may hold only WebSocket frames, while ccxt loads markets
over REST before it subscribes. A stand-in then answers with the markets its frames stream,
described from what the frames show (docs/replay.md, "Sessions from other recorders"):

- the native symbol: the topic's;
- base and quote: split at the venue's separator ("BTC-USDT", "XBT/USD"), or, where the
  venue runs them together ("BTCUSDT"), before the longest known quote currency it ends in
  (QUOTES); a symbol ending in none is not described (logged), so the venue does not list it;
- tick and lot: one unit of the last decimal place written in the prices and sizes seen
  ("91249.50" -> 0.01); a market with no price (size) seen gets 0.01 (0.00000001);
- minimum size: one lot; no minimum notional.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["QUOTES", "MarketsSeen", "SeenMarket", "split_joined", "step"]

log = logging.getLogger(__name__)

# Quote currencies recognised at the end of a run-together symbol, longest first.
QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "TUSD",
    "BUSD",
    "USDE",
    "EURI",
    "DAI",
    "USD",
    "EUR",
    "GBP",
    "TRY",
    "BRL",
    "JPY",
    "AUD",
    "BTC",
    "ETH",
    "BNB",
)
_DEFAULT_PRICE_DECIMALS = 2
_DEFAULT_SIZE_DECIMALS = 8


def split_joined(native: str) -> tuple[str, str] | None:
    """("BTC", "USDT") for "BTCUSDT"; None when it ends in no known quote (or is only one)."""
    for quote in sorted(QUOTES, key=len, reverse=True):
        if native.upper().endswith(quote) and len(native) > len(quote):
            return native[: -len(quote)].upper(), quote
    log.warning("replay: cannot tell base from quote in %r (no known quote at its end): not listed", native)
    return None


def decimals(text: object) -> int | None:
    """Digits after the point as written ("91249.50" -> 2, "100" -> 0); None for a non-number."""
    try:
        exponent = Decimal(str(text)).as_tuple().exponent
    except InvalidOperation:
        return None
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def step(places: int) -> str:
    """One unit of the given decimal place: 2 -> "0.01", 0 -> "1"."""
    return format(Decimal(1).scaleb(-places), "f")


@dataclass
class SeenMarket:
    native: str
    price_decimals: int = -1  # -1: no price seen
    size_decimals: int = -1

    def see(self, price: object, size: object) -> None:
        if (places := decimals(price)) is not None:
            self.price_decimals = max(self.price_decimals, places)
        if (places := decimals(size)) is not None:
            self.size_decimals = max(self.size_decimals, places)

    @property
    def tick(self) -> str:
        return step(self.price_decimals if self.price_decimals >= 0 else _DEFAULT_PRICE_DECIMALS)

    @property
    def lot(self) -> str:
        return step(self.size_decimals if self.size_decimals >= 0 else _DEFAULT_SIZE_DECIMALS)


class MarketsSeen:
    """The markets a capture streams, in first-seen order, with the decimals their numbers show."""

    def __init__(self) -> None:
        self.markets: dict[str, SeenMarket] = {}

    def add(self, native: str) -> SeenMarket:
        return self.markets.setdefault(native, SeenMarket(native))

    def see(self, native: str, levels: Iterable[tuple[object, object]]) -> None:
        market = self.add(native)
        for price, size in levels:
            market.see(price, size)

    def __iter__(self) -> Iterator[SeenMarket]:
        return iter(self.markets.values())

    def names(self) -> str:
        return ", ".join(self.markets) or "none"
