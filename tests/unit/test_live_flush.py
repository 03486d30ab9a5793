"""A live venue dispatches what its frames changed at most once per `flush_ms`
(trademesh/venues/live/config.py): a frame after a quiet spell goes out at once, frames within the
window after a dispatch go out together at its end, in order, nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ccxt.async_support.base.ws.cache import ArrayCache

from trademesh.core.domain.model import Channel, StreamKey
from trademesh.core.platform.errors import InvalidArgument
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.binance.spec import SPEC
from trademesh.venues.live.config import load_config
from trademesh.venues.live.normalize import TradeNormalizer
from trademesh.venues.live.venue import LiveVenue
from trademesh.venues.runtime.fanout import MarketFanout, MarketRoute
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable

SYMBOL = "BTC/USDT"
WINDOW_MS = 100  # wide, so a loaded machine cannot blur "at once" and "at the window's end"


class Exchange:
    """The one attribute of a ccxt.pro exchange a trade normalizer reads (ccxt's own ring)."""

    def __init__(self) -> None:
        self.trades: dict[str, Any] = {SYMBOL: ArrayCache(1000)}
        self.count = 0

    def frame(self) -> None:
        """What ccxt does with an aggTrade frame: the trade goes into the symbol's ring."""
        self.count += 1
        n = self.count
        trade = {"id": str(n), "timestamp": n, "price": 100.0, "amount": 1.0, "side": "buy"}
        self.trades[SYMBOL].append(trade)


class Dispatches(MarketFanout):
    """The venue's fan-out, keeping the trade ids of each dispatch."""

    def __init__(self) -> None:
        super().__init__(1000, lambda symbol, channel: b"")
        self.seen: list[list[str]] = []

    def dispatch(self, pending: dict[MarketRoute, bytes]) -> None:
        events = [e for chunk in pending.values() for e in md.SubscribeResponse.FromString(chunk).events]
        self.seen.append([e.trade.trade_id for e in events])
        super().dispatch(pending)

    def taken(self) -> list[list[str]]:
        seen, self.seen = self.seen, []
        return seen


def _venue(tmp_path: Path, flush_ms: float) -> tuple[LiveVenue, Exchange, Dispatches]:
    (tmp_path / "venue.toml").write_text(f"flush_ms = {flush_ms}\n")
    venue = LiveVenue(SPEC, load_config(SPEC, tmp_path / "venue.toml"))
    feed = MarketFeed(SPEC.name, StreamTable())
    feed.attach(fanout := Dispatches())
    venue._feed = feed
    venue.exchange = exchange = Exchange()
    venue._normalizers = {StreamKey(SYMBOL, Channel.TRADES): [TradeNormalizer(feed, SYMBOL)]}
    return venue, exchange, fanout


async def test_frames_within_the_window_go_out_together_and_a_lone_frame_at_once(tmp_path: Path) -> None:
    venue, exchange, fanout = _venue(tmp_path, WINDOW_MS)
    exchange.frame()
    venue._on_message()
    await asyncio.sleep(0)  # the end of this loop iteration: a frame after a quiet spell is sent
    assert fanout.taken() == [["1"]]
    for _ in range(3):  # three frames within the window after that dispatch: they wait for its end
        exchange.frame()
        venue._on_message()
        await asyncio.sleep(0.001)
    assert fanout.taken() == []
    await asyncio.sleep(WINDOW_MS / 1000 * 1.5)
    assert fanout.taken() == [["2", "3", "4"]]
    await asyncio.sleep(WINDOW_MS / 1000 * 1.5)  # a quiet spell longer than the window
    exchange.frame()
    venue._on_message()
    await asyncio.sleep(0)
    assert fanout.taken() == [["5"]]


async def test_no_window_sends_each_frame_when_its_loop_iteration_ends(tmp_path: Path) -> None:
    venue, exchange, fanout = _venue(tmp_path, 0)
    for _ in range(3):
        exchange.frame()
        venue._on_message()
        await asyncio.sleep(0)
    assert fanout.taken() == [["1"], ["2"], ["3"]]


def test_a_negative_window_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "venue.toml").write_text("flush_ms = -1\n")
    with pytest.raises(InvalidArgument, match="flush_ms"):
        load_config(SPEC, tmp_path / "venue.toml")
    assert load_config(SPEC, None).flush_ms == 2.0
