"""The advisor decides a market's first signal on its venue's history when the recorder holds
no bar of it yet (trademesh.core.advisor.venue_bars): a mesh just up has detectors warmed from
the venue's candles at once, while the bars service backfills a market only after its first
trade, so a signal could reach the advisor before any bar did and be blocked ("no stop: 0
bar(s), ATR(14) needs 15"). Real processes: a gateway, a sim opening with a minute of candles, an
advisor on an empty recorder database (no bars service: the recorder never holds a bar here); a
signal decided through the advisor's API is decided on the venue's candles, its stop sized from
their ATR."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from tests.integration.gateway_support import Processes, run_at_once
from tests.integration.mesh import ADVISOR_TEST_CONFIG, WARM_HISTORY_S, redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as av
from trademesh.advisor.v1 import service_pb2_grpc as av_grpc
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.advisor.engine.config import ValidationConfig
from trademesh.core.advisor.engine.validation import average_true_range
from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.integration]
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SYMBOL = "BTC/USDT"
SECOND = Timeframe.from_label("1s")
NO_PRICE = "no price: neither a last trade nor an uncrossed book"


async def _count(database: str, query: str) -> int:
    connection = await asyncpg.connect(database)
    try:
        found: int = await connection.fetchval(query)
        return found
    finally:
        await connection.close()


def _output(decision: am.Decision, stage: int) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(next(s for s in decision.stages if s.stage == stage).output_json)
    return found


def _candle(c: md.Candle) -> Candle:
    return Candle(
        SECOND, c.open_time_ns, Decimal(c.open), Decimal(c.high), Decimal(c.low), Decimal(c.close),
        Decimal(c.volume or "0"), Decimal(c.quote_volume or "0"), c.trade_count, True,
    )  # fmt: skip


async def test_a_signal_before_any_recorded_bar_is_decided_on_the_venues_history(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    config = tmp_path / "advisor.toml"
    config.write_text(ADVISOR_TEST_CONFIG)
    async with new_database(database_url, "warmbars") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            sim = processes.sim(gateway, f"history_s = {WARM_HISTORY_S}\n")
            venue, stores = ("--venue", f"sim={sim.address}"), ("--database-url", database)

            def service(name: str, *args: str) -> Callable[[], ServiceProcess]:
                return lambda: processes.mesh_service(gateway, name, *args, redis_url=bus)

            # The recorder (its tables) and the book's path (ingest, bridge); no bars service.
            *_, advisor = run_at_once(
                service("ingest", *venue), service("bridge"), service("recorder", *stores),
                service(
                    "advisor", *venue, *stores, "--config", str(config), "--timeframe", "1s",
                    "--model-dir", str(tmp_path / "models"),
                ),
            )  # fmt: skip

            async with grpc.aio.insecure_channel(advisor.address) as channel:
                stub = av_grpc.AdvisorStub(channel)

                async def decided() -> am.Decision | None:
                    """A decision past the context's book (the bridge's first book comes soon)."""
                    signal = sig.Signal(
                        venue="sim", symbol=SYMBOL, direction=sig.DIRECTION_LONG, conviction="0.8",
                        ts_signal_ns=time.time_ns(),
                    )  # fmt: skip
                    answer = await stub.Decide(av.DecideRequest(signal=signal), metadata=AUTH, timeout=30)
                    found = answer.decision
                    return None if found.block_reason in ("no order book", NO_PRICE) else found

                decision = await until(decided, 60, 0.5, "a decision with the sim's book")
            async with grpc.aio.insecure_channel(sim.address) as channel:
                request = md.GetCandlesRequest(
                    symbol=SYMBOL,
                    timeframe=common.TIMEFRAME_1_SECOND,
                    start_ns=time.time_ns() - 180 * SECOND.ns,
                )
                held = await md_grpc.MarketDataStub(channel).GetCandles(
                    request, metadata=AUTH, timeout=CALL_TIMEOUT_S
                )
            recorded = await _count(database, "SELECT count(*) FROM bars")
        finally:
            await processes.stop_all()
    context = _output(decision, am.STAGE_CONTEXT)
    validation = _output(decision, am.STAGE_VALIDATION)
    atr_bars = ValidationConfig().atr_bars
    assert recorded == 0  # the recorder holds no bar: those decided on are the venue's
    assert context["bars"] > atr_bars, context
    assert not any(r.startswith("no stop") for r in decision.block_reason.split("; ")), decision.block_reason
    plan = validation["plan"]
    assert plan is not None and Decimal(plan["stop"]) < Decimal(plan["entry"]), validation
    # The context's bars are the venue's candles, and the stop's ATR is theirs.
    last = int(context["last_bar"]["open_time_ns"])
    candles = [_candle(c) for c in held.candles if c.open_time_ns <= last]
    assert candles and candles[-1].open_time_ns == last
    assert Decimal(context["last_bar"]["close"]) == candles[-1].close
    assert Decimal(plan["atr"]) == average_true_range(candles, atr_bars)
