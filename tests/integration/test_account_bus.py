"""Account snapshots on the bus, end to end with real parts (docs/bus.md, "Accounts"): real ingest
follows a real sim venue's TradeFlow.StreamAccount (with the mesh token: a READ method) into
account.{<venue>} (bus.v1.AccountSnapshot), and the real recorder keeps each balance and position
in `account_states` (PostgreSQL, NUMERIC), so the account's last rows are what the venue says it
holds after trading: a spot buy moves two balances, a perpetual's sale opens a short."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, VenueFactory, until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import start_service
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, Redis and processes
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

D = Decimal
PERP = "BTC/USDT:USDT"
# Makers quote about 1 BTC (spot) and 5 contracts (perpetual) an order, so the market orders below
# (0.01 BTC, 0.5 contracts) always find the book deep enough: at the default 200 lots an order the
# spot book's side held less than 0.01 BTC now and then, and the buy expired unfilled; levels 1 USDT
# apart, so a step's move does not jump past every level (bench/sim_book_depth.py: 0 in 216,000 steps).
SIM_CONFIG = f"""
taker_fee_rate = "0.001"
[balances]
USDT = "100000"
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
level_spacing_ticks = 100
maker_size_lots = 100000
[[symbols]]
symbol = "{PERP}"
start_price = "65000"
tick_size = "0.1"
lot_size = "0.001"
maker_size_lots = 5000
"""

# The account at the end of the recorded rows: each item's last row.
LATEST = """
SELECT DISTINCT ON (item, name) item, name, free, locked, total, size, entry_price, realized_pnl
FROM account_states WHERE venue = 'sim' ORDER BY item, name, as_of_ns DESC
"""


async def _latest(url: str) -> dict[tuple[str, str], Any] | None:
    connection = await asyncpg.connect(url)
    try:
        return {(r["item"], r["name"]): r for r in await connection.fetch(LATEST)}
    except asyncpg.UndefinedTableError:
        return None  # the recorder has not migrated yet
    finally:
        await connection.close()


async def test_ingest_publishes_the_account_and_the_recorder_keeps_what_it_was(
    fresh_venue: VenueFactory, redis_url: str, fresh_database: str, tmp_path: Path
) -> None:
    venue = fresh_venue(SIM_CONFIG, "account")
    stubs = venue.stubs()
    async with redis_db(redis_url) as bus_url:
        client = aioredis.Redis.from_url(bus_url)
        logs = [(tmp_path / name).open("w") for name in ("ingest.log", "recorder.log")]
        ingest = start_service(
            ["ingest", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={venue.address}",
             "--no-executions", "--funding-every-s", "0", "--instruments-every-s", "0"],
            env={TOKEN: TEST_TOKEN, REDIS_URL: bus_url}, stderr=logs[0],
        )  # fmt: skip
        recorder = start_service(
            ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus_url,
             "--database-url", fresh_database, "--stream-pattern", "account.*"],
            stderr=logs[1], timeout_s=60,
        )  # fmt: skip
        try:

            async def entries(count: int) -> list[bus.AccountSnapshot] | None:
                found: Any = await client.xrange("account.{sim}")
                snapshots = [decode(fields).account for _, fields in found]
                return snapshots if len(snapshots) >= count else None

            [first] = await until(lambda: entries(1), 30, what="the account's snapshot on the bus")
            assert first.snapshot and first.venue == "sim" and first.as_of_ns > 0
            assert {b.asset: D(b.total) for b in first.balances} == {"BTC": D(0), "USDT": D(100000)}
            assert list(first.positions) == []

            for symbol, side, size in (
                ("BTC/USDT", common.SIDE_BUY, "0.01"),
                (PERP, common.SIDE_SELL, "0.5"),
            ):
                placed = await stubs.tf.PlaceOrder(
                    tf.PlaceOrderRequest(symbol=symbol, side=side, type=tf.ORDER_TYPE_MARKET, size=size),
                    timeout=CALL_TIMEOUT_S,
                )
                assert placed.order.status == tf.ORDER_STATUS_FILLED

            async def changed() -> list[bus.AccountSnapshot] | None:
                found = await entries(2) or []
                return found if any(p.symbol == PERP for e in found for p in e.positions) else None

            published = await until(changed, 30, what="the account's changes on the bus")
            assert not any(e.snapshot for e in published[1:]), "one stream: one snapshot, then changes"

            # What the recorder holds last is what the venue says now, exactly.
            balances = {b.asset: b for b in (await stubs.tf.GetBalances(tf.GetBalancesRequest())).balances}
            [position] = (await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=PERP))).positions
            assert D(position.size) == D("-0.5")

            async def recorded() -> dict[tuple[str, str], Any] | None:
                latest = await _latest(fresh_database)
                if latest is None or ("position", PERP) not in latest:
                    return None
                same = all(
                    latest.get(("balance", asset)) is not None
                    and latest[("balance", asset)]["total"] == D(b.total)
                    for asset, b in balances.items()
                )
                return latest if same else None

            latest = await until(
                recorded, 30, interval_s=0.2, what="the account recorded as the venue has it"
            )
            for asset, b in balances.items():
                row = latest[("balance", asset)]
                assert (row["free"], row["locked"], row["total"]) == (D(b.free), D(b.locked), D(b.total))
                assert row["size"] is None
            row = latest[("position", PERP)]
            assert (row["size"], row["entry_price"], row["realized_pnl"]) == (
                D(position.size), D(position.entry_price), D(position.realized_pnl),
            )  # fmt: skip
            assert row["free"] is None
            assert D(balances["BTC"].total) > 0 and D(balances["USDT"].total) < D(100000)
        finally:
            await stubs.close()
            await asyncio.to_thread(ingest.terminate)
            await asyncio.to_thread(recorder.terminate)
            for log in logs:
                log.close()
            await client.aclose()
