"""The venue's Prometheus exporter, read over HTTP as Prometheus would."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.integration.support import CALL_TIMEOUT_S, Stubs, Venue, limit_order, metric_samples, scrape, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration

PLACE_ORDER = 'grpc_method="PlaceOrder",grpc_service="trademesh.tradeflow.v1.TradeFlow",grpc_type="unary"'
SUBSCRIBE = (
    'grpc_method="Subscribe",grpc_service="trademesh.marketdata.v1.MarketData",grpc_type="server_stream"'
)


async def test_handled_total_counts_each_invalid_argument_by_its_code(venue: Venue, stubs: Stubs) -> None:
    key = '{grpc_code="INVALID_ARGUMENT",' + PLACE_ORDER + "}"
    before = metric_samples(await scrape(venue), "grpc_server_handled_total").get(key, 0.0)
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await stubs.tf.PlaceOrder(
                limit_order("BTC/USDT", common.SIDE_BUY, "-1", "100"), timeout=CALL_TIMEOUT_S
            )
    after = metric_samples(await scrape(venue), "grpc_server_handled_total")
    assert after[key] == before + 3
    assert all("UNKNOWN" not in k and "INTERNAL" not in k for k in after), (
        "some call ended UNKNOWN or INTERNAL"
    )


async def test_unauthenticated_calls_are_counted(venue: Venue) -> None:
    key = '{grpc_code="UNAUTHENTICATED",' + PLACE_ORDER + "}"
    before = metric_samples(await scrape(venue), "grpc_server_handled_total").get(key, 0.0)
    with pytest.raises(grpc.aio.AioRpcError):
        await venue.stubs(token=None).tf.PlaceOrder(limit_order("BTC/USDT", common.SIDE_BUY, "1", "100"))
    assert metric_samples(await scrape(venue), "grpc_server_handled_total")[key] == before + 1


async def test_handling_seconds_and_streamed_messages_are_exported(venue: Venue, stubs: Stubs) -> None:
    # A PlaceOrder of its own (refused): the venue is the session's, and this test may be the
    # first of its worker to call it.
    with pytest.raises(grpc.aio.AioRpcError):
        await stubs.tf.PlaceOrder(
            limit_order("BTC/USDT", common.SIDE_BUY, "-1", "100"), timeout=CALL_TIMEOUT_S
        )
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK]))
    for _ in range(5):
        await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    call.cancel()

    async def counted() -> str | None:
        # The server counts a message once its send is done, which can be after the client has
        # read it: the fifth may be counted a moment after the fifth read.
        text = await scrape(venue)
        sent = metric_samples(text, "grpc_server_msg_sent_total")
        return text if sent.get("{" + SUBSCRIBE + "}", 0) >= 5 else None

    text = await until(counted, CALL_TIMEOUT_S, what="the 5 messages read to be counted as sent")
    count = metric_samples(text, "grpc_server_handling_seconds_count")
    assert count["{" + PLACE_ORDER + "}"] >= 1
    buckets = metric_samples(text, "grpc_server_handling_seconds_bucket")
    assert (
        buckets[
            '{grpc_method="PlaceOrder",grpc_service="trademesh.tradeflow.v1.TradeFlow",grpc_type="unary",le="+Inf"}'
        ]
        == count["{" + PLACE_ORDER + "}"]
    )


async def test_venue_event_counters_grow_by_channel(venue: Venue) -> None:
    def events(text: str) -> dict[str, float]:
        return metric_samples(text, "trademesh_venue_events_total")

    keys = [f'{{channel="{channel}",venue="sim"}}' for channel in ("trades", "book", "candles", "tickers")]

    async def counted() -> dict[str, float] | None:
        now = events(await scrape(venue))
        return now if all(now.get(k, 0) > 0 for k in keys) else None

    # The exporter is refreshed once a second, so a venue just started may show nothing yet.
    first = await until(counted, 5.0, interval_s=0.25, what="every channel's events counted")

    async def grown() -> dict[str, float] | None:
        now = events(await scrape(venue))
        return now if all(now[k] > v for k, v in first.items()) else None

    await until(grown, 5.0, interval_s=0.25, what="every channel's event counter to grow")
    text = await scrape(venue)
    assert metric_samples(text, "trademesh_venue_events_per_second")['{channel="book",venue="sim"}'] > 0
    assert '{feed="market_data",venue="sim"}' in metric_samples(text, "trademesh_venue_subscribers")
    # The streams by the state Admin shows, and the series alerts take increase() of, at 0 already.
    streams = metric_samples(text, "trademesh_venue_streams")
    assert streams['{channel="book",state="connected",venue="sim"}'] > 0
    assert streams['{channel="book",state="failed",venue="sim"}'] == 0
    for name in ("stream_reconnects", "stream_resyncs", "stream_checksum_mismatches"):
        assert '{channel="book",venue="sim"}' in metric_samples(text, f"trademesh_venue_{name}_total")
    assert '{venue="sim"}' in metric_samples(text, "trademesh_venue_dead_man_trips_total")
