"""The top of a venue's L2 books, as the live bridge holds them (docs/bridge.md).

A book subscription's first message is the bridge's snapshot of every book it covers, so one
subscription, read once and cancelled, is a point-in-time look at the book (or at several books
of a venue at once: `book_tops`). When it holds nothing, the bridge's stream list tells a wrong
venue or symbol from a book not rebuilt yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from decimal import Decimal
from typing import Any

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import InvalidArgument, Unavailable
from trademesh.core.tools.render import iso_time
from trademesh.core.tools.upstream import Upstream
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["LIVEDATA", "book_events", "book_top", "book_tops"]

LIVEDATA = "trademesh.livedata.v1.LiveData"


async def book_top(upstream: Upstream, venue: str, symbol: str, depth: int) -> dict[str, Any]:
    found = await book_tops(upstream, venue, [symbol], depth)
    if symbol in found:
        return found[symbol]
    raise await _why_no_book(upstream, venue, symbol)


async def book_tops(
    upstream: Upstream, venue: str, symbols: Sequence[str], depth: int
) -> dict[str, dict[str, Any]]:
    """The tops of a venue's books of `symbols` from one look (one subscription's first message),
    by symbol: those the bridge holds a usable book of; a symbol without one is left out."""
    request = lv.SubscribeRequest(
        venues=[venue],
        symbols=list(symbols),
        kinds=[lv.KIND_BOOK],
        # A look at one message: the bridge must never hold a queue for us.
        overflow_policy=md.OVERFLOW_POLICY_CONFLATE,
    )
    first = await upstream.first(LIVEDATA, None, "Subscribe", request, lv.SubscribeResponse)
    wanted = set(symbols)
    return {
        event.symbol: _top(event, depth)
        for event in first.events
        if event.WhichOneof("payload") == "book_snapshot" and event.venue == venue and event.symbol in wanted
    }


async def book_events(
    upstream: Upstream, venue: str, symbols: Sequence[str]
) -> AsyncGenerator[Sequence[md.MarketEvent]]:
    """The bridge's events of a venue's books of `symbols` as they come, a message's at a time:
    each book's snapshot, then its deltas; conflated (a subscriber fallen behind gets a GAP
    notice and a fresh snapshot: the bridge never holds a queue for it)."""
    request = lv.SubscribeRequest(
        venues=[venue],
        symbols=list(symbols),
        kinds=[lv.KIND_BOOK],
        overflow_policy=md.OVERFLOW_POLICY_CONFLATE,
    )
    messages = upstream.stream(LIVEDATA, None, "Subscribe", request, lv.SubscribeResponse)
    async with contextlib.aclosing(messages):
        async for message in messages:
            yield message.events


def _levels(levels: Any, depth: int, best_is_highest: bool) -> list[dict[str, str]]:
    # The wire says best first; sorting costs little and does not trust it.
    ordered = sorted(levels, key=lambda level: Decimal(level.price), reverse=best_is_highest)
    return [{"price": level.price, "size": level.size} for level in ordered[:depth]]


def _top(event: md.MarketEvent, depth: int) -> dict[str, Any]:
    snapshot = event.book_snapshot
    bids = _levels(snapshot.bids, depth, best_is_highest=True)
    asks = _levels(snapshot.asks, depth, best_is_highest=False)
    spread = None
    if bids and asks:
        spread = format_decimal(Decimal(asks[0]["price"]) - Decimal(bids[0]["price"]))
    return {
        "venue": event.venue,
        "symbol": event.symbol,
        "sequence": snapshot.sequence,
        "ts_event_ns": event.ts_event_ns,
        "ts_event": iso_time(event.ts_event_ns),
        "bids": bids,
        "asks": asks,
        "spread": spread,
    }


async def _why_no_book(upstream: Upstream, venue: str, symbol: str) -> Exception:
    listed = await upstream.unary(
        LIVEDATA, None, "ListStreams", lv.ListStreamsRequest(kinds=[lv.KIND_BOOK]), lv.ListStreamsResponse
    )
    books = {(stream.venue, stream.symbol): stream.book_sequence for stream in listed.streams}
    if (venue, symbol) in books:
        return Unavailable(
            f"the bridge's book of {symbol} on {venue} is not usable yet: "
            "it waits for the venue's next snapshot"
        )
    symbols = sorted(s for v, s in books if v == venue)
    if not symbols:
        venues = ", ".join(sorted({v for v, _ in books})) or "none yet"
        return InvalidArgument.field(
            "venue", f"the bridge has no books of venue {venue!r} (venues: {venues})"
        )
    return InvalidArgument.field(
        "symbol", f"the bridge has no book of {symbol!r} on {venue} (books: {', '.join(symbols)})"
    )
