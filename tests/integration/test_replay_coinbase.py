"""Coinbase Advanced Trade against its session (written from the docs): every message normalized.

Expected values are computed here from the capture's own text with Decimal
(independently of the venue's replay adapter) and compared with what a gRPC
subscriber receives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
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

FILES = capture_files("COINBASE")
D = Decimal
SYMBOL = "BTC/USD"


def ms(text: str) -> int:
    """An RFC 3339 time with up to 9 fraction digits, in whole milliseconds (truncated)."""
    seconds, _, fraction = text.rstrip("Z").partition(".")
    whole = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(whole.timestamp()) * 1000 + int((fraction + "000")[:3])


class Expected:
    """What the capture says about BTC-USD."""

    def __init__(self, files: list[Path]) -> None:
        self.trades: list[tuple[Any, ...]] = []
        self.tickers: list[tuple[D, ...]] = []
        self.candles = 0
        self.bids: dict[D, D] = {}
        self.asks: dict[D, D] = {}
        self.book_changes = 0
        for message in self.frames(files):
            channel = message["channel"]
            for event in message["events"]:
                if channel == "market_trades":
                    for t in reversed(event["trades"]):  # newest first on the wire
                        side = common.SIDE_SELL if t["side"] == "SELL" else common.SIDE_BUY
                        self.trades.append((t["trade_id"], D(t["price"]), D(t["size"]), side, ms(t["time"])))
                elif channel == "ticker":
                    for t in event["tickers"]:
                        self.tickers.append(
                            (
                                D(t["best_bid"]),
                                D(t["best_bid_quantity"]),
                                D(t["best_ask"]),
                                D(t["best_ask_quantity"]),
                                D(t["price"]),
                            )
                        )
                elif channel == "candles":
                    self.candles += len(event["candles"])
                elif channel == "l2_data":
                    if event["type"] == "snapshot":
                        self.bids, self.asks = {}, {}
                        self.apply(event["updates"])
                    else:
                        self.book_changes += self.apply(event["updates"])

    @staticmethod
    def frames(files: list[Path]) -> list[dict[str, Any]]:
        frames = []
        for path in files:
            for line in path.read_text().splitlines():
                head, _, text = line.partition(": ")
                if head.replace(".", "").isdigit() and text.startswith('{"channel"'):
                    frames.append(json.loads(text))
        return frames

    def apply(self, updates: list[dict[str, str]]) -> int:
        changed = 0
        for update in updates:
            side = self.bids if update["side"] == "bid" else self.asks
            p, q = D(update["price_level"]), D(update["new_quantity"])
            if side.get(p, D(0)) != q:
                changed = 1
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        return changed


EXPECTED = Expected(FILES)


replay_venue = replay_venue_fixture("coinbase", FILES)
shared_replay = shared_replay_fixture("coinbase")


async def test_every_message_comes_out_normalized(shared_replay: SharedReplay) -> None:
    """Public market data needs no credentials (ccxt subscribes without a JWT)."""
    stubs = shared_replay.venue.stubs()
    assert await instruments(stubs) == {"BTC-USD": SYMBOL}
    collected = await shared_replay.collected()  # trades, book and tickers: the venue's channels
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    assert collected.trades(SYMBOL) == EXPECTED.trades
    assert collected.tickers(SYMBOL, last_price=True) == EXPECTED.tickers
    assert collected.book(SYMBOL) == (EXPECTED.bids, EXPECTED.asks)
    assert len(collected.of(SYMBOL, "book_delta")) == EXPECTED.book_changes
    # ccxt.pro coinbase has no watch_ohlcv: the capture's candles channel has no consumer.
    assert not collected.of(SYMBOL, "candle") and EXPECTED.candles > 5
    assert len(EXPECTED.trades) > 30 and len(EXPECTED.tickers) > 10 and EXPECTED.book_changes > 40


@pytest.mark.replay(faults=["malformed@10", "disconnect@70"])
async def test_faults_from_the_venue_are_survived(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    await instruments(stubs)
    collected = await collect(
        stubs,
        [SYMBOL],
        channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_TICKERS],
        quiet_s=4.0,
        played=replay_venue.log_path,
    )
    kinds = {(e.symbol, e.notice.kind) for e in collected.notices()}
    assert (SYMBOL, md.NOTICE_KIND_GAP) in kinds, "the disconnect is announced as a gap"
    # On resubscribing, the stand-in sends a level2 snapshot of the replay position (as Coinbase does).
    assert collected.book(SYMBOL) == (EXPECTED.bids, EXPECTED.asks)
    status = {(s.symbol, s.channel): s for s in (await stream_status(stubs)).streams}
    book = status[(SYMBOL, md.CHANNEL_BOOK)]
    assert book.reconnects >= 1 and book.malformed_messages >= 1
    assert book.state == admin.STREAM_STATE_CONNECTED
    assert "could not be understood" in replay_venue.log()


@pytest.mark.replay(faults=["gap@40"])
async def test_a_lost_message_forces_a_resync(replay_venue: Venue) -> None:
    """ccxt's coinbase client never reads sequence_num; trademesh/venues/coinbase/sequence.py does."""
    stubs = replay_venue.stubs()
    await instruments(stubs)
    collected = await collect(
        stubs,
        [SYMBOL],
        channels=[md.CHANNEL_BOOK],
        quiet_s=4.0,
        played=replay_venue.log_path,
        until=resync_done,
    )
    assert collected.notices(md.NOTICE_KIND_RESYNC), "the skipped sequence_num forces a resync"
    # The resubscription brings a level2 snapshot of the replay position: the book ends right.
    assert collected.book(SYMBOL) == (EXPECTED.bids, EXPECTED.asks)
    status = {(s.symbol, s.channel): s for s in (await stream_status(stubs)).streams}
    assert status[(SYMBOL, md.CHANNEL_BOOK)].resyncs == 1
    assert "book sequence broken" in replay_venue.log()
