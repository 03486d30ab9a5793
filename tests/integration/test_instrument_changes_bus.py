"""Instrument changes on the bus, end to end with real parts (docs/bus.md, "Instruments"): a real
sim venue whose listing is changed through its listing file (TRADEMESH_SIM_LISTING, the sim's
admin control: trademesh/venues/sim/listing.py), real ingest reading its ListInstruments into
md.{<venue>}.instruments, the real recorder keeping each change in `instrument_changes`
(PostgreSQL), and the readers' InstrumentWatch hearing the delisting on Redis. A restarted ingest
goes on from the stream's last entry: it announces nothing again, only what changes after."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    VENUE_ENV,
    VenueFactory,
    until,
    with_test_step,
)
from tests.integration.test_screener import TICKER_SCREEN, _bars
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import decode, encode_bars, encode_instruments
from trademesh.core.platform.bus.instruments import KEEP, InstrumentRelay, InstrumentWatch, VenueListing
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.core.screener.engine.definition import parse_screen
from trademesh.core.screener.engine.evaluate import evaluate
from trademesh.core.screener.feed import ScreenFeed
from trademesh.core.screener.state import MarketState
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, Redis and processes
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

Change = bus.InstrumentChange
STREAM = "md.{sim}.instruments"
SIM_CONFIG = """
[balances]
USDT = "100000"
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
[[symbols]]
symbol = "ETH/USDT"
start_price = "3000"
tick_size = "0.01"
lot_size = "0.0001"
"""


def _ingest(address: str, bus_url: str, log: Any) -> ServiceProcess:
    return start_service(
        ["ingest", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={address}",
         "--no-executions", "--funding-every-s", "0", "--instruments-every-s", "0.2"],
        env={TOKEN: TEST_TOKEN, REDIS_URL: bus_url}, stderr=log,
    )  # fmt: skip


async def _entries(client: Any) -> list[bus.InstrumentChanges]:
    found: Any = await client.xrange(STREAM)
    return [decode(fields).instruments for _, fields in found]


async def _recorded(url: str) -> list[Any]:
    connection = await asyncpg.connect(url)
    try:
        return list(
            await connection.fetch(
                "SELECT symbol, kind, initial, fields, tick_size, active, before, after "
                "FROM instrument_changes WHERE venue = 'sim' ORDER BY ts_ns, symbol"
            )
        )
    except asyncpg.UndefinedTableError:
        return []  # the recorder has not migrated yet
    finally:
        await connection.close()


def _changes(entry: bus.InstrumentChanges) -> list[tuple[str, int, list[str]]]:
    return [(c.symbol, c.kind, list(c.fields)) for c in entry.changes]


async def test_a_delisting_and_a_changed_rule_go_on_the_bus_once_and_are_recorded(
    fresh_venue: VenueFactory, redis_url: str, fresh_database: str, tmp_path: Path
) -> None:
    listing = tmp_path / "listing.json"
    venue = fresh_venue(SIM_CONFIG, "listing", env={**VENUE_ENV, "TRADEMESH_SIM_LISTING": str(listing)})
    async with redis_db(redis_url) as bus_url:
        client = aioredis.Redis.from_url(bus_url)
        heard: list[VenueListing] = []
        watch = InstrumentWatch(client, heard.append, every_s=0.1, scan_every_s=0.2)
        stop = asyncio.Event()
        watching = asyncio.create_task(watch.run(stop))
        logs = [(tmp_path / name).open("w") for name in ("ingest-1.log", "ingest-2.log", "recorder.log")]
        recorder = start_service(
            ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus_url,
             "--database-url", fresh_database, "--stream-pattern", "md.{*}.instruments"],
            stderr=logs[2], timeout_s=60,
        )  # fmt: skip
        ingest = _ingest(venue.address, bus_url, logs[0])
        stubs = venue.stubs()
        try:

            async def entries(count: int) -> list[bus.InstrumentChanges] | None:
                found = await _entries(client)
                return found if len(found) >= count else None

            [first] = await until(lambda: entries(1), 30, what="the venue's list on the bus")
            assert first.initial and first.venue == "sim"
            assert _changes(first) == [
                ("BTC/USDT", Change.KIND_LISTED, []),
                ("ETH/USDT", Change.KIND_LISTED, []),
            ]

            # The sim delists ETH/USDT and changes BTC/USDT's tick: one entry, two changes.
            listing.write_text(
                json.dumps({"delisted": ["ETH/USDT"], "rules": {"BTC/USDT": {"tick_size": "0.1"}}})
            )
            second = (await until(lambda: entries(2), 30, what="the delisting on the bus"))[1]
            assert _changes(second) == [
                ("BTC/USDT", Change.KIND_CHANGED, ["tick_size"]),
                ("ETH/USDT", Change.KIND_DELISTED, []),
            ]
            assert (second.changes[0].before.tick_size, second.changes[0].after.tick_size) == ("0.01", "0.1")
            assert [i.symbol for i in second.instruments] == ["BTC/USDT"]
            assert list(second.delisted) == ["ETH/USDT"] and not second.initial

            async def heard_delisted() -> VenueListing | None:
                return next((h for h in heard if "ETH/USDT" in h.delisted), None)

            seen = await until(heard_delisted, 10, what="a reader hearing the delisting")
            assert seen.venue == "sim" and seen.newly_delisted() in (
                ["ETH/USDT"],
                [],
            )  # [] when read at its start

            # The venue no longer trades it.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stubs.tf.PlaceOrder(
                    tf.PlaceOrderRequest(symbol="ETH/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET,
                                         size="0.1"),
                    timeout=CALL_TIMEOUT_S,
                )  # fmt: skip
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

            # A restarted ingest goes on from the stream's last entry: nothing announced again.
            await asyncio.to_thread(ingest.terminate)
            ingest = _ingest(venue.address, bus_url, logs[1])

            async def resumed() -> bool | None:
                return (
                    True
                    if "goes on from 1 instruments listed" in (tmp_path / "ingest-2.log").read_text()
                    else None
                )

            await until(resumed, 30, what="the restarted ingest resuming from the bus")
            listing.write_text(json.dumps({"rules": {"BTC/USDT": {"tick_size": "0.1"}}}))  # ETH/USDT back
            third = (await until(lambda: entries(3), 30, what="the listing again on the bus"))[2]
            assert _changes(third) == [("ETH/USDT", Change.KIND_LISTED, [])]
            assert list(third.delisted) == [] and not third.initial
            assert len(await _entries(client)) == 3, "no entry re-announcing the list"

            async def rows() -> list[Any] | None:
                found = await _recorded(fresh_database)
                return found if len(found) >= 5 else None

            recorded = await until(rows, 30, interval_s=0.2, what="five instrument changes recorded")
            assert [(r["symbol"], r["kind"], r["initial"], list(r["fields"])) for r in recorded] == [
                ("BTC/USDT", "listed", True, []),
                ("ETH/USDT", "listed", True, []),
                ("BTC/USDT", "changed", False, ["tick_size"]),
                ("ETH/USDT", "delisted", False, []),
                ("ETH/USDT", "listed", False, []),
            ]
            changed, delisted = recorded[2], recorded[3]
            assert changed["tick_size"] == Decimal("0.1") and changed["active"] is True
            assert json.loads(changed["before"])["tick_size"] == "0.01"
            assert json.loads(changed["after"])["kind"] == "spot"
            assert (delisted["tick_size"], delisted["active"], delisted["after"]) == (None, None, None)
            assert json.loads(delisted["before"])["symbol"] == "ETH/USDT"
        finally:
            stop.set()
            await watching
            await stubs.close()
            await asyncio.to_thread(ingest.terminate)
            await asyncio.to_thread(recorder.terminate)
            for log in logs:
                log.close()
            await client.aclose()


async def test_a_direct_venue_writes_its_instrument_changes_and_its_account_itself(
    redis_url: str, tmp_path: Path
) -> None:
    """`trademesh venue sim --bus-direct` (the default of `trademesh up`): the same streams as
    ingest's, from the venue's own process (trademesh.venues.runtime.direct)."""
    listing = tmp_path / "listing.json"
    config = tmp_path / "direct.toml"
    config.write_text(with_test_step(SIM_CONFIG))
    async with redis_db(redis_url) as bus_url:
        with (tmp_path / "direct.log").open("w") as log:
            venue = start_service(
                ["venue", "sim", "--port", "0", "--metrics-port", "-1", "--config", str(config),
                 "--bus-direct", "--redis-url", bus_url, "--bus-instruments-every-s", "0.2"],
                env={**VENUE_ENV, "TRADEMESH_SIM_LISTING": str(listing)}, stderr=log,
            )  # fmt: skip
        client = aioredis.Redis.from_url(bus_url)
        try:

            async def entries(count: int) -> list[bus.InstrumentChanges] | None:
                found = await _entries(client)
                return found if len(found) >= count else None

            [first] = await until(lambda: entries(1), 30, what="the venue's list on the bus")
            assert first.initial and [c.symbol for c in first.changes] == ["BTC/USDT", "ETH/USDT"]

            async def account() -> bus.Envelope | None:
                found: Any = await client.xrange("account.{sim}", count=1)
                return decode(found[0][1]) if found else None

            envelope = await until(account, 30, what="the account's snapshot on the bus")
            assert envelope.source.startswith("venue/") and envelope.account.snapshot
            assert {b.asset: b.total for b in envelope.account.balances}["USDT"] == "100000"

            listing.write_text(json.dumps({"delisted": ["ETH/USDT"]}))
            second = (await until(lambda: entries(2), 30, what="the delisting on the bus"))[1]
            assert _changes(second) == [("ETH/USDT", Change.KIND_DELISTED, [])]
        finally:
            await client.aclose()
            await asyncio.to_thread(venue.terminate)


async def test_readers_follow_every_venues_instrument_stream_on_one_redis_and_a_cluster(bus_url: str) -> None:
    """InstrumentWatch (the detector's, the inspector's): the streams of venues on several slots
    found by their pattern, each from its last entry, then every entry after it, in order."""
    redis = open_redis(bus_url)
    heard: list[VenueListing] = []
    try:
        lists = {venue: [f"{venue.upper()}/USDT", "ETH/USDT"] for venue in ("alpha", "beta", "gamma")}

        def relay(venue: str) -> tuple[InstrumentRelay, Callable[[], Awaitable[list[common.Instrument]]]]:
            async def publish(stream: str, envelope: bytes) -> None:
                await redis.xadd(stream, {b"d": envelope})

            async def list_all() -> list[common.Instrument]:
                return [common.Instrument(venue=venue, symbol=s) for s in lists[venue]]

            return InstrumentRelay(venue, publish, "ingest/test", 1), list_all

        relays = {venue: relay(venue) for venue in lists}
        for each, list_all in relays.values():
            await each.poll_with(list_all)
        lists["alpha"].remove("ETH/USDT")
        await relays["alpha"][0].poll_with(relays["alpha"][1])  # before the reader starts: its state
        watch = InstrumentWatch(redis, heard.append, every_s=0.05, scan_every_s=0.05)
        assert await watch.read_once() == 3
        assert {(h.venue, h.at_start, h.delisted) for h in heard} == {
            ("alpha", True, frozenset({"ETH/USDT"})),
            ("beta", True, frozenset()),
            ("gamma", True, frozenset()),
        }
        lists["gamma"].remove("ETH/USDT")
        await relays["gamma"][0].poll_with(relays["gamma"][1])
        lists["gamma"].append("ETH/USDT")
        await relays["gamma"][0].poll_with(relays["gamma"][1])
        assert await watch.read_once() == 2
        assert [(h.venue, h.newly_delisted(), h.newly_listed()) for h in heard[3:]] == [
            ("gamma", ["ETH/USDT"], []),
            ("gamma", [], ["ETH/USDT"]),
        ]
        assert not watch.delisted("gamma", "ETH/USDT") and watch.delisted("alpha", "ETH/USDT")
        assert await watch.read_once() == 0
    finally:
        await redis.aclose()


async def test_the_screeners_feed_drops_a_symbol_its_venue_delisted_on_a_real_redis(redis_url: str) -> None:
    """The Screener's feed (trademesh.core.screener.feed) reads the screen venue's bars and its instrument
    stream: a delisted symbol is in no input of its screens, ranked again once listed again and
    its bars come again."""
    screen = parse_screen(TICKER_SCREEN.replace("spread_bps = -1.0, ", ""), "tight.toml")
    async with redis_db(redis_url) as bus_url:
        client: Any = aioredis.Redis.from_url(bus_url)
        try:
            for symbol in ("AAA/USDT", "BBB/USDT"):
                await client.xadd(
                    "bars.{tk}.1m", {b"d": encode_bars("bars/test", _bars("tk", symbol, "110", "1", 2))}
                )

            async def publish(stream: str, envelope: bytes) -> None:
                await client.xadd(stream, {b"d": envelope})

            listing = ["AAA/USDT", "BBB/USDT"]

            async def list_all() -> list[common.Instrument]:
                return [common.Instrument(venue="tk", symbol=s) for s in listing]

            relay = InstrumentRelay("tk", publish, "ingest/test", 1)
            await relay.poll_with(list_all)
            listing.remove("BBB/USDT")
            await relay.poll_with(list_all)
            listing.append("BBB/USDT")
            await relay.poll_with(list_all)
            feed = ScreenFeed(client, MarketState([screen]), ticker_age_ms=600_000, batch=10, block_ms=50)
            await feed.mark_warm_up()  # the instrument stream from its last entry: BBB/USDT listed
            assert feed.state.delisted == {"tk": frozenset()}
            while await feed.read():
                pass
            now = time.time_ns()
            assert [r.symbol for r in evaluate(screen, feed.state.inputs(screen), now).ranked] == [
                "AAA/USDT",
                "BBB/USDT",
            ]
            listing.remove("BBB/USDT")
            await relay.poll_with(list_all)
            assert await feed.read() == 1
            assert [i.symbol for i in feed.state.inputs(screen)] == ["AAA/USDT"]
            assert [r.symbol for r in evaluate(screen, feed.state.inputs(screen), now).ranked] == ["AAA/USDT"]
            listing.append("BBB/USDT")
            await relay.poll_with(list_all)
            await client.xadd(
                "bars.{tk}.1m", {b"d": encode_bars("bars/test", _bars("tk", "BBB/USDT", "120", "1", 2))}
            )
            while await feed.read():
                pass
            assert [i.symbol for i in feed.state.inputs(screen)] == ["AAA/USDT", "BBB/USDT"]
        finally:
            await client.aclose()


async def test_an_instrument_stream_keeps_about_its_own_bound_not_the_retentions(bus_url: str) -> None:
    """Publisher.add's `maxlen` (ingest's and a direct venue's instrument streams: KEEP) instead of
    the retention's count (here 1,000): Redis trims whole macro-nodes (`~`), so about KEEP stay."""
    redis = open_redis(bus_url)
    try:
        publisher = Publisher(redis, Retention(2000.0, 10.0))
        stream = "md.{big}.instruments"
        entry = encode_instruments("ingest/test", bus.InstrumentChanges(venue="big", ts_ns=1))
        for _ in range(3):
            for _ in range(200):
                publisher.add(stream, entry, maxlen=KEEP)
            await publisher.flush()
        kept = await redis.xlen(stream)
        assert KEEP <= kept <= 2 * KEEP + 100, kept
        other = "funding.{big}"
        for _ in range(3):
            for _ in range(200):
                publisher.add(other, entry)
            await publisher.flush()
        assert await redis.xlen(other) == 600, "the retention's bound (1,000) for the others"
    finally:
        await redis.aclose()
