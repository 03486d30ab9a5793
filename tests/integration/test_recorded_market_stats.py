"""24h volumes and funding rates end to end with real parts: a replayed Binance USD-M venue (its
session's mark price and 24h ticker streams) and a sim venue with a perpetual, each followed by
an ingest process onto md.{<venue>}.tickers and md.{<venue>}.funding, and recorded by a recorder
process into PostgreSQL's tickers and funding_rates: the values as the venue states them, each
event once."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.replay import capture_files, running_replay_venue
from tests.integration.support import TEST_TOKEN, VenueFactory, until
from tests.integration.test_funding_payments import PERP, SIM_CONFIG
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, Redis and processes
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

D = Decimal
FILES = capture_files("BINANCE_FUTURES")
FUNDING_SQL = """
SELECT symbol, ts_event_ns, rate, next_funding_ns, mark_price, index_price FROM funding_rates
WHERE venue = $1 ORDER BY symbol, ts_event_ns
"""
VOLUMES_SQL = """
SELECT symbol, base_volume_24h, quote_volume_24h FROM tickers WHERE venue = $1 ORDER BY symbol, ts_event_ns
"""


def _capture() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The session's funding rates (symbol, event time ns, rate, next funding ns, mark, index) and
    24h volumes (symbol, base, quote), as its markPriceUpdate and 24hrTicker frames state them."""
    funding, volumes = set(), set()
    for path in FILES:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if not (head.replace(".", "").isdigit() and text.startswith('{"stream"')):
                continue
            data = json.loads(text)["data"]
            symbol = f"{data['s'].removesuffix('USDT')}/USDT:USDT"
            if data.get("e") == "markPriceUpdate":
                at, next_ns = data["E"] * 1_000_000, data["T"] * 1_000_000
                funding.add((symbol, at, D(data["r"]), next_ns, D(data["p"]), D(data["i"])))
            elif data.get("e") == "24hrTicker":
                volumes.add((symbol, D(data["v"]), D(data["q"])))
    return funding, volumes


async def _rows(url: str, sql: str, venue: str) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await connection.fetch(sql, venue)]
    except asyncpg.UndefinedTableError:
        return []  # the recorder has not migrated yet
    finally:
        await connection.close()


async def _followed_and_recorded(
    name: str, address: str, redis_url: str, database: str, tmp_path: Path, enough: Any
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, list[Any]]]:
    """Ingest (tickers and funding) and the recorder on the venue until `enough(funding rows,
    ticker rows)`: those rows, and the funding stream's events on the bus by symbol."""
    mesh = tmp_path / f"{name}-mesh.toml"
    mesh.write_text(
        f'[[venues]]\nname = "{name}"\naddress = "{address}"\nchannels = ["tickers", "funding"]\n'
    )
    async with redis_db(redis_url) as bus:
        with (
            (tmp_path / "ingest.log").open("w") as ingest_log,
            (tmp_path / "recorder.log").open("w") as rec_log,
        ):
            ingest = start_service(
                ["ingest", "--port", "0", "--metrics-port", "-1", "--mesh-config", str(mesh),
                 "--funding-every-s", "0"],
                env={TOKEN: TEST_TOKEN, REDIS_URL: bus}, stderr=ingest_log,
            )  # fmt: skip
            recorder = start_service(
                ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus, "--database-url",
                 database, "--stream-pattern", "md.*"],
                stderr=rec_log, timeout_s=60,
            )  # fmt: skip
            try:

                async def recorded() -> tuple[list[Any], list[Any]] | None:
                    funding = await _rows(database, FUNDING_SQL, name)
                    volumes = await _rows(database, VOLUMES_SQL, name)
                    return (funding, volumes) if enough(funding, volumes) else None

                funding, volumes = await until(recorded, timeout_s=45, interval_s=0.2, what="rows recorded")
            finally:
                await asyncio.to_thread(ingest.terminate)
                await asyncio.to_thread(recorder.terminate)
        client = aioredis.Redis.from_url(bus)
        try:
            entries: Any = await client.xrange(f"md.{{{name}}}.funding")
        finally:
            await client.aclose()
    on_bus: dict[str, list[Any]] = {}
    for _, fields in entries:
        for event in decode(fields).market.events:
            on_bus.setdefault(event.symbol, []).append(event)
    return funding, volumes, on_bus


async def test_a_live_venues_funding_rates_and_24h_volumes_are_recorded_as_it_states_them(
    request: pytest.FixtureRequest, redis_url: str, fresh_database: str, tmp_path: Path
) -> None:
    funding, volumes = _capture()
    stated = {(s, b, q) for s, b, q in volumes}

    def enough(rows: list[Any], tickers: list[Any]) -> bool:
        return len(rows) >= len(funding) and stated <= set(tickers)

    async with running_replay_venue(tmp_path, request, "binanceusdm", FILES) as venue:
        rows, tickers, on_bus = await _followed_and_recorded(
            "binanceusdm", venue.address, redis_url, fresh_database, tmp_path, enough
        )
    assert set(rows) == funding and len(rows) == len(funding) == 117, "each rate once, exactly"
    assert {row for row in tickers if row[2] is not None} == stated, "each 24h volume as stated"
    assert sum(len(events) for events in on_bus.values()) == len(funding), "every rate on the bus, once"
    assert all(e.HasField("funding_rate") for events in on_bus.values() for e in events)


async def test_the_sims_perpetual_funding_rate_and_its_markets_24h_volumes_are_recorded(
    fresh_venue: VenueFactory, redis_url: str, fresh_database: str, tmp_path: Path
) -> None:
    venue = fresh_venue(SIM_CONFIG, "perp")

    def enough(rows: list[Any], tickers: list[Any]) -> bool:
        symbols = {row[0] for row in tickers if row[2] is not None and row[2] > 0}
        return len(rows) >= 3 and symbols == {"BTC/USDT", PERP}

    rows, _, on_bus = await _followed_and_recorded(
        "sim", venue.address, redis_url, fresh_database, tmp_path, enough
    )
    assert {row[0] for row in rows} == {PERP} and set(on_bus) == {PERP}, "the spot pair has no funding"
    for _, _, rate, next_ns, mark, index in rows:
        assert rate == D("0.0003") and next_ns % 2_000_000_000 == 0 and mark > 0 and index is None
    assert "not followed" not in (tmp_path / "ingest.log").read_text(), "ingest asked for perpetuals only"
