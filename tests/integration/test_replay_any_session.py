"""Bybit spot replays sessions recorded by other tools: nothing refused, nothing lost silently.

The sessions (fixtures/exchange-captures/other-recorders, written by
generate_other_recorders.py from Bybit's v5 docs) differ from the project's own the way
real sessions from other recorders do: no REST answers (BYBIT_WS); a spot and a linear
connection with the same topic names, kline pushes whose JSON begins with "type", a book
at depth 200 where ccxt subscribes 50 (BYBIT_MIXED); a missed book message that makes the
client resync mid-session (BYBIT_GAP). Expected values are read from the files' own text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.other_sessions import Received, received, session_files, summary_of
from tests.integration.replay import collect, instruments, start_replay_venue
from tests.integration.support import Venue, stop_venue
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

D = Decimal
SPOT = "/v5/public/spot"
_IN_FLIGHT = 2  # frames a closing client may discard that the stand-in had already written


class Expected:
    """What a session's spot frames say about one symbol."""

    def __init__(self, frames: list[Received], native: str) -> None:
        self.trades: list[tuple[Any, ...]] = []
        self.candles: list[tuple[Any, ...]] = []
        self.bids: dict[D, D] = {}
        self.asks: dict[D, D] = {}
        self._candles: dict[int, tuple[Any, ...]] = {}
        self._sent: dict[int, tuple[Any, ...]] = {}
        for frame in frames:
            try:
                message = frame.json()
            except ValueError:  # a frame the recorder cut short
                continue
            if (
                frame.url
                and frame.url.endswith(SPOT)
                and str(message.get("topic", "")).endswith(f".{native}")
            ):
                self.read(str(message["topic"]), message)

    def read(self, topic: str, message: dict[str, Any]) -> None:
        data = message["data"]
        if topic.startswith("publicTrade."):
            for t in data:
                side = common.SIDE_BUY if t["S"] == "Buy" else common.SIDE_SELL
                self.trades.append((t["i"], D(t["p"]), D(t["v"]), side, t["T"]))
        elif topic.startswith("kline."):
            for k in data:
                self.kline(
                    (k["start"], D(k["open"]), D(k["high"]), D(k["low"]), D(k["close"]), D(k["volume"]))
                )
        elif topic.startswith("orderbook."):
            if message["type"] == "snapshot":
                self.bids, self.asks = {}, {}
            for book, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
                for price, size in levels:
                    if D(size) == 0:
                        book.pop(D(price), None)
                    else:
                        book[D(price)] = D(size)

    def kline(self, values: tuple[Any, ...]) -> None:
        """A candle comes out when its values change, and once more, closed, when a newer one opens."""
        self._candles[values[0]] = values
        latest = max(self._candles)
        for start in sorted(self._candles):
            out = (*self._candles[start], start < latest)
            if self._sent.get(start) != out:
                self._sent[start] = out
                self.candles.append(out)


def linear_market_frames(frames: list[Received]) -> int:
    return sum(1 for f in frames if f.url and f.url.endswith("/linear") and "topic" in f.json())


@pytest.fixture
async def bybit(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    """A bybit venue replaying the session the test names (parametrized indirectly)."""
    venue, log = start_replay_venue(tmp_path, "bybit", session_files(request.param))
    try:
        yield venue
    finally:
        await stop_venue(venue, log)


@pytest.mark.parametrize("bybit", ["BYBIT_WS"], indirect=True)
async def test_a_session_without_rest_answers_serves_the_markets_its_frames_stream(bybit: Venue) -> None:
    stubs = bybit.stubs()
    assert await instruments(stubs) == {"BTCUSDT": "BTC/USDT", "ETHUSDT": "ETH/USDT"}
    listed = {i.symbol: i for i in (await stubs.md.ListInstruments(md.ListInstrumentsRequest())).instruments}
    # Tick and lot: one unit of the last decimal place the frames write.
    assert (D(listed["BTC/USDT"].tick_size), D(listed["BTC/USDT"].lot_size)) == (D("0.01"), D("0.000001"))
    assert (D(listed["ETH/USDT"].tick_size), D(listed["ETH/USDT"].lot_size)) == (D("0.01"), D("0.00001"))
    collected = await collect(stubs, ["BTC/USDT", "ETH/USDT"], played=bybit.log_path)
    frames = received(session_files("BYBIT_WS"))
    for native, symbol in (("BTCUSDT", "BTC/USDT"), ("ETHUSDT", "ETH/USDT")):
        expected = Expected(frames, native)
        assert len(expected.trades) > 10
        assert collected.trades(symbol) == expected.trades
        assert collected.book(symbol) == (expected.bids, expected.asks)
        assert collected.candles(symbol, closed=True) == expected.candles
    summary = await summary_of(bybit)
    assert summary.synthesized == "bybit instruments-info (spot)"
    assert "synthesized bybit instruments-info (spot)" in bybit.log()
    assert summary.dropped == 0 and summary.refused == "none"
    assert summary.served + summary.control == summary.total == len(frames)


@pytest.mark.parametrize("bybit", ["BYBIT_MIXED"], indirect=True)
async def test_linear_frames_with_the_same_topics_do_not_reach_the_spot_venue(bybit: Venue) -> None:
    stubs = bybit.stubs()
    assert await instruments(stubs) == {"BTCUSDT": "BTC/USDT"}
    collected = await collect(stubs, ["BTC/USDT"], channels=[md.CHANNEL_TRADES], played=bybit.log_path)
    frames = received(session_files("BYBIT_MIXED"))
    expected = Expected(frames, "BTCUSDT")
    assert collected.trades("BTC/USDT") == expected.trades  # spot trades only, none of linear's
    summary = await summary_of(bybit)
    assert summary.reasons["other-market"] == linear_market_frames(frames) > 50


@pytest.mark.parametrize("bybit", ["BYBIT_MIXED"], indirect=True)
async def test_kline_frames_in_another_key_order_are_served(bybit: Venue) -> None:
    stubs = bybit.stubs()
    await instruments(stubs)
    collected = await collect(stubs, ["BTC/USDT"], channels=[md.CHANNEL_CANDLES], played=bybit.log_path)
    expected = Expected(received(session_files("BYBIT_MIXED")), "BTCUSDT")
    assert [c for c in expected.candles if c[-1]], "the session crosses a minute: a candle closes"
    assert collected.candles("BTC/USDT", closed=True) == expected.candles
    summary = await summary_of(bybit)
    assert "unrecognized" not in summary.reasons, "no kline frame is left unrecognized"


@pytest.mark.parametrize("bybit", ["BYBIT_MIXED"], indirect=True)
async def test_a_book_recorded_at_another_depth_feeds_the_book(bybit: Venue) -> None:
    stubs = bybit.stubs()
    await instruments(stubs)
    collected = await collect(stubs, ["BTC/USDT"], channels=[md.CHANNEL_BOOK], played=bybit.log_path)
    expected = Expected(received(session_files("BYBIT_MIXED")), "BTCUSDT")
    assert collected.of("BTC/USDT", "book_snapshot")[-1].book_snapshot.bids, (
        "the depth-200 book is served to ccxt's depth-50 subscription"
    )
    assert len(collected.of("BTC/USDT", "book_delta")) > 30
    assert collected.book("BTC/USDT") == (expected.bids, expected.asks)
    assert "orderbook.200.BTCUSDT is served to the subscription of orderbook.50.BTCUSDT" in bybit.log()


@pytest.mark.parametrize("bybit", ["BYBIT_GAP"], indirect=True)
async def test_playback_waits_while_the_client_reconnects_after_a_gap(bybit: Venue) -> None:
    stubs = bybit.stubs()
    await instruments(stubs)
    collected = await collect(
        stubs, ["BTC/USDT"], channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK], quiet_s=4.0, played=bybit.log_path
    )
    expected = Expected(received(session_files("BYBIT_GAP")), "BTCUSDT")
    assert "book sequence broken" in bybit.log(), "the session's missed message makes the client resync"
    trades = collected.trades("BTC/USDT")
    assert trades[-10:] == expected.trades[-10:], "the rest of the session reaches the client"
    assert collected.book("BTC/USDT") == (expected.bids, expected.asks)
    summary = await summary_of(bybit)
    assert summary.reconnects == 1
    # Nothing was played to nobody while the client was away; what its closing connection missed is counted.
    assert "unsubscribed" not in summary.reasons
    # At most what the stand-in counts as closed, plus the few frames it wrote in the moment
    # before the client's close reached it (the client discards those, as with a real exchange).
    in_flight = summary.reasons.get("closed", 0) + _IN_FLIGHT
    assert len(trades) >= len(expected.trades) - in_flight and set(trades) <= set(expected.trades)


@pytest.mark.parametrize("bybit", ["BYBIT_ODD"], indirect=True)
async def test_frames_it_cannot_use_are_counted_by_reason_and_the_rest_is_served(bybit: Venue) -> None:
    stubs = bybit.stubs()
    await instruments(stubs)
    collected = await collect(stubs, ["BTC/USDT"], played=bybit.log_path)
    frames = received(session_files("BYBIT_ODD"))
    assert collected.trades("BTC/USDT") == Expected(frames, "BTCUSDT").trades
    summary = await summary_of(bybit)
    # A message of no known shape and a frame cut short: counted by reason, logged with their text.
    assert summary.reasons == {"unrecognized": 1, "unreadable": 1}
    assert summary.control == 1, "the subscribe ack: the stand-in answers subscriptions itself"
    assert summary.served + summary.control + summary.dropped == summary.total == len(frames)
    log = bybit.log()
    assert 'dropped a captured frame (unrecognized): {"type":"notice"' in log
    assert "dropped a captured frame (unreadable): JSONDecodeError" in log


@pytest.mark.parametrize("bybit", ["BYBIT_MIXED"], indirect=True)
async def test_every_captured_frame_of_a_mixed_session_is_accounted_for(bybit: Venue) -> None:
    stubs = bybit.stubs()
    await instruments(stubs)
    await collect(stubs, ["BTC/USDT"], played=bybit.log_path)
    frames = received(session_files("BYBIT_MIXED"))
    summary = await summary_of(bybit)
    assert summary.reasons == {"other-market": linear_market_frames(frames)}
    assert summary.control == 2, "the two subscribe acks"
    assert summary.served + summary.control + summary.dropped == summary.total == len(frames)
