"""The followed markets' books from the bridge, kept as tops by the book's event time
(core.advisor.tops), so a signal is decided on the book as of its event time.

One book subscription per followed market (MarketTools.book_events: the bridge's snapshot of
the book, then every delta; conflated: a subscriber fallen behind gets a GAP notice and a fresh
snapshot), opened when the market is followed and cancelled when it no longer is. An event
that changes the top adds it to the market's history at the event's time. A GAP notice clears
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

from core.advisor.engine.context import BookTop
from core.advisor.tops import TopBook, TopHistory
from core.backoff import Backoff
from core.errors import TrademeshError
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["BookEvents", "BookFeed", "TopKeeper"]

log = logging.getLogger(__name__)

# A venue's book events of some symbols, as they come (batches of the bridge's messages).
BookEvents = Callable[[str, Sequence[str]], AsyncGenerator[Sequence[md.MarketEvent]]]
Key = tuple[str, str]


class TopKeeper:
    """One market's book from its events, its top's changes added to its history."""

    __slots__ = ("book", "history", "last", "usable")

    def __init__(self, history: TopHistory) -> None:
        self.history = history
        self.book = TopBook()
        self.usable = False  # until the book's snapshot
        self.last: tuple[Decimal, str, Decimal, str] | None = None

    def on_events(self, events: Sequence[md.MarketEvent]) -> None:
        for event in events:
            kind = event.WhichOneof("payload")
            if kind == "book_delta":
                if not self.usable:
                    continue
                delta = event.book_delta
                self.book.apply(delta.bids, delta.asks)
            elif kind == "book_snapshot":
                snapshot = event.book_snapshot
                self.book.replace(snapshot.bids, snapshot.asks)
                self.usable = True
            else:
                if kind == "notice" and event.notice.kind == md.NOTICE_KIND_GAP:
                    self.lost()
                continue
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
        self._tasks: dict[Key, asyncio.Task[None]] = {}

    def follow(self, venue: str, symbol: str) -> None:
        """Keep the market's tops (from now on; a market followed already is left as it is)."""
        key = (venue, symbol)
        if key in self._tasks:
            return
        history = self._histories[key] = TopHistory(self.keep_ns)
        self._tasks[key] = asyncio.create_task(
            self._run(venue, symbol, history), name=f"book {venue}|{symbol}"
        )

    def unfollow(self, venue: str, symbol: str) -> None:
        task = self._tasks.pop((venue, symbol), None)
        if task is not None:
            task.cancel()
        self._histories.pop((venue, symbol), None)

    def at(self, venue: str, symbol: str, ts_ns: int) -> BookTop | None:
        """The market's top as of `ts_ns`; None when its history does not reach back to it."""
        history = self._histories.get((venue, symbol))
        return None if history is None else history.at(ts_ns)

    def newest(self, venue: str, symbol: str) -> int | None:
        """The event time of the market's newest kept top."""
        history = self._histories.get((venue, symbol))
        return None if history is None else history.newest_ns

    def following(self) -> list[Key]:
        return sorted(self._tasks)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._histories.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, venue: str, symbol: str, history: TopHistory) -> None:
        backoff = Backoff(0.5, 10.0)
        failing = ""
        while True:
            keeper = TopKeeper(history)
            try:
                async with contextlib.aclosing(self._events(venue, [symbol])) as stream:
                    async for events in stream:
                        keeper.on_events(events)
                        if failing:
                            log.info("advisor context: the book of %s on %s is followed again", symbol, venue)
                            failing = ""
                        backoff.reset()
                why = "the bridge ended the stream"
            except TrademeshError as exc:
                why = str(exc)
            keeper.lost()
            if why != failing:
                failing = why
                log.warning("advisor context: the book of %s on %s: %s", symbol, venue, why)
            await asyncio.sleep(backoff.next())
