"""Bybit spot against its session (written from the v5 docs): every message normalized, faults survived.

Expected values are computed here from the capture's own text with Decimal
(independently of the venue's replay adapter) and compared with what a gRPC
subscriber receives.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.replay import (
    SharedReplay,
    capture_files,
    collect,
    instruments,
    replay_venue_fixture,
    resync_done,
    shared_replay_fixture,
)
from tests.integration.support import Venue, stream_status
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = capture_files("BYBIT")
D = Decimal
SYMBOL = "BTC/USDT"


class Expected:
    """What the capture says about BTCUSDT."""

    def __init__(self, files: list[Path]) -> None:
        self.trades: list[tuple[Any, ...]] = []
        self.tickers: list[D] = []
        self.candles: list[tuple[Any, ...]] = []
        self._candle_state: dict[int, tuple[Any, ...]] = {}
        self._candle_sent: dict[int, tuple[Any, ...]] = {}
        self.bids: dict[D, D] = {}
        self.asks: dict[D, D] = {}
        self.book_changes = 0
        for message in self.frames(files):
            topic, data = message["topic"], message["data"]
            if topic.startswith("publicTrade."):
                for t in data:
                    side = common.SIDE_BUY if t["S"] == "Buy" else common.SIDE_SELL
                    self.trades.append((t["i"], D(t["p"]), D(t["v"]), side, t["T"]))
            elif topic.startswith("tickers."):
                self.tickers.append(D(data["lastPrice"]))
            elif topic.startswith("kline."):
                for k in data:
                    self.kline(
                        (k["start"], D(k["open"]), D(k["high"]), D(k["low"]), D(k["close"]), D(k["volume"]))
                    )
            elif topic.startswith("orderbook."):
                if message["type"] == "snapshot":
                    self.bids, self.asks = {}, {}
                    self.apply(data)
                else:
                    self.book_changes += self.apply(data)

    @staticmethod
    def frames(files: list[Path]) -> list[dict[str, Any]]:
        frames = []
        for path in files:
            for line in path.read_text().splitlines():
                head, _, text = line.partition(": ")
                if head.replace(".", "").isdigit() and text.startswith('{"topic"'):
                    frames.append(json.loads(text))
        return frames

    def kline(self, values: tuple[Any, ...]) -> None:
        """A candle comes out whenever its values change, and once more, closed, when the next one opens.

        (ccxt ignores Bybit's `confirm`: a candle is known closed when a newer one starts.)
        """
        self._candle_state[values[0]] = values
        latest = max(self._candle_state)
        for start in sorted(self._candle_state):
            out = (*self._candle_state[start], start < latest)
            if self._candle_sent.get(start) != out:
                self._candle_sent[start] = out
                self.candles.append(out)

    def apply(self, data: dict[str, Any]) -> int:
        changed = 0
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for price, size in levels:
                p, q = D(price), D(size)
                if side.get(p, D(0)) != q:
                    changed = 1
                    if q == 0:
                        side.pop(p, None)
                    else:
                        side[p] = q
        return changed


EXPECTED = Expected(FILES)


replay_venue = replay_venue_fixture("bybit", FILES)
shared_replay = shared_replay_fixture("bybit")


async def test_every_message_comes_out_normalized(shared_replay: SharedReplay) -> None:
    stubs = shared_replay.venue.stubs()
    assert await instruments(stubs) == {"BTCUSDT": SYMBOL}
    collected = await shared_replay.collected()
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    assert collected.trades(SYMBOL) == EXPECTED.trades
    tickers = collected.of(SYMBOL, "ticker")
    assert [D(t.ticker.last_price) for t in tickers] == EXPECTED.tickers
    assert all(t.ticker.best_bid == "" for t in tickers), "Bybit spot tickers carry no best bid/ask"
    assert collected.candles(SYMBOL, closed=True) == EXPECTED.candles
    assert collected.book(SYMBOL) == (EXPECTED.bids, EXPECTED.asks)
    assert len(collected.of(SYMBOL, "book_delta")) == EXPECTED.book_changes
    # The capture itself, as a sanity check.
    assert len(EXPECTED.trades) > 30 and len(EXPECTED.tickers) > 10 and EXPECTED.book_changes > 50
    assert [c for c in EXPECTED.candles if c[-1]], "the session crosses a minute: one candle closes"


@pytest.mark.replay(faults=["malformed@10", "disconnect@70"])
async def test_faults_from_the_venue_are_survived(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    await instruments(stubs)
    collected = await collect(stubs, [SYMBOL], quiet_s=4.0, played=replay_venue.log_path)
    kinds = {(e.symbol, e.notice.kind) for e in collected.notices()}
    assert (SYMBOL, md.NOTICE_KIND_GAP) in kinds, "the disconnect is announced as a gap"
    # On resubscribing, the stand-in sends a snapshot of the current replay position (as Bybit does).
    assert collected.book(SYMBOL) == (EXPECTED.bids, EXPECTED.asks)
    status = {(s.symbol, s.channel): s for s in (await stream_status(stubs)).streams}
    book = status[(SYMBOL, md.CHANNEL_BOOK)]
    assert book.reconnects >= 1 and book.malformed_messages >= 1
    assert book.state == admin.STREAM_STATE_CONNECTED
    assert "could not be understood" in replay_venue.log()


@pytest.mark.replay(faults=["gap@40"])
async def test_a_lost_book_update_forces_a_resync(replay_venue: Venue) -> None:
    """ccxt's bybit client applies deltas without checking `u`; trademesh/venues/bybit/sequence.py does."""
    stubs = replay_venue.stubs()
    await instruments(stubs)
    collected = await collect(stubs, [SYMBOL], quiet_s=4.0, played=replay_venue.log_path, until=resync_done)
    assert collected.notices(md.NOTICE_KIND_RESYNC), "the skipped update id forces a resync"
    # The resubscription brings the venue's snapshot of the replay position: the book ends right.
    assert collected.book(SYMBOL) == (EXPECTED.bids, EXPECTED.asks)
    status = {(s.symbol, s.channel): s for s in (await stream_status(stubs)).streams}
    assert status[(SYMBOL, md.CHANNEL_BOOK)].resyncs == 1
    assert "book sequence broken" in replay_venue.log()
