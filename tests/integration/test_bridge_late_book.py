"""A bridge started once the book's first snapshot has aged out of the bus still serves the book.

The bus keeps a market stream's last `outage_minutes` only. The sim builds its book from changes
and sends no snapshot of its own: the one on md.{sim}.book was the venue's answer to ingest's
subscription. A bridge (re)started later rebuilds its books from the latest snapshot on the
stream; with none there it had no book to give, and Studio's ladder stayed empty (the e2e mesh's
bridge, restarted by test_a_lost_live_stream_says_stream_ended_then_resubscribes ten minutes into
a loaded CI run). A changing book is sent whole every SNAPSHOT_EVERY_S (trademesh/venues/runtime/feed.py):
the bridge has it from the next one. Real sim, ingest, bridge and Redis; a bus that keeps 3 s.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.bridge_support import Received, read_until, start_bridge, subscribe
from tests.integration.mesh import MeshProcesses, read_stream, redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import start_venue, stop_venue, until
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.venues.runtime.feed import SNAPSHOT_EVERY_S

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # waits for the next whole book (60 s)
__all__ = ["redis_url"]  # the fixture, for pytest

SYMBOL = "BTC/USDT"
BOOK = "md.{sim}.book"


async def _snapshots_gone(bus: str) -> bool | None:
    """True once the stream holds book events and no snapshot (the first one trimmed by age)."""
    events = await read_stream(bus, BOOK)
    return True if events and not any(e.HasField("book_snapshot") for e in events) else None


async def test_a_bridge_started_after_the_books_snapshot_aged_out_gets_the_book(
    tmp_path: Path, redis_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        bus = await stack.enter_async_context(redis_db(redis_url))
        venue, venue_log = start_venue(tmp_path, None, "sim")
        stack.push_async_callback(stop_venue, venue, venue_log)
        mesh = MeshProcesses(tmp_path, bus)
        stack.push_async_callback(mesh.stop_all)
        config = tmp_path / "mesh.toml"
        config.write_text(
            "outage_minutes = 0.05\n"  # the bus keeps 3 s of each market stream
            f'[[venues]]\nname = "sim"\naddress = "{venue.address}"\n'
            f'symbols = ["{SYMBOL}"]\nchannels = ["book"]\n'
        )
        mesh.start("ingest", "--mesh-config", str(config))
        # Well before the sim's first whole book: the subscription's snapshot is gone from the bus.
        await until(lambda: _snapshots_gone(bus), SNAPSHOT_EVERY_S / 2, 0.5, "the first snapshot trimmed")

        bridge = start_bridge(bus, tmp_path)
        stack.push_async_callback(bridge.stop)
        request = lv.SubscribeRequest(venues=["sim"], symbols=[SYMBOL], kinds=[lv.KIND_BOOK])
        call, first = await subscribe(bridge.stub(), request)
        received = Received()
        received.add(first)
        got = await read_until(
            call,
            lambda r: any(e.HasField("book_snapshot") for e in r.events),
            SNAPSHOT_EVERY_S + 30,
            received,
        )
        got = await read_until(call, lambda r: _deltas_after_snapshot(r) >= 3, 30, got)
        call.cancel()
        at = next(i for i, e in enumerate(got.events) if e.HasField("book_snapshot"))
        snapshot = got.events[at].book_snapshot
        assert snapshot.bids and snapshot.asks, snapshot
        assert Decimal(snapshot.bids[0].price) < Decimal(snapshot.asks[0].price)
        # Deltas follow it without a hole.
        sequences = [e.book_delta.sequence for e in got.events[at:] if e.HasField("book_delta")]
        assert sequences == list(range(snapshot.sequence + 1, snapshot.sequence + 1 + len(sequences)))


def _deltas_after_snapshot(received: Received) -> int:
    kinds = [e.WhichOneof("payload") for e in received.events]
    return kinds[kinds.index("book_snapshot") :].count("book_delta") if "book_snapshot" in kinds else 0
