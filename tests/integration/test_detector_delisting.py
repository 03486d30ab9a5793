"""A delisting reaching a real detector process (docs/bus.md, "Instruments"): a patch that signals
on every trade of the sim's BTC/USDT; once the venue's instrument stream says BTC/USDT is delisted
(written by the relay ingest writes it with), its signals are withheld (counted, none on
`signals`), and once listed again they are emitted again."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.gateway_support import Processes
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, metric_samples, metrics_page, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.instruments import InstrumentRelay
from trademesh.core.platform.bus.names import SIGNALS
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
__all__ = ["database_url", "redis_url"]  # fixtures

WAIT_S = 60.0
# A signal at every BTC/USDT trade: the score is the trade's size (a graded rule), fresh each trade.
ALWAYS = """
id = "always"
venues = ["sim"]
symbols = ["BTC/USDT"]
threshold = 0.0000001
cables = [
    "trades.trade -> fields.trade",
    "fields.size -> score.level_1",
    "score.signal -> emit.signal",
]

[[modules]]
id = "trades"
type = "trades"

[[modules]]
id = "fields"
type = "trade_fields"

[[modules]]
id = "score"
type = "weighted_score"
params = { direction = "long", name_1 = "size" }

[[modules]]
id = "emit"
type = "signal"
params = { on = "every" }
"""


def _listed(*symbols: str) -> list[common.Instrument]:
    return [common.Instrument(venue="sim", symbol=s, tick_size="0.01", lot_size="0.00001") for s in symbols]


async def test_a_delisted_markets_signals_are_withheld_until_it_is_listed_again(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with new_database(database_url, "delisting") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        client: Any = aioredis.Redis.from_url(bus)
        detector = None
        try:
            sim = processes.sim(None)
            strategy = tmp_path / "always.toml"
            strategy.write_text(textwrap.dedent(ALWAYS))
            with (tmp_path / "detector.log").open("w") as log:
                detector = start_service(
                    ["detector", "--port", "0", "--metrics-port", "0", "--venue", f"sim={sim.address}",
                     "--database-url", database, "--strategy", str(strategy)],
                    env={TOKEN: TEST_TOKEN, REDIS_URL: bus}, stderr=log,
                )  # fmt: skip
            port = detector.info["metrics_port"]

            async def signals(more_than: int) -> int | None:
                count: int = await client.xlen(SIGNALS)
                return count if count > more_than else None

            async def withheld(more_than: float) -> float | None:
                samples = metric_samples(await metrics_page(port), "trademesh_detector_withheld_total")
                value = sum(samples.values())
                return value if value > more_than else None

            await until(lambda: signals(0), WAIT_S, 0.2, "the patch's signals")

            async def publish(stream: str, envelope: bytes) -> None:
                await client.xadd(stream, {b"d": envelope})

            listing = ["BTC/USDT", "ETH/USDT"]

            async def list_all() -> list[common.Instrument]:
                return _listed(*listing)

            relay = InstrumentRelay("sim", publish, "ingest/test", 1)
            await relay.poll_with(list_all)
            listing.remove("BTC/USDT")
            await relay.poll_with(list_all)

            said: Callable[[], Any] = lambda: _said(tmp_path / "detector.log", "BTC/USDT delisted at sim")  # noqa: E731
            await until(said, WAIT_S, 0.2, "the detector hearing the delisting")
            first = await until(lambda: withheld(0), WAIT_S, 0.2, "signals withheld")
            # Every evaluation after the one first withheld is after the delisting: what it
            # published before is on the stream by now (the publisher writes in order).
            second = await until(lambda: withheld(first), WAIT_S, 0.2, "more signals withheld")
            count = await client.xlen(SIGNALS)
            await until(lambda: withheld(second + 5), WAIT_S, 0.2, "five more withheld")
            assert await client.xlen(SIGNALS) == count, "a signal of a delisted market was emitted"

            listing.append("BTC/USDT")
            await relay.poll_with(list_all)
            await until(lambda: signals(count), WAIT_S, 0.2, "signals again once listed again")
        finally:
            if detector is not None:
                await asyncio.to_thread(detector.terminate)
            await processes.stop_all()
            await client.aclose()


async def _said(log: Path, text: str) -> bool | None:
    return True if text in await asyncio.to_thread(log.read_text) else None
