"""Deribit against its recorded session (options, JSON-RPC over one WebSocket): every message normalized.

Expected values are computed here from the capture's own text (independently of the
venue's replay adapter) and compared with what a gRPC subscriber receives. The capture
holds book, trades and ticker channels for ten options; no trade happened while it was
recorded, so its trade streams stay empty.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.replay import (
    SESSIONS,
    Collected,
    SharedReplay,
    capture_files,
    collect,
    instruments,
    replay_venue_fixture,
    resync_done,
    shared_replay_fixture,
)
from tests.integration.support import Venue
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = capture_files("DERIBIT")
CHANNELS = list(SESSIONS["deribit"].channels)  # trades, book, tickers: no candles
D = Decimal
Book = tuple[dict[D, D], dict[D, D]]


def number(value: Any) -> D | None:
    return None if value is None else D(str(value))


class Expected:
    """What the capture says, per instrument (prices and amounts read as the decimals sent)."""

    def __init__(self, files: list[Path]) -> None:
        self.trades: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.tickers: dict[str, list[tuple[D | None, ...]]] = defaultdict(list)
        self.books: dict[str, Book] = {}
        self.book_frames = 0
        for channel, data in self.notifications(files):
            kind = channel.split(".", 1)[0]
            if kind == "book":
                self.book_frames += 1
                self.book(data)
            elif kind == "trades":
                for trade in data:
                    side = common.SIDE_SELL if trade["direction"] == "sell" else common.SIDE_BUY
                    self.trades[trade["instrument_name"]].append(
                        (trade["trade_id"], D(trade["price"]), D(trade["amount"]), side, trade["timestamp"])
                    )
            elif kind == "ticker":
                self.tickers[data["instrument_name"]].append(self.ticker(data))

    @staticmethod
    def ticker(data: dict[str, Any]) -> tuple[D | None, ...]:
        """Best bid/ask price and amount, last price; Deribit's price 0 means no such side (no amount)."""
        bid, ask = number(data.get("best_bid_price")), number(data.get("best_ask_price"))
        return (
            bid or None,
            number(data.get("best_bid_amount")) if bid else None,
            ask or None,
            number(data.get("best_ask_amount")) if ask else None,
            number(data.get("last_price")),
        )

    @staticmethod
    def notifications(files: list[Path]) -> list[tuple[str, Any]]:
        found = []
        for path in files:
            for line in path.read_text().splitlines():
                head, _, text = line.partition(": ")
                if head.replace(".", "").isdigit() and '"method":"subscription"' in text:
                    params = json.loads(text, parse_float=D)["params"]
                    found.append((params["channel"], params["data"]))
        return found

    def book(self, data: dict[str, Any]) -> None:
        instrument = data["instrument_name"]
        if data["type"] == "snapshot":
            self.books[instrument] = ({}, {})
        for side, levels in zip(self.books[instrument], (data["bids"], data["asks"]), strict=True):
            for action, price, amount in levels:
                if action == "delete":
                    side.pop(D(price), None)
                else:
                    side[D(price)] = D(amount)


EXPECTED = Expected(FILES)
SYMBOLS = {
    "ETH-30JUL21-2800-C": "ETH/USD:ETH-210730-2800-C",
    "ETH-27AUG21-4000-P": "ETH/USD:ETH-210827-4000-P",
    "ETH-23JUL21-2300-C": "ETH/USD:ETH-210723-2300-C",
    "BTC-31DEC21-34000-P": "BTC/USD:BTC-211231-34000-P",
    "BTC-31DEC21-300000-C": "BTC/USD:BTC-211231-300000-C",
    "BTC-30JUL21-24000-P": "BTC/USD:BTC-210730-24000-P",
    "BTC-25MAR22-30000-C": "BTC/USD:BTC-220325-30000-C",
    "BTC-24SEP21-8000-P": "BTC/USD:BTC-210924-8000-P",
    "BTC-24SEP21-34000-P": "BTC/USD:BTC-210924-34000-P",
    "BTC-24JUN22-15000-C": "BTC/USD:BTC-220624-15000-C",
}


replay_venue = replay_venue_fixture("deribit", FILES)
shared_replay = shared_replay_fixture("deribit")


async def subscribe_all(
    venue: Venue, until: Callable[[Collected], bool] | None = None
) -> tuple[dict[str, str], Collected]:
    """Every instrument of the capture, until quiet (ccxt paces its 40 subscriptions: ~2 s), and
    not before `until` holds."""
    stubs = venue.stubs()
    symbols = await instruments(stubs)
    found = await collect(
        stubs, list(symbols.values()), CHANNELS, quiet_s=5.0, played=venue.log_path, until=until
    )
    return symbols, found


async def test_every_message_comes_out_normalized(shared_replay: SharedReplay) -> None:
    symbols = await instruments(shared_replay.venue.stubs())
    collected = await shared_replay.collected()  # every instrument on CHANNELS, as subscribe_all
    assert symbols == SYMBOLS
    assert not collected.notices(), "a clean replay has no gaps or resyncs"
    for native, symbol in symbols.items():
        assert collected.trades(symbol) == EXPECTED.trades[native]
        assert collected.tickers(symbol, last_price=True, blank_as_none=True) == EXPECTED.tickers[native]
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
    # The capture itself, as a sanity check.
    assert sum(len(v) for v in EXPECTED.tickers.values()) == 89 and EXPECTED.book_frames == 46
    assert not any(EXPECTED.trades.values())


@pytest.mark.replay(faults=["gap@40"])
async def test_a_lost_book_change_forces_a_resync(replay_venue: Venue) -> None:
    symbols, collected = await subscribe_all(replay_venue, until=resync_done)
    resynced = {e.symbol for e in collected.notices(md.NOTICE_KIND_RESYNC)}
    assert len(resynced) == 1, "one lost book change, one resync"
    for native, symbol in symbols.items():
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"


@pytest.mark.replay(faults=["disconnect@60"])
async def test_a_reconnect_is_announced_and_the_books_end_right(replay_venue: Venue) -> None:
    symbols, collected = await subscribe_all(replay_venue)
    gaps = {e.symbol for e in collected.notices(md.NOTICE_KIND_GAP)}
    assert gaps >= set(symbols.values()), "every stream announces the lost connection"
    # On resubscribing, ccxt gets each book as a snapshot at the replay position.
    for native, symbol in symbols.items():
        assert collected.book(symbol) == EXPECTED.books[native], f"{symbol} book differs from the capture's"
        assert collected.tickers(symbol, last_price=True, blank_as_none=True) == EXPECTED.tickers[native]
