"""A derivative's own channels from ccxt: mark and index prices (Channel.MARK), open interest
(Channel.OPEN_INTEREST) and the market's liquidations (Channel.LIQUIDATIONS).

What each exchange streams, and in which of its fields, is the venue's (its spec.py's
`derivatives`: a `DerivativeStreams`); this module holds what is not:
- a state (mark, open interest) is read from a ccxt cache by symbol, as the funding rate is
  (normalize.FundingNormalizer): emitted whenever the cached object is a new one, each event
  whole. Where the venue streams no open interest, it is read by REST
  (ccxt fetch_open_interest, trademesh/venues/live/interest_poll.py) every `open_interest_poll_s`, and
  Admin's StreamStatus says so (poll_interval_ms);
- liquidations are read from ccxt's `liquidations` ring (one for every symbol of the
  exchange), each cached one once: a cursor by object identity, as trades are read
  (normalize.TradeNormalizer); one that fell out of the ring before it was read is a GAP notice.

A venue's readers take the cached structure's `info` (the exchange's own message) and give the
wire's messages with the venue's decimal strings, so prices and sizes go out as it sent them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt

from trademesh.core.domain.model import Channel, Side, StreamKey
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.interest_poll import OPEN_INTERESTS, OpenInterestPoll
from trademesh.venues.live.normalize import decimal_text
from trademesh.venues.runtime.feed import MarketFeed

__all__ = [
    "CacheStream",
    "DerivativeStreams",
    "LiquidationNormalizer",
    "LiquidationStream",
    "StateNormalizer",
    "derivative_job",
    "event_ns",
    "side_of",
    "unified_open_interest",
]

# A state's reading: (its time in ms, None when the venue does not say; the message), or None
# when the cached entry states none (no mark price, no size).
MarkReading = tuple[int | None, md.MarkPrice] | None
InterestReading = tuple[int | None, md.OpenInterest] | None
LiquidationReadings = Sequence[tuple[int | None, md.Liquidation]]


@dataclass(frozen=True)
class CacheStream:
    """A state the venue streams: `watch`, the ccxt.pro method called with the symbol, whose
    answers land in the exchange's attribute `cache` (a dict by symbol); `read` turns a cached
    entry into the wire's message."""

    watch: str
    cache: str
    read: Callable[[Any], Any]


@dataclass(frozen=True)
class LiquidationStream:
    """The venue's public liquidations: `watch`, the ccxt.pro method called with the symbol,
    whose answers go to ccxt's `liquidations` ring; `read`, one cached liquidation structure as
    the liquidations it states (ms, message) (a venue's message may state several)."""

    watch: str
    read: Callable[[Any], LiquidationReadings]


def unified_open_interest(entry: Any) -> InterestReading:
    """ccxt's open interest structure (fetch_open_interest) as ours: openInterestAmount (the
    instrument's size unit) and openInterestValue (the quote asset), None without an amount."""
    size = decimal_text(entry.get("openInterestAmount"))
    if not size:
        return None
    value = decimal_text(entry.get("openInterestValue"))
    return entry.get("timestamp"), md.OpenInterest(size=size, value=value)


@dataclass(frozen=True)
class DerivativeStreams:
    """How a venue's derivatives channels are read (those its LiveSpec.channels holds)."""

    # Mark and index prices (Channel.MARK).
    mark: CacheStream | None = None
    # Open interest (Channel.OPEN_INTEREST) where the venue streams it; None: polled by REST
    # with ccxt's fetch_open_interest, whose answer `open_interest_poll` reads.
    open_interest: CacheStream | None = None
    open_interest_poll: Callable[[Any], InterestReading] = field(default=unified_open_interest)
    # The market's liquidations (Channel.LIQUIDATIONS); None: the venue publishes none.
    liquidations: LiquidationStream | None = None


def event_ns(ms: Any, fallback_ns: Callable[[], int]) -> int:
    """A venue's time in ms (int, float or decimal string) as ns; now when it says none."""
    if ms is None or ms == "":
        return fallback_ns()
    return int(ms) * 1_000_000


def side_of(text: Any) -> Side | None:
    """A venue's side word ("buy", "SELL") as ours; None for anything else."""
    word = str(text).lower()
    return Side.BUY if word == "buy" else Side.SELL if word == "sell" else None


class StateNormalizer:
    """Emits a derivative's state (mark, open interest) whenever ccxt's cached entry of it is a
    new object (a stream's answer, or the poll's)."""

    def __init__(self, feed: MarketFeed, key: StreamKey, cache: str, read: Callable[[Any], Any]) -> None:
        self.feed = feed
        self.symbol = key.symbol
        self.channel = key.channel
        self.cache = cache
        self.read = read
        self._last: object | None = None

    def poll(self, exchange: Any) -> bool:
        entries = getattr(exchange, self.cache, None)
        entry = entries.get(self.symbol) if isinstance(entries, dict) else None
        if entry is None or entry is self._last:
            return False
        self._last = entry
        found = self.read(entry)
        if found is None:
            return False
        ms, message = found
        ts_ns = event_ns(ms, time.time_ns)
        if self.channel is Channel.MARK:
            self.feed.mark_price(self.symbol, ts_ns, message)
        else:
            self.feed.open_interest(self.symbol, ts_ns, message)
        return True


_FELL_OUT = "liquidations came faster than they were read: some may be missing"


class LiquidationNormalizer:
    """Emits each liquidation of the symbol that ccxt's `liquidations` ring gained since the last
    poll, once (a cursor by object identity: ccxt appends a new structure per message)."""

    def __init__(
        self, feed: MarketFeed, symbol: str, read: Callable[[Any], LiquidationReadings], ring: Any = None
    ) -> None:
        self.feed = feed
        self.symbol = symbol
        self.read = read
        # What the ring holds when the stream opens came before it (another symbol's, or this
        # one's while its stream was closed): read from its end.
        self._last: object | None = ring[-1] if ring else None
        self._started = self._last is not None

    def poll(self, exchange: Any) -> bool:
        ring = getattr(exchange, "liquidations", None)
        if not ring:
            return False
        items = list(ring)
        new, lost = self._after_cursor(items)
        self._last = items[-1]
        if lost:
            self.feed.gap(self.symbol, Channel.LIQUIDATIONS, _FELL_OUT)
        emitted = False
        for item in new:
            if item.get("symbol") != self.symbol:
                continue
            for ms, liquidation in self.read(item):
                self.feed.liquidation(self.symbol, event_ns(ms, time.time_ns), liquidation)
                emitted = True
        return emitted or lost

    def _after_cursor(self, items: list[Any]) -> tuple[list[Any], bool]:
        """The ring's items after the last one read, and whether the cursor fell out of the ring
        (items may have been missed). Where the ring was empty when the stream opened, the first
        poll takes every item: all came since."""
        if not self._started:
            self._started = True
            return items, False
        for index in range(len(items) - 1, -1, -1):
            if items[index] is self._last:
                return items[index + 1 :], False
        return items, True


Normalizer = StateNormalizer | LiquidationNormalizer


def derivative_job(
    streams: DerivativeStreams, key: StreamKey, feed: MarketFeed, exchange: Any, poll_s: float
) -> tuple[Normalizer, Callable[[], Any]]:
    """A derivatives stream's normalizer and watch: the venue's stream, or for open interest the
    REST poll every `poll_s` where it streams none (Admin's poll_interval_ms says which)."""
    symbol, stats = key.symbol, feed.streams.get(key)
    stats.poll_interval_ms = 0
    if key.channel is Channel.LIQUIDATIONS:
        if streams.liquidations is None:
            return LiquidationNormalizer(feed, symbol, lambda entry: ()), _unsupported(
                "publishes no liquidations"
            )
        watch = functools.partial(getattr(exchange, streams.liquidations.watch), symbol)
        ring = getattr(exchange, "liquidations", None)
        return LiquidationNormalizer(feed, symbol, streams.liquidations.read, ring), watch
    stream = streams.mark if key.channel is Channel.MARK else streams.open_interest
    if stream is not None:
        watch = functools.partial(getattr(exchange, stream.watch), symbol)
        return StateNormalizer(feed, key, stream.cache, stream.read), watch
    if key.channel is Channel.MARK:
        return StateNormalizer(feed, key, "", lambda entry: None), _unsupported("streams no mark price")
    stats.poll_interval_ms = round(poll_s * 1000)
    poll = OpenInterestPoll(exchange, symbol, poll_s)
    return StateNormalizer(feed, key, OPEN_INTERESTS, streams.open_interest_poll), poll


def _unsupported(what: str) -> Callable[[], Any]:
    """The watch of a stream the venue does not have: ccxt's NotSupported, which stops the stream
    for good (FAILED in Admin, a GAP notice saying why: trademesh/venues/live/streams.py)."""

    async def watch() -> None:
        raise ccxt.NotSupported(f"the venue {what}")

    return watch
