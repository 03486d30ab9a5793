"""What the engine is given about one instrument at evaluation time: the shell gathers it (the
latest ticker, the closed bars, the funding rate) and the engine reads nothing else.

Prices and amounts stay Decimal as the venue gave them; the metrics made from them are floats
(statistics to rank by, never money: trademesh.core.screener.engine.metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.model import Candle, InstrumentKind

__all__ = ["Funding", "InstrumentInputs", "Ticker"]


@dataclass(frozen=True, slots=True)
class Ticker:
    """The latest ticker: best bid and ask (with their sizes when known), the last price, and the
    venue's 24h volume in the quote asset and in the base asset, each where it states it (the wire
    Ticker's `quote_volume_24h`, `base_volume_24h`)."""

    ts_ns: int
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    volume_24h: Decimal | None = None
    base_volume_24h: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Funding:
    """The funding rate the venue states now (a fraction of the notional per funding interval: the
    wire FundingRate's `rate`), as of its event time."""

    rate: Decimal
    ts_ns: int


@dataclass(frozen=True, slots=True)
class InstrumentInputs:
    """One instrument's inputs. `bars` are closed bars of the screen's timeframe, oldest first
    (the shell's guarantee; bars of another timeframe or not closed are ignored)."""

    symbol: str
    kind: InstrumentKind
    quote_asset: str
    ticker: Ticker | None = None
    bars: Sequence[Candle] = ()
    funding: Funding | None = None
    active: bool = True
