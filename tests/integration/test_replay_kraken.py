"""Kraken spot against its recorded (WebSocket v1) session, played to ccxt.pro's v2 client.

Expected values are computed here from the capture's own v1 text with Decimal
(independently of the venue's replay adapter, which translates v1 to v2) and compared
with what a gRPC subscriber receives.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
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

FILES = capture_files("KRAKEN")
D = Decimal
Book = tuple[dict[D, D], dict[D, D]]  # bids, asks
_RECEIVED = re.compile(r"^\d+(?:\.\d+)?: (.*)$")


class Expected:
    """What the capture says, per v1 pair ("XBT/CHF")."""

    def __init__(self, files: list[Path]) -> None:
        self.trades: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.tickers: dict[str, list[tuple[D, D, D, D]]] = defaultdict(list)
        self.books: dict[str, Book] = {}
        self.book_frames: dict[str, int] = defaultdict(int)
        self.book_changes: dict[str, int] = defaultdict(int)
        self.depth = 10
        for channel, pair, payloads in self.frames(files):
            if channel == "trade":
                for price, volume, time, side, *_ in payloads[0]:
                    trade_id = str(len(self.trades[pair]) + 1)  # the stand-in's per-pair sequence
                    taker = common.SIDE_BUY if side == "b" else common.SIDE_SELL
                    self.trades[pair].append((trade_id, D(price), D(volume), taker, int(D(time) * 1000)))
            elif channel == "ticker":
                v1 = payloads[0]
                self.tickers[pair].append((D(v1["b"][0]), D(v1["b"][2]), D(v1["a"][0]), D(v1["a"][2])))
            elif channel.startswith("book"):
                self.book_frame(pair, payloads)

    def frames(self, files: list[Path]) -> list[tuple[str, str, list[Any]]]:
        """(channel name, pair, payload objects) of every v1 data frame, in time order."""
        found: list[tuple[float, int, str, str, list[Any]]] = []
        for number, path in enumerate(files):
            routes: dict[int, str] = {}
            for line in path.read_text().splitlines():
                match = _RECEIVED.match(line)
                if match is None:
                    continue
                message = json.loads(match[1])
                if isinstance(message, dict) and message.get("event") == "subscriptionStatus":
                    routes[message["channelID"]] = message["pair"]
                    self.depth = message["subscription"].get("depth", self.depth)
                elif isinstance(message, list) and message[0] in routes:
                    ts = float(line.split(":", 1)[0])
                    found.append((ts, number, message[-2], routes[message[0]], message[1:-2]))
        found.sort(key=lambda item: item[0])  # stable: each connection keeps its order
        return [(channel, pair, payloads) for _, _, channel, pair, payloads in found]

    def book_frame(self, pair: str, payloads: list[dict[str, Any]]) -> None:
        if any("as" in p or "bs" in p for p in payloads):
            self.books[pair] = ({}, {})
        book = self.books[pair]
        before = (dict(book[0]), dict(book[1]))
        for payload in payloads:
            for key, levels in payload.items():
                if key != "c":
                    side = book[0] if key.startswith("b") else book[1]
                    for price, size, *_ in levels:
                        if D(size) == 0:
                            side.pop(D(price), None)
                        else:
                            side[D(price)] = D(size)
        for side, best_first in ((book[0], True), (book[1], False)):
            for price in sorted(side, reverse=best_first)[self.depth :]:  # out of the subscribed depth
                del side[price]
        self.book_frames[pair] += 1
        if self.book_frames[pair] > 1 and before != book:
            self.book_changes[pair] += 1


EXPECTED = Expected(FILES)


replay_venue = replay_venue_fixture("kraken", FILES)
shared_replay = shared_replay_fixture("kraken")


async def test_every_message_comes_out_normalized(shared_replay: SharedReplay) -> None:
    stubs = shared_replay.venue.stubs()
    symbols = await instruments(stubs)
    assert symbols["XBT/CHF"] == "BTC/CHF" and symbols["ADA/XBT"] == "ADA/BTC"
    assert set(symbols) == set(EXPECTED.books) and len(symbols) == 10
    collected = await shared_replay.collected()
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    for native, symbol in symbols.items():
        assert collected.trades(symbol) == EXPECTED.trades[native], symbol
        assert collected.tickers(symbol) == EXPECTED.tickers[native], symbol
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
        assert len(collected.of(symbol, "book_delta")) == EXPECTED.book_changes[native], symbol
    # The capture itself, as a sanity check.
    assert sum(len(v) for v in EXPECTED.trades.values()) == 10
    assert sum(len(v) for v in EXPECTED.tickers.values()) == 18
    assert (
        sum(EXPECTED.book_changes.values()) == 4269
    )  # every one of the 4,279 book frames but the 10 snapshots


@pytest.mark.replay(faults=["gap@200"])
async def test_a_dropped_book_update_is_caught_by_the_checksum(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    symbols = await instruments(stubs)
    collected = await collect(
        stubs, list(symbols.values()), quiet_s=4.0, played=replay_venue.log_path, until=resync_done
    )
    resynced = {e.symbol for e in collected.notices(md.NOTICE_KIND_RESYNC)}
    assert len(resynced) == 1, f"one dropped book update, one resync: {resynced}"
    # The stand-in's re-subscription snapshot follows the replay, so every book still ends right.
    for native, symbol in symbols.items():
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
    (symbol,) = resynced
    status = {(s.symbol, s.channel): s for s in (await stream_status(stubs)).streams}
    book = status[(symbol, md.CHANNEL_BOOK)]
    assert book.resyncs >= 1 and book.state == admin.STREAM_STATE_CONNECTED
