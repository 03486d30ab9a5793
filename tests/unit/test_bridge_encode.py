"""The bridge frames each event once; a subscriber's message is a byte join of frames."""

from __future__ import annotations

import pytest

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bridge.encode import bar_chunk, event_chunk
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md


@pytest.mark.parametrize("padding", [0, 100, 120, 130, 16_360, 16_400, 2_100_000])
def test_a_frame_is_exactly_what_protobuf_writes_for_a_one_event_response(padding: int) -> None:
    event = md.MarketEvent(venue="sim", symbol="BTC/USDT", trade=md.Trade(trade_id="x" * padding))
    assert event_chunk(event) == lv.SubscribeResponse(events=[event]).SerializeToString()


def test_joined_frames_are_one_response_with_events_and_bars_in_order() -> None:
    events = [md.MarketEvent(symbol=f"S{i}/USDT", trade=md.Trade(trade_id=str(i))) for i in range(3)]
    bars = [bus.Bar(venue="sim", symbol="BTC/USDT", open_time_ns=i) for i in range(2)]
    joined = b"".join(
        [event_chunk(events[0]), bar_chunk(bars[0]), *map(event_chunk, events[1:]), bar_chunk(bars[1])]
    )
    response = lv.SubscribeResponse.FromString(joined)
    assert list(response.events) == events and list(response.bars) == bars
