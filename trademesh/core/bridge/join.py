"""Joining the bus live: the bridge's group starts at each stream's head, the books from what the bus holds.

A live bridge has no use for the backlog: at start its group is placed at the head of every
stream it finds (created there, or moved there, its stale pending entries dropped). Streams
that appear later are read from their first entry, so a new venue's first snapshots are not
missed. The books are rebuilt from the book streams up to the head: back from it to the
latest snapshot of every book seen on the way (or `lookback_entries`), then forward.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from redis.exceptions import ResponseError

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bridge.books import BridgeBooks
from trademesh.core.bridge.pump import stream_venue
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.consumer import GroupConsumer
from trademesh.core.platform.bus.names import parse_market_stream
from trademesh.core.platform.bus.reads import read_back, read_range
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt

__all__ = ["join_live", "leave", "rebuild_books"]

log = logging.getLogger(__name__)

_PAGE = 500


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def join_live(consumer: GroupConsumer) -> dict[str, str]:
    """Place the consumer's group at the head of every stream it follows; stream -> head id."""
    await consumer.discover()
    heads: dict[str, str] = {}
    for stream in consumer.streams:
        heads[stream] = await _head(consumer.redis, stream)
        await _place_group(consumer, stream, heads[stream])
    return heads


async def _head(redis: BusRedis, stream: str) -> str:
    try:
        info = await redis.xinfo_stream(stream)
    except ResponseError:  # gone since it was found
        return "0-0"
    return _text(info["last-generated-id"])


async def _place_group(consumer: GroupConsumer, stream: str, head: str) -> None:
    redis, group = consumer.redis, consumer.options.group
    try:
        await redis.xgroup_create(stream, group, id=head, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        await redis.xgroup_setid(stream, group, head)
        # What it had read and not acknowledged before it stopped is stale now.
        await redis.xgroup_delconsumer(stream, group, consumer.options.consumer)


async def leave(consumer: GroupConsumer) -> None:
    """Remove the group: a stopped bridge's group would only show as lag growing forever."""
    for stream in consumer.streams:
        with contextlib.suppress(ResponseError):
            await consumer.redis.xgroup_destroy(stream, consumer.options.group)


async def rebuild_books(
    redis: BusRedis, books: BridgeBooks, heads: dict[str, str], lookback_entries: int
) -> int:
    """Rebuild the books from the book streams, up to their heads; the number of usable books."""
    for stream, head in heads.items():
        parsed = parse_market_stream(stream)
        if parsed is not None and parsed[1] is Channel.BOOK and head != "0-0":
            start = await _latest_snapshots(redis, stream, head, lookback_entries)
            if start is not None:
                await _replay(redis, stream, start, head, books)
    usable = sum(1 for _ in books.usable())
    log.info("bridge: %d books rebuilt from the bus", usable)
    return usable


async def _latest_snapshots(redis: BusRedis, stream: str, head: str, lookback_entries: int) -> str | None:
    """Walking back from the head: the oldest entry holding the latest snapshot of a book seen."""
    seen: set[tuple[str, str]] = set()
    snapshotted: set[tuple[str, str]] = set()
    start: str | None = None
    upper, scanned = head, 0
    while scanned < lookback_entries:
        page = await read_back(redis, stream, max=upper, min="-", count=_PAGE)
        for entry_id, envelope in _envelopes(page):
            scanned += 1
            keys, snapshots = _book_keys(stream, envelope)
            seen |= keys
            if snapshots - snapshotted:
                snapshotted |= snapshots
                start = entry_id
            if seen <= snapshotted:
                return start
        if len(page) < _PAGE:
            break
        upper = "(" + _text(page[-1][0])
    return start


async def _replay(redis: BusRedis, stream: str, start: str, head: str, books: BridgeBooks) -> None:
    lower = start
    while True:
        page = await read_range(redis, stream, min=lower, max=head, count=_PAGE)
        for _, envelope in _envelopes(page):
            _apply(books, stream_venue(stream), envelope)
        if len(page) < _PAGE:
            return
        lower = "(" + _text(page[-1][0])


def _envelopes(page: Iterable[tuple[Any, dict[bytes, bytes]]]) -> list[tuple[str, bus.Envelope]]:
    found = []
    for entry_id, fields in page:
        try:
            found.append((_text(entry_id), decode(fields)))
        except Corrupt:
            continue  # the group consumer dead-letters it; here it only is not part of a book
    return found


def _book_keys(stream: str, envelope: bus.Envelope) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(venue, symbol) of the books in the envelope, and of those with a snapshot."""
    venue = stream_venue(stream)
    keys, snapshots = set(), set()
    for event in envelope.market.events:
        payload = event.WhichOneof("payload")
        if payload in ("book_snapshot", "book_delta"):
            keys.add((event.venue or venue, event.symbol))
            if payload == "book_snapshot":
                snapshots.add((event.venue or venue, event.symbol))
    return keys, snapshots


def _apply(books: BridgeBooks, stream_venue: str, envelope: bus.Envelope) -> None:
    for event in envelope.market.events:
        payload = event.WhichOneof("payload")
        venue = event.venue or stream_venue
        if payload == "book_snapshot":
            books.snapshot(venue, event.symbol, event)
        elif payload == "book_delta":
            books.delta(venue, event.symbol, event)
