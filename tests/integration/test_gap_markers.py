"""gap_markers against a real PostgreSQL: GAP notices recorded by the recorder (its own write
path, as it records the market streams) read through the tool (open, then repaired once the
recorder holds a repaired bar), through the advisor's context (the quality gate's open gaps),
and through the gateway's MCP server (listed read-only, called with a real API key)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.advisor_support import signal
from tests.integration.postgres_server import database_url, recorder_database
from tests.integration.support import TEST_TOKEN, Venue
from tests.integration.test_gateway_mcp import connected, create_key, serving
from tests.integration.test_recorder_store import bars_data, entries, market
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.advisor.engine.config import QualityConfig
from trademesh.core.advisor.engine.quality import assess_quality
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.advisor.gather import ContextGatherer
from trademesh.core.advisor.gather_config import GatherConfig
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool
from trademesh.core.tools.bars import BarStore
from trademesh.core.tools.gaps import GapStore
from trademesh.core.tools.market import MarketTools
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.core.tools.signals import SignalStore
from trademesh.core.tools.upstream import Upstream
from trademesh.gateway.auth.authenticator import GatewayAuth
from trademesh.gateway.mcp import GatewayMcp
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration
__all__ = ["database_url", "recorder_database"]  # the fixtures, for pytest

S = 1_000_000_000
MINUTE = 60 * S
NOW = time.time_ns()
NOTICE_NS = NOW - 5 * S  # the notice's time: trades since SINCE_NS may be missing
SINCE_NS = NOW - 95 * S


def notice(symbol: str, channel: md.Channel.ValueType, at: int, since: int, reason: str) -> md.MarketEvent:
    event = md.MarketEvent(venue="sim", symbol=symbol, ts_event_ns=at, ts_recv_ns=at + 1000)
    gap = md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=channel, reason=reason, since_ns=since)
    event.notice.CopyFrom(gap)
    return event


def repaired_bar(open_time_ns: int) -> bus.Bar:
    return bus.Bar(
        venue="sim", symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_MINUTE, open_time_ns=open_time_ns,
        open="100", high="101", low="99", close="100.5", volume="2", quote_volume="201", trade_count=3,
        vwap="100.5", repaired=True,
    )  # fmt: skip


@pytest.fixture
async def recorder(recorder_database: str) -> AsyncIterator[Recorder]:
    pool = await open_pool(recorder_database)
    try:
        options = RecorderConfig(database_url=recorder_database, redis_url="redis://unused", retention_days=3)
        yield Recorder(pool, await prepare(pool, options), options)
    finally:
        await pool.close()


@pytest.fixture
async def tools(
    recorder: Recorder, recorder_database: str, venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MarketTools]:
    """The tools as the advisor makes them, with the shared sim venue live (the gap tool needs
    none; the advisor's context gathers only for a venue the mesh serves)."""
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    db = RecorderDatabase(recorder_database, 5.0)
    upstream = Upstream(MeshResolver(None, [Instance("sim", venue.address, VENUE_SERVICES)]), 5.0)
    try:
        yield MarketTools(upstream, BarStore(db), SignalStore(db), GapStore(db))
    finally:
        await upstream.close()
        await db.close()


async def record_gaps(recorder: Recorder) -> None:
    """The stream-lost gap of BTC/USDT's trades, an older one, and notices that are not its bars'."""
    events = [
        notice("BTC/USDT", md.CHANNEL_TRADES, NOTICE_NS, SINCE_NS, "stream lost"),
        notice("BTC/USDT", md.CHANNEL_TRADES, NOW - 2 * 3600 * S, 0, "stale"),  # long before the window
        notice("BTC/USDT", md.CHANNEL_BOOK, NOTICE_NS, SINCE_NS, "book gap"),  # not the trades'
        notice("ETH/USDT", md.CHANNEL_TRADES, NOTICE_NS, SINCE_NS, "other symbol"),
    ]
    await recorder.handle("md.sim", entries(market(*events)))


async def test_a_recorded_gap_is_open_until_a_repaired_bar_covers_it(
    recorder: Recorder, tools: MarketTools
) -> None:
    await record_gaps(recorder)
    got = await tools.gap_markers("sim", "BTC/USDT", "1m", since_ns=NOW - 10 * MINUTE)
    [gap] = got["gaps"]
    assert (got["open"], gap["open"], gap["reason"]) == (1, True, "stream lost")
    assert (gap["start_ns"], gap["end_ns"], gap["since_ns"]) == (SINCE_NS, NOTICE_NS, SINCE_NS)
    first, last = SINCE_NS - SINCE_NS % MINUTE, NOTICE_NS - NOTICE_NS % MINUTE
    assert gap["bars"] == (last - first) // MINUTE + 1
    every = await tools.gap_markers("sim", "BTC/USDT", "1m", limit=10)
    assert [g["reason"] for g in every["gaps"]] == ["stream lost", "stale"]  # newest first

    await recorder.handle("bars.sim", entries(bars_data([repaired_bar(first)])))
    assert (await tools.gap_markers("sim", "BTC/USDT", "1m"))["open"] == 2  # its start: not the repair
    await recorder.handle("bars.sim", entries(bars_data([repaired_bar(last)])))
    after = await tools.gap_markers("sim", "BTC/USDT", "1m", since_ns=NOW - 10 * MINUTE)
    assert (after["open"], after["gaps"][0]["open"]) == (0, False)
    assert (await tools.gap_markers("sim", "BTC/USDT", "1s", since_ns=NOW - 10 * MINUTE))["open"] == 1


async def test_the_advisors_context_counts_the_open_gap_and_the_gate_blocks_on_it(
    recorder: Recorder, tools: MarketTools
) -> None:
    await record_gaps(recorder)
    gatherer = ContextGatherer(tools, GatherConfig(timeframe="1m", bars=60), clock=lambda: NOW)
    later = ContextGatherer(tools, GatherConfig(timeframe="1m", bars=60), clock=lambda: NOW)
    try:
        context = await gatherer.gather("sim", "BTC/USDT")
        [gap] = context.gaps
        assert (gap.repaired, gap.start_ns, gap.end_ns) == (False, SINCE_NS, NOTICE_NS)
        gate = assess_quality(snapshot(signal(), context, NOW), QualityConfig())
        assert not gate.passed and any(reason.startswith("1 open gap(s)") for reason in gate.reasons)

        last = NOTICE_NS - NOTICE_NS % MINUTE
        await recorder.handle("bars.sim", entries(bars_data([repaired_bar(last)])))
        fresh = await later.gather("sim", "BTC/USDT")
        assert [(g.repaired, g.start_ns, g.bars) for g in fresh.gaps] == [(True, last, 1)]  # its repaired bar
    finally:  # their book subscriptions end with the test (the session's loop outlives it)
        await gatherer.tops.close()
        await later.tops.close()


async def test_the_gateways_mcp_server_lists_gap_markers_read_only_and_serves_it(
    recorder: Recorder, recorder_database: str
) -> None:
    await record_gaps(recorder)
    key = await create_key(recorder_database, "gap-agent")
    auth = await GatewayAuth.open(recorder_database, b"gap-test-session-secret-0123456789")
    try:
        async with (
            serving(GatewayMcp(MeshResolver(None), auth, recorder_database)) as url,
            connected(url, key) as client,
        ):
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            arguments = {"venue": "sim", "symbol": "BTC/USDT", "since_ns": NOW - 10 * MINUTE}
            result = await client.call_tool("gap_markers", arguments)
            refused = await client.call_tool("gap_markers", {"venue": "sim", "symbol": "BTCUSDT"})
    finally:
        await auth.close()
    tool = listed["gap_markers"]
    assert tool.annotations is not None and tool.annotations.read_only_hint
    assert tool.input_schema["properties"]["timeframe"]["enum"][:2] == ["1s", "1m"]
    assert not result.is_error
    found: dict[str, Any] | None = result.structured_content
    assert found is not None and found["open"] == 1 and found["gaps"][0]["reason"] == "stream lost"
    assert refused.is_error and "canonical symbol" in getattr(refused.content[0], "text", "")
