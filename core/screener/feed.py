"""What the screens read, from the bus: the closed bars of each screen's venue and timeframe
(bars.{<venue>}.<timeframe>) and, when a screen needs a ticker metric, its venue's tickers
(md.{<venue>}.tickers: spread, depth, 24h volume), and when it needs `funding_rate`, its venue's
funding rates (md.{<venue>}.funding). Each screen venue's instrument stream
(md.{<venue>}.instruments) too: a symbol its venue delisted is dropped from every screen of the
venue (its bars, ticker and rate forgotten) until listed again.

The streams are known from the screens, so there is nothing to discover: a stream not there yet
is read once it is. Bar streams are read from their first retained entry (the bars service's
retention: the history the windows need); ticker and funding streams from `ticker_age_ms` before
the start (an older ticker or rate is stale to every screen anyway). Every replica reads every
entry (XREAD, no consumer group): its state is the newest bars, ticker and funding rate of every
symbol, in memory.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.foundations.bus.codec import decode
from core.foundations.bus.names import bars_stream, instruments_stream, market_stream
from core.foundations.bus.reads import read_after, read_back
from core.foundations.bus.redis import BusRedis
from core.foundations.errors import Corrupt, InvalidArgument
from core.foundations.model import Candle, Channel, Timeframe
from core.screener import metrics
from core.screener.convert import candle_of, funding_of, ticker_of
from core.screener.engine.definition import Screen
from core.screener.engine.inputs import Funding, InstrumentInputs, Ticker
from core.screener.engine.metrics import FUNDING_METRICS, TICKER_METRICS
from core.screener.instruments import symbol_facts

__all__ = ["MarketState", "ScreenFeed", "entry_position"]

_START = "0-0"


def entry_position(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("1700000000000-3") as a comparable (milliseconds, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class _BarSource:
    venue: str
    timeframe: Timeframe
    keep: int  # bars kept per symbol: the most any screen on it reads


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
        by_symbol = self.tickers.get(venue)
        if by_symbol is None:
            return
        held = by_symbol.get(symbol)
        if held is None or ticker.ts_ns >= held.ts_ns:
            by_symbol[symbol] = ticker

    def add_funding(self, venue: str, symbol: str, funding: Funding) -> None:
        by_symbol = self.funding.get(venue)
        if by_symbol is None:
            return
        held = by_symbol.get(symbol)
        if held is None or funding.ts_ns >= held.ts_ns:
            by_symbol[symbol] = funding

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


class ScreenFeed:
    """Reads the screens' streams into a MarketState."""

    def __init__(
        self,
        redis: BusRedis,
        state: MarketState,
        *,
        ticker_age_ms: int,
        batch: int = 500,
        block_ms: int = 1000,
    ) -> None:
        self._redis = redis  # redis.asyncio.Redis
        self.state = state
        self._batch, self._block_ms = batch, block_ms
        self._venues: dict[str, str] = {}  # stream -> venue
        self._positions: dict[str, str] = {}
        for venue, timeframe in state.keep:
            stream = bars_stream(timeframe, market_stream(venue, Channel.TRADES))
            self._venues[stream], self._positions[stream] = venue, _START
        since = f"{max(time.time_ns() // 1_000_000 - ticker_age_ms, 0)}-0"
        for venue in sorted(state.ticker_venues):
            stream = market_stream(venue, Channel.TICKERS)
            self._venues[stream], self._positions[stream] = venue, since
        for venue in sorted(state.funding_venues):
            stream = market_stream(venue, Channel.FUNDING)
            self._venues[stream], self._positions[stream] = venue, since
        # Each venue's instrument stream: its last entry is the state (mark_warm_up starts there).
        self._instruments: list[str] = []
        for venue in sorted(state.venues):
            stream = instruments_stream(venue)
            self._venues[stream], self._positions[stream] = venue, _START
            self._instruments.append(stream)
        self._warm_until: dict[str, tuple[int, int]] = {}

    @property
    def streams(self) -> list[str]:
        return sorted(self._positions)

    async def mark_warm_up(self) -> None:
        """Note where each stream ends now: until read up to there, the state is history. An
        instrument stream is taken from its last entry (the venue's whole list: no need of the
        entries before it)."""
        for stream in self._instruments:
            last = await read_back(self._redis, stream, count=1)
            if last:
                self._take(stream, last)
        for stream in self._positions:
            last = await read_back(self._redis, stream, count=1)
            if last:
                self._warm_until[stream] = entry_position(_text(last[0][0]))

    @property
    def warming(self) -> bool:
        return any(entry_position(self._positions[s]) < until for s, until in self._warm_until.items())

    async def read(self, block_ms: int | None = None) -> int:
        """Read the next entries of every stream (waiting up to block_ms for one); the number of
        entries read."""
        if not self._positions:
            return 0
        wait = self._block_ms if block_ms is None else block_ms
        reply = await read_after(self._redis, dict(self._positions), count=self._batch, block=max(wait, 1))
        if not reply:
            self._warm_until.clear()  # nothing more anywhere: a mark not reached never will be
            return 0
        count = 0
        for raw_stream, entries in reply:
            count += self._take(_text(raw_stream), entries)
        return count

    def _take(self, stream: str, entries: Sequence[tuple[Any, dict[bytes, bytes]]]) -> int:
        venue = self._venues[stream]
        for raw_id, fields in entries:
            self._positions[stream] = _text(raw_id)
            try:
                envelope = decode(fields)
            except Corrupt:
                metrics.UNDECODABLE.inc()
                continue
            body = envelope.WhichOneof("body")
            if body == "bars":
                for bar in envelope.bars.bars:
                    self._bar(venue, bar)
            elif body == "market":
                for event in envelope.market.events:
                    payload = event.WhichOneof("payload")
                    if payload == "ticker":
                        self._ticker(venue, event)
                    elif payload == "funding_rate":
                        self._funding(venue, event)
            elif body == "instruments":
                self.state.set_delisted(venue, frozenset(envelope.instruments.delisted))
            else:
                metrics.UNDECODABLE.inc()
        return len(entries)

    def _bar(self, venue: str, bar: Any) -> None:
        try:
            candle = candle_of(bar)
        except InvalidArgument:
            metrics.UNDECODABLE.inc()
            return
        self.state.add_bar(venue, bar.symbol, candle)

    def _ticker(self, venue: str, event: Any) -> None:
        try:
            ticker = ticker_of(event)
        except InvalidArgument:
            metrics.UNDECODABLE.inc()
            return
        self.state.add_ticker(venue, event.symbol, ticker)

    def _funding(self, venue: str, event: Any) -> None:
        try:
            funding = funding_of(event)
        except InvalidArgument:
            metrics.UNDECODABLE.inc()
            return
        self.state.add_funding(venue, event.symbol, funding)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
