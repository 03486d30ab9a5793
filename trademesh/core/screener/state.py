"""What the screens read, held: the newest closed bars per (venue, timeframe, symbol), the latest
ticker and funding rate per (venue, symbol), and each venue's delisted symbols. The live Screener
fills it from the bus (trademesh.core.screener.feed); a backtest from its replayed bars. Pure: no
I/O, so a backtest meets it without Redis."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any, TypeVar

from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.screener import metrics
from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.engine.inputs import Funding, InstrumentInputs, Ticker
from trademesh.core.screener.engine.metrics import FUNDING_METRICS, TICKER_METRICS
from trademesh.core.screener.instruments import symbol_facts

__all__ = ["MarketState"]

_Stamped = TypeVar("_Stamped", Ticker, Funding)


class MarketState:
    """The newest closed bars per (venue, timeframe, symbol), the latest ticker and the latest
    funding rate per (venue, symbol), as the screens' inputs."""

    def __init__(self, screens: Iterable[Screen]) -> None:
        self.keep: dict[tuple[str, Timeframe], int] = {}
        self.ticker_venues: set[str] = set()
        self.funding_venues: set[str] = set()
        for screen in screens:
            key = (screen.venue, screen.bars.timeframe)
            self.keep[key] = max(self.keep.get(key, 1), screen.meter().bars_needed(screen.measured))
            if any(name in TICKER_METRICS for name in screen.measured):
                self.ticker_venues.add(screen.venue)
            if any(name in FUNDING_METRICS for name in screen.measured):
                self.funding_venues.add(screen.venue)
        self.bars: dict[tuple[str, Timeframe], dict[str, list[Candle]]] = {key: {} for key in self.keep}
        self.tickers: dict[str, dict[str, Ticker]] = {venue: {} for venue in self.ticker_venues}
        self.funding: dict[str, dict[str, Funding]] = {venue: {} for venue in self.funding_venues}
        # Per venue, the symbols it delisted (md.{<venue>}.instruments): in no screen's inputs.
        self.delisted: dict[str, frozenset[str]] = {}

    @property
    def venues(self) -> set[str]:
        """Every venue a screen reads."""
        return {venue for venue, _ in self.keep} | self.ticker_venues | self.funding_venues

    def set_delisted(self, venue: str, symbols: frozenset[str]) -> None:
        """The venue's delisted symbols now: dropped from its screens, what was held of them
        forgotten (a symbol listed again is ranked once it has its inputs again)."""
        self.delisted[venue] = symbols
        metrics.DELISTED.labels(venue).set(len(symbols))
        for (held_venue, _), by_symbol in self.bars.items():
            if held_venue == venue:
                for symbol in symbols & by_symbol.keys():
                    del by_symbol[symbol]
        for by_venue in (self.tickers, self.funding):
            by_symbol_any: dict[str, Any] = by_venue.get(venue, {})
            for symbol in symbols & by_symbol_any.keys():
                del by_symbol_any[symbol]

    def add_bar(self, venue: str, symbol: str, candle: Candle) -> bool:
        """Keep a closed bar in its place by open time: after the newest (the usual case), among
        the held ones (a backfill published after live bars), or in place of one of its open
        time (a repair). False (dropped) when older than every held bar of a full window, or of
        a venue and timeframe no screen reads."""
        key = (venue, candle.timeframe)
        by_symbol = self.bars.get(key)
        if by_symbol is None:
            return False
        held = by_symbol.setdefault(symbol, [])
        keep = self.keep[key]
        if not held or candle.open_time_ns > held[-1].open_time_ns:
            held.append(candle)
        else:
            index = bisect.bisect_left(held, candle.open_time_ns, key=lambda c: c.open_time_ns)
            if index < len(held) and held[index].open_time_ns == candle.open_time_ns:
                held[index] = candle
                return True
            if index == 0 and len(held) >= keep:
                return False
            held.insert(index, candle)
        if len(held) > keep:
            del held[: len(held) - keep]
        return True

    def add_ticker(self, venue: str, symbol: str, ticker: Ticker) -> None:
        _keep_newer(self.tickers.get(venue), symbol, ticker)

    def add_funding(self, venue: str, symbol: str, funding: Funding) -> None:
        _keep_newer(self.funding.get(venue), symbol, funding)

    def inputs(self, screen: Screen) -> list[InstrumentInputs]:
        """Every symbol of the screen's venue with bars of its timeframe, a ticker or a funding rate."""
        bars = self.bars.get((screen.venue, screen.bars.timeframe), {})
        tickers = self.tickers.get(screen.venue, {})
        funding = self.funding.get(screen.venue, {})
        out = []
        delisted = self.delisted.get(screen.venue, frozenset())
        for symbol in sorted((set(bars) | set(tickers) | set(funding)) - delisted):
            facts = symbol_facts(symbol)
            out.append(
                InstrumentInputs(symbol=symbol, kind=facts.kind, quote_asset=facts.quote_asset,
                                 ticker=tickers.get(symbol), bars=tuple(bars.get(symbol, ())),
                                 funding=funding.get(symbol))
            )  # fmt: skip
        return out


def _keep_newer(by_symbol: dict[str, _Stamped] | None, symbol: str, value: _Stamped) -> None:
    """Hold the value for the symbol unless the one held is newer (None: a venue not followed)."""
    if by_symbol is None:
        return
    held = by_symbol.get(symbol)
    if held is None or value.ts_ns >= held.ts_ns:
        by_symbol[symbol] = value
