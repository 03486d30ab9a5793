"""The recorder keeps a ticker's 24h open (marketdata.v1.Ticker open_24h, migration 017) on a real
PostgreSQL: the wire's decimal exactly, NULL where the venue states none, through both of the
recorder's ways into `tickers` (an entry COPied straight in, and one staged: a venue name COPY
would have to escape)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.test_recorder_store import NOW_NS, market, pool, recorder, write
from trademesh.core.recorder.app import Recorder
from trademesh.core.recorder.migrate import load_migrations
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL
__all__ = ["database_url", "fresh_database", "pool", "recorder"]  # the fixtures, for pytest


def ticker(venue: str, n: int, open_24h: str) -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol="BTC/USDT", ts_event_ns=NOW_NS + n, ts_recv_ns=NOW_NS + n)
    event.ticker.CopyFrom(md.Ticker(best_bid="65000.5", last_price="65001", open_24h=open_24h))
    return event


async def test_the_24h_open_is_recorded_exactly_and_null_where_the_venue_states_none(
    recorder: Recorder, pool: Any
) -> None:
    straight = market(ticker("binance", 1, "64250.10"), ticker("binance", 2, ""))
    staged = market(ticker("bin\\ance", 3, "0.00001230"), ticker("bin\\ance", 4, ""))
    assert await write(recorder, straight, staged) == 4
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT venue, open_24h, open_24h::text AS text FROM tickers ORDER BY ts_event_ns"
        )
        applied = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY applied_at, version")
    assert [(r["venue"], r["open_24h"]) for r in rows] == [
        ("binance", Decimal("64250.10")),
        ("binance", None),
        ("bin\\ance", Decimal("0.00001230")),
        ("bin\\ance", None),
    ]
    assert [r["text"] for r in rows if r["text"]] == ["64250.10", "0.00001230"]  # the wire's digits
    # Applied in number order, 017 after 016 (made at the same time on another branch).
    versions = [r["version"] for r in applied]
    assert versions == sorted(versions) == [m.version for m in load_migrations()]
    assert (versions[-1], applied[-1]["name"]) == (17, "ticker_open_24h") and versions[-2] == 16
