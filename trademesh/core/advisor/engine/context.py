"""Stage 1's input: what the shell gathered about the signal's market (through the same tool
functions the gateway's MCP server exposes). The core receives it as an event, whole."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.contracts.signal import Signal
from trademesh.core.domain.decimals import WIDE
from trademesh.core.domain.model import Balance, Candle, Instrument, Position, Side

__all__ = ["BookTop", "Context", "GapMarker", "OpenOrder"]


@dataclass(frozen=True, slots=True)
class BookTop:
    """The best bid and ask with their sizes."""

    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal
    ts_event_ns: int

    @property
    def crossed(self) -> bool:
        return self.bid >= self.ask

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def spread_ratio(self) -> Decimal:
        """(ask - bid) / mid: 0.004 is 0.4%."""
        mid = self.mid
        return (self.ask - self.bid) / mid if mid > 0 else Decimal(0)


@dataclass(frozen=True, slots=True)
class GapMarker:
    """Missing bars in the window: open (not repaired yet) or repaired from the venue's candles."""

    start_ns: int
    end_ns: int
    bars: int  # how many bars the gap spans
    repaired: bool


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_id: str
    side: Side
    price: Decimal | None
    remaining: Decimal


@dataclass(frozen=True)
class Context:
    venue: str
    symbol: str
    gathered_ns: int  # when the shell gathered it
    instrument: Instrument | None
    price: Decimal | None  # the last trade's price
    book: BookTop | None
    bars: tuple[Candle, ...]  # closed bars, oldest first
    positions: tuple[Position, ...]
    balances: tuple[Balance, ...]
    open_orders: tuple[OpenOrder, ...]
    recent_signals: tuple[Signal, ...]  # of this symbol, oldest first
    last_event_ns: int | None  # the venue time of the market's latest event
    gaps: tuple[GapMarker, ...] = ()
    reconnects: int = 0  # the venue's reconnects in the quality window
    resyncs: int = 0  # its order book resyncs in the window
    # Mark-to-market equity in the quote asset when the shell knows it; else the quote balance.
    equity: Decimal | None = None

    def position_size(self) -> Decimal:
        """The signed position in this symbol (0 when none)."""
        return sum((p.size for p in self.positions if p.symbol == self.symbol), Decimal(0))

    def sizing_equity(self) -> Decimal | None:
        """The equity an intent is sized on: in the quote asset, but in the settlement coin for an
        inverse contract (its balance, or the quote equity at the last price)."""
        if self.instrument is None or not self.instrument.inverse:
            return self.quote_equity()
        if self.equity is not None:
            return None if self.price is None or self.price <= 0 else WIDE.divide(self.equity, self.price)
        coin = self.instrument.settle_asset or self.instrument.base_asset
        return sum((b.total for b in self.balances if b.asset == coin), Decimal(0))

    def quote_equity(self) -> Decimal | None:
        if self.equity is not None:
            return self.equity
        if self.instrument is None:
            return None
        quote = self.instrument.quote_asset
        return sum((b.total for b in self.balances if b.asset == quote), Decimal(0))
