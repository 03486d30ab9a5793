"""The derivatives channels end to end with real parts (issue 60): a replayed Binance USD-M venue
(its session's mark price and liquidation streams, and its stand-in's GET /fapi/v1/openInterest
polled) and a sim venue with a perpetual (its mark price), each followed by an ingest process onto
md.{<venue>}.mark, .open_interest and .liquidations, and recorded by a recorder process into
PostgreSQL's mark_prices, open_interest and liquidations: the values as the venue states them,
each event once, and once again when the whole stream is recorded a second time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.replay import capture_files, running_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, VenueFactory, until
from tests.integration.test_funding_payments import PERP, SIM_CONFIG
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.binanceusdm.standin.derivatives import start_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, Redis and processes
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

D = Decimal
# The recorded session with its liquidations (a file of their own: fixtures/exchange-captures/README.md).
FILES = capture_files("BINANCE_FUTURES") + capture_files("BINANCE_FUTURES_LIQUIDATIONS")
CHANNELS = ("mark", "open_interest", "liquidations")
SQL = {
    "mark": "SELECT symbol, ts_event_ns, mark_price, index_price FROM mark_prices WHERE venue = $1",
    "open_interest": "SELECT symbol, ts_event_ns, size, value FROM open_interest WHERE venue = $1",
    "liquidations": "SELECT symbol, ts_event_ns, side, price, size FROM liquidations WHERE venue = $1",
}
Rows = dict[str, list[tuple[Any, ...]]]


def _symbol(native: str) -> str:
    return f"{native.removesuffix('USDT')}/USDT:USDT"


def _capture() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The session's mark prices (symbol, event ns, mark, index) and liquidations (symbol, trade
    ns, side, average price, filled quantity), as its markPriceUpdate and forceOrder frames state them."""
    marks, liquidations = set(), set()
    for path in FILES:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if not (head.replace(".", "").isdigit() and text.startswith('{"stream"')):
                continue
            data = json.loads(text)["data"]
            if data.get("e") == "markPriceUpdate":
                marks.add((_symbol(data["s"]), data["E"] * 10**6, D(data["p"]), D(data["i"])))
            elif data.get("e") == "forceOrder":
                order = data["o"]
                side = order["S"].lower()
                liquidations.add(
                    (_symbol(order["s"]), order["T"] * 10**6, side, D(order["ap"]), D(order["z"]))
                )
    return marks, liquidations


async def _rows(url: str, venue: str) -> Rows:
    connection = await asyncpg.connect(url)
    try:
        return {
            channel: [tuple(row) for row in await connection.fetch(sql, venue)]
            for channel, sql in SQL.items()
        }
    except asyncpg.UndefinedTableError:
        return {channel: [] for channel in SQL}  # the recorder has not migrated yet
    finally:
        await connection.close()


def _recorder(bus: str, database: str, log: Any, group: str) -> Any:
    return start_service(
        ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus, "--database-url", database,
         "--stream-pattern", "md.*", "--group", group],
        stderr=log, timeout_s=60,
    )  # fmt: skip


async def _followed_and_recorded(
    name: str,
    address: str,
    channels: tuple[str, ...],
    redis_url: str,
    database: str,
    tmp_path: Path,
    enough: Callable[[Rows], bool],
) -> tuple[Rows, Rows, dict[str, list[md.MarketEvent]]]:
    """Ingest (`channels`) and the recorder on the venue until `enough(rows)`: the rows; the rows
    after a second recorder (another group) recorded every stream again from its start; and the
    events on the bus by channel."""
    mesh = tmp_path / f"{name}-mesh.toml"
    listed = ", ".join(f'"{channel}"' for channel in channels)
    mesh.write_text(f'[[venues]]\nname = "{name}"\naddress = "{address}"\nchannels = [{listed}]\n')
    async with redis_db(redis_url) as bus:
        with (
            (tmp_path / "ingest.log").open("w") as ingest_log,
            (tmp_path / "recorder.log").open("a") as rec_log,
        ):
            ingest = start_service(
                ["ingest", "--port", "0", "--metrics-port", "-1", "--mesh-config", str(mesh),
                 "--funding-every-s", "0"],
                env={TOKEN: TEST_TOKEN, REDIS_URL: bus}, stderr=ingest_log,
            )  # fmt: skip
            recorder = _recorder(bus, database, rec_log, "recorder")
            try:

                async def recorded() -> Rows | None:
                    rows = await _rows(database, name)
                    return rows if enough(rows) else None

                rows = await until(recorded, timeout_s=45, interval_s=0.2, what="rows recorded")
            finally:
                await asyncio.to_thread(ingest.terminate)
            await _recorder_drained(bus, name, "recorder")
            await asyncio.to_thread(recorder.terminate)
            rows = await _rows(database, name)
            again = _recorder(bus, database, rec_log, "again")  # every entry once more
            try:
                await _recorder_drained(bus, name, "again")
            finally:
                await asyncio.to_thread(again.terminate)
            rows_again = await _rows(database, name)
        on_bus = await _on_bus(bus, name)
    return rows, rows_again, on_bus


async def _recorder_drained(bus: str, venue: str, group: str) -> None:
    """Until the recorder's group has acknowledged every entry of the venue's streams."""
    client = aioredis.Redis.from_url(bus)

    async def drained() -> bool | None:
        for channel in CHANNELS:
            stream = f"md.{{{venue}}}.{channel}"
            if not await client.exists(stream):
                continue
            groups = {g["name"].decode(): g for g in await client.xinfo_groups(stream)}
            found = groups.get(group)
            if found is None or found["pending"] or found.get("lag", 1):
                return None
        return True

    try:
        await until(drained, timeout_s=30, interval_s=0.2, what=f"group {group} acknowledged everything")
    finally:
        await client.aclose()


async def _on_bus(bus: str, name: str) -> dict[str, list[md.MarketEvent]]:
    client = aioredis.Redis.from_url(bus)
    found: dict[str, list[md.MarketEvent]] = {}
    try:
        for channel in CHANNELS:
            entries: Any = await client.xrange(f"md.{{{name}}}.{channel}")
            found[channel] = [e for _, fields in entries for e in decode(fields).market.events]
    finally:
        await client.aclose()
    return found


def _counted(on_bus: list[md.MarketEvent]) -> list[md.MarketEvent]:
    return [e for e in on_bus if not e.HasField("notice")]


@pytest.mark.replay(
    config='channels = ["mark", "open_interest", "liquidations"]\nopen_interest_poll_s = 0.5\n'
)
async def test_a_live_venues_marks_open_interest_and_liquidations_are_recorded_as_it_states_them(
    request: pytest.FixtureRequest, redis_url: str, fresh_database: str, tmp_path: Path
) -> None:
    marks, liquidations = _capture()
    symbols = {row[0] for row in marks}

    def enough(rows: Rows) -> bool:
        polled = {row[0] for row in rows["open_interest"]}
        return (
            len(rows["mark"]) >= len(marks)
            and len(rows["liquidations"]) >= len(liquidations)
            and polled == symbols
        )

    async with running_replay_venue(tmp_path, request, "binanceusdm", FILES) as venue:
        stubs = venue.stubs(token=TEST_TOKEN)
        try:
            status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        finally:
            await stubs.close()
        polling = {(s.symbol, s.channel): s.poll_interval_ms for s in status.streams}
        for symbol in symbols:
            assert polling[(symbol, md.CHANNEL_OPEN_INTEREST)] == 500, "polled: Admin says how often"
            assert polling[(symbol, md.CHANNEL_MARK)] == 0 and polling[(symbol, md.CHANNEL_LIQUIDATIONS)] == 0
        rows, again, on_bus = await _followed_and_recorded(
            "binanceusdm", venue.address, CHANNELS, redis_url, fresh_database, tmp_path, enough
        )
    assert set(rows["mark"]) == marks and len(rows["mark"]) == len(marks) == 117, "each mark once, exactly"
    assert set(rows["liquidations"]) == liquidations and len(liquidations) == 8, (
        "each liquidation once, exactly"
    )
    assert {side for _, _, side, _, _ in rows["liquidations"]} == {"buy", "sell"}
    for symbol, _, size, value in rows["open_interest"]:
        assert size >= start_of(symbol.split("/")[0] + "USDT") and value is None, "Binance states no value"
    assert len(_counted(on_bus["mark"])) == len(marks), "every mark on the bus, once"
    assert len(_counted(on_bus["liquidations"])) == len(liquidations)
    assert again == rows, "recorded again from the start: nothing doubled"


async def test_the_sims_perpetual_mark_price_is_recorded_and_its_spot_pair_has_none(
    fresh_venue: VenueFactory, redis_url: str, fresh_database: str, tmp_path: Path
) -> None:
    venue = fresh_venue(SIM_CONFIG, "perp")

    def enough(rows: Rows) -> bool:
        return len(rows["mark"]) >= 3

    rows, again, on_bus = await _followed_and_recorded(
        "sim", venue.address, ("mark",), redis_url, fresh_database, tmp_path, enough
    )
    marks = _counted(on_bus["mark"])
    assert {row[0] for row in rows["mark"]} == {PERP} == {e.symbol for e in marks}, (
        "the spot pair has no mark"
    )
    recorded = {(row[1], row[2]) for row in rows["mark"]}
    assert recorded == {(e.ts_event_ns, D(e.mark_price.mark_price)) for e in marks}, (
        "exactly what went on the bus"
    )
    assert all(row[3] is None and row[2] > 0 for row in rows["mark"]), "the sim states no index"
    assert not rows["open_interest"] and not rows["liquidations"] and not on_bus["liquidations"]
    assert again == rows, "recorded again from the start: nothing doubled"
    log = (tmp_path / "ingest.log").read_text()
    assert "not followed" not in log, "ingest asked for the perpetual only"
