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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import bars_stream, instruments_stream, market_stream
from trademesh.core.platform.bus.reads import read_after, read_back
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt, InvalidArgument
from trademesh.core.screener import metrics
from trademesh.core.screener.convert import candle_of, funding_of, ticker_of
from trademesh.core.screener.state import MarketState

__all__ = ["ScreenFeed", "entry_position"]

_T = TypeVar("_T")
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
        candle = _decoded(candle_of, bar)
        if candle is not None:
            self.state.add_bar(venue, bar.symbol, candle)

    def _ticker(self, venue: str, event: Any) -> None:
        ticker = _decoded(ticker_of, event)
        if ticker is not None:
            self.state.add_ticker(venue, event.symbol, ticker)

    def _funding(self, venue: str, event: Any) -> None:
        funding = _decoded(funding_of, event)
        if funding is not None:
            self.state.add_funding(venue, event.symbol, funding)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decoded(convert: Callable[[Any], _T], message: Any) -> _T | None:
    """The engine's value of a bus message; None (counted undecodable) when it cannot be one."""
    try:
        return convert(message)
    except InvalidArgument:
        metrics.UNDECODABLE.inc()
        return None
