"""The followed markets' books from the bridge, kept as tops by the book's event time
(trademesh.core.domain.tops), so a signal is decided on the book as of its time.

One book subscription per followed venue, of its followed markets (MarketTools.book_events: the
bridge's snapshot of each book, then every delta; conflated: a subscriber fallen behind gets a
GAP notice and a fresh snapshot), opened again when a market is followed or no longer is (a
snapshot of each book opens it: a market's history goes on) and cancelled with the venue's
last market (one stream for the venue, not one per market: fewer streams and messages; the
advisor's CPU measured lower with it, docs/benchmarks.md §18). An event that changes the top
adds it to the market's history at the event's time. A GAP notice clears
the history and leaves the book unusable until its next snapshot; so does a stream that ends or
fails (what came meanwhile is unknown), opened again after a backoff. A lookup the history
cannot answer is the caller's to make on the latest top.

The cost is the bridge's every delta (the sim's ~400 a second per symbol): parsed, and applied
to the book's levels by price (docs/benchmarks.md §18 measures it); a lookup is a bisection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from decimal import Decimal

from trademesh.core.advisor.engine.context import BookTop
from trademesh.core.domain.tops import Timeline, TopBook
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.errors import TrademeshError
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["BookEvents", "BookFeed", "TopHistory", "TopKeeper"]

log = logging.getLogger(__name__)

# A venue's book events of some symbols, as they come (batches of the bridge's messages).
BookEvents = Callable[[str, Sequence[str]], AsyncGenerator[Sequence[md.MarketEvent]]]
Key = tuple[str, str]
# A book's tops by its event time (None: no usable top from then on).
TopHistory = Timeline[BookTop | None]


class TopKeeper:
    """One market's book from its events, its top's changes added to its history."""

    __slots__ = ("book", "history", "last", "usable")

    def __init__(self, history: TopHistory) -> None:
        self.history = history
        self.book = TopBook()
        self.usable = False  # until the book's snapshot
        self.last: tuple[Decimal, str, Decimal, str] | None = None

    def on_event(self, event: md.MarketEvent) -> None:
        kind = event.WhichOneof("payload")
        if kind == "book_delta":
            if not self.usable:
                return
            delta = event.book_delta
            self.book.apply(delta.bids, delta.asks)
        elif kind == "book_snapshot":
            snapshot = event.book_snapshot
            self.book.replace(snapshot.bids, snapshot.asks)
            self.usable = True
        else:
            if kind == "notice" and event.notice.kind == md.NOTICE_KIND_GAP:
                self.lost()
            return
        self._changed(event.ts_event_ns)

    def lost(self) -> None:
        """Events were missed: nothing is known until the next snapshot."""
        self.usable = False
        self.last = None
        self.history.clear()

    def _changed(self, ts_ns: int) -> None:
        key = self.book.key()
        if key == self.last:
            return
        self.last = key
        top = None if key is None else BookTop(key[0], Decimal(key[1]), key[2], Decimal(key[3]), ts_ns)
        self.history.add(ts_ns, top)


class BookFeed:
    def __init__(self, events: BookEvents, keep_ns: int) -> None:
        self._events = events
        self.keep_ns = keep_ns
        self._histories: dict[Key, TopHistory] = {}
        self._symbols: dict[str, set[str]] = {}  # venue -> its followed markets
        self._tasks: dict[str, asyncio.Task[None]] = {}  # venue -> its subscription

    def follow(self, venue: str, symbol: str) -> None:
        """Keep the market's tops from now on (the venue's subscription opened again with it)."""
        symbols = self._symbols.setdefault(venue, set())
        if symbol in symbols:
            return
        symbols.add(symbol)
        self._histories[(venue, symbol)] = TopHistory(self.keep_ns)
        self._subscribe(venue)

    def unfollow(self, venue: str, symbol: str) -> None:
        symbols = self._symbols.get(venue)
        if not symbols or symbol not in symbols:
            return
        symbols.discard(symbol)
        self._histories.pop((venue, symbol), None)
        if not symbols:
            del self._symbols[venue]
        self._subscribe(venue)

    def at(self, venue: str, symbol: str, ts_ns: int) -> BookTop | None:
        """The market's top as of `ts_ns`; None when its history does not reach back to it."""
        history = self._histories.get((venue, symbol))
        return None if history is None else history.at(ts_ns)

    def latest(self, venue: str, symbol: str) -> BookTop | None:
        """The market's newest top (None when none is kept)."""
        history = self._histories.get((venue, symbol))
        return None if history is None else history.newest

    def holds(self, venue: str) -> bool:
        """Whether a top of every followed market of the venue is kept now (the stream is up)."""
        symbols = self._symbols.get(venue) or ()
        return bool(symbols) and all(self.latest(venue, symbol) is not None for symbol in symbols)

    def newest(self, venue: str, symbol: str) -> int | None:
        """The event time of the market's newest kept top."""
        history = self._histories.get((venue, symbol))
        return None if history is None else history.newest_ns

    def following(self) -> list[Key]:
        return sorted(self._histories)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._symbols.clear()
        self._histories.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _subscribe(self, venue: str) -> None:
        """The venue's subscription, (re)opened for its followed markets: their histories go on
        (a snapshot of each book opens the new one)."""
        task = self._tasks.pop(venue, None)
        if task is not None:
            task.cancel()
        symbols = self._symbols.get(venue)
        if symbols:
            histories = {symbol: self._histories[(venue, symbol)] for symbol in symbols}
            self._tasks[venue] = asyncio.create_task(self._run(venue, histories), name=f"books of {venue}")

    async def _run(self, venue: str, histories: dict[str, TopHistory]) -> None:
        backoff = Backoff(0.5, 10.0)
        failing = ""
        while True:
            keepers = {symbol: TopKeeper(history) for symbol, history in histories.items()}
            try:
                async with contextlib.aclosing(self._events(venue, sorted(keepers))) as stream:
                    async for events in stream:
                        for event in events:
                            keeper = keepers.get(event.symbol)
                            if keeper is not None:
                                keeper.on_event(event)
                        if failing:
                            log.info("advisor context: the books of %s are followed again", venue)
                            failing = ""
                        backoff.reset()
                why = "the bridge ended the stream"
            except TrademeshError as exc:
                why = str(exc)
            for keeper in keepers.values():
                keeper.lost()
            if why != failing:
                failing = why
                log.warning("advisor context: the books of %s: %s", venue, why)
            await asyncio.sleep(backoff.next())
