"""Every live venue replays a session of another recorder that holds only WebSocket frames.

The sessions (fixtures/exchange-captures/other-recorders, written by
generate_other_recorders.py from each venue's docs) hold no REST answers, so ccxt's
load_markets is answered with markets the stand-in makes up from the frames, and each
differs from the project's own sessions the way other recorders' do: OKX's book as
"books-l2-tbt" or "books5" and candles on /public, Coinbase messages re-serialized with
sorted keys and spaces plus heartbeats, Binance spot from the market-data host with depth at
1000 ms and USD-M futures as raw streams in the same session, Kraken's book at depth 25,
Deribit at 100ms. The venue must list the markets, serve the trades and books the frames
hold, say what it made up, and account for every frame in its summary line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
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
BUY, SELL = common.SIDE_BUY, common.SIDE_SELL
Levels = list[tuple[Any, Any]]


@dataclass
class Market:
    """What a session's frames say about one market: its trades and its book at the end."""

    trades: list[tuple[D, D, int]] = field(default_factory=list)  # price, size, taker side
    bids: dict[D, D] = field(default_factory=dict)
    asks: dict[D, D] = field(default_factory=dict)

    def book(self, bids: Levels, asks: Levels, snapshot: bool) -> None:
        if snapshot:
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if D(str(size)) == 0:
                    side.pop(D(str(price)), None)
                else:
                    side[D(str(price))] = D(str(size))


Reader = Callable[[Received, dict[str, Market]], None]


def okx(frame: Received, markets: dict[str, Market]) -> None:
    message = frame.json() if frame.text.startswith("{") else {}
    arg, data = message.get("arg", {}), message.get("data")
    if not data:
        return
    market = markets.setdefault(arg["instId"], Market())
    if arg["channel"] == "trades":
        market.trades += [(D(t["px"]), D(t["sz"]), BUY if t["side"] == "buy" else SELL) for t in data]
    elif arg["channel"].startswith("books") or arg["channel"] == "bbo-tbt":
        for book in data:
            bids, asks = [(lv[0], lv[1]) for lv in book["bids"]], [(lv[0], lv[1]) for lv in book["asks"]]
            market.book(bids, asks, snapshot=message.get("action", "snapshot") == "snapshot")


def coinbase(frame: Received, markets: dict[str, Market]) -> None:
    message = frame.json()
    for event in message.get("events", []):
        if message["channel"] == "market_trades":
            for t in reversed(event["trades"]):  # newest first on the wire
                side = SELL if t["side"] == "SELL" else BUY
                markets.setdefault(t["product_id"], Market()).trades.append(
                    (D(t["price"]), D(t["size"]), side)
                )
        elif message["channel"] == "l2_data":
            updates = event["updates"]
            bids = [(u["price_level"], u["new_quantity"]) for u in updates if u["side"] == "bid"]
            asks = [(u["price_level"], u["new_quantity"]) for u in updates if u["side"] == "offer"]
            markets.setdefault(event["product_id"], Market()).book(bids, asks, event["type"] == "snapshot")


def binance(futures: bool) -> Reader:
    def read(frame: Received, markets: dict[str, Market]) -> None:
        if frame.url is None or ("fstream" in frame.url) != futures:
            return
        message = frame.json()
        data = message.get("data", message)
        market = markets.setdefault(str(data.get("s")), Market())
        if data.get("e") == "aggTrade":
            market.trades.append((D(data["p"]), D(data["q"]), SELL if data["m"] else BUY))
        elif data.get("e") == "depthUpdate":
            market.book(data["b"], data["a"], snapshot=False)

    return read


def kraken(frame: Received, markets: dict[str, Market]) -> None:
    if not frame.text.startswith("["):
        return
    message = frame.json()
    channel, pair = message[-2], message[-1]
    market = markets.setdefault(pair, Market())
    if channel == "trade":
        market.trades += [(D(t[0]), D(t[1]), BUY if t[3] == "b" else SELL) for t in message[1]]
    elif channel.startswith("book-"):
        merged = {key: levels for payload in message[1:-2] for key, levels in payload.items() if key != "c"}
        snapshot = "as" in merged or "bs" in merged
        bids = [(lv[0], lv[1]) for lv in merged.get("bs" if snapshot else "b", [])]
        asks = [(lv[0], lv[1]) for lv in merged.get("as" if snapshot else "a", [])]
        market.book(bids, asks, snapshot)


def deribit(frame: Received, markets: dict[str, Market]) -> None:
    message = frame.json()
    if message.get("method") != "subscription":
        return
    channel, data = message["params"]["channel"], message["params"]["data"]
    if channel.startswith("trades."):
        for t in data:
            side = SELL if t["direction"] == "sell" else BUY
            markets.setdefault(t["instrument_name"], Market()).trades.append(
                (D(str(t["price"])), D(str(t["amount"])), side)
            )
    elif channel.startswith("book."):
        bids = [(lv[1], 0 if lv[0] == "delete" else lv[2]) for lv in data["bids"]]
        asks = [(lv[1], 0 if lv[0] == "delete" else lv[2]) for lv in data["asks"]]
        markets.setdefault(data["instrument_name"], Market()).book(bids, asks, data["type"] == "snapshot")


@dataclass(frozen=True)
class Case:
    venue: str
    session: str
    symbols: dict[str, str]  # native -> canonical
    read: Reader
    synthesized: tuple[str, ...]  # answer kinds the summary must name
    dropped: Callable[[list[Received]], dict[str, int]] = lambda frames: {}
    channels: tuple[md.Channel.ValueType, ...] = (md.CHANNEL_TRADES, md.CHANNEL_BOOK)

    def expected(self) -> dict[str, Market]:
        markets: dict[str, Market] = {}
        for frame in received(session_files(self.session)):
            self.read(frame, markets)
        return markets


def coinbase_candles(frames: list[Received]) -> dict[str, int]:
    """ccxt.pro coinbase has no watch_ohlcv: the candles messages reach no subscriber (counted)."""
    return {"unsubscribed": sum(1 for f in frames if '"channel": "candles"' in f.text)}


def other_binance_market(futures: bool) -> Callable[[list[Received]], dict[str, int]]:
    """The other Binance market's frames of the session (control frames aside)."""

    def count(frames: list[Received]) -> dict[str, int]:
        return {
            "other-market": sum(
                1 for f in frames if f.url and ("fstream" in f.url) != futures and '"result"' not in f.text
            )
        }

    return count


CASES = [
    Case("okx", "OKX_WS", {"BTC-USDT": "BTC/USDT", "ETH-USDT": "ETH/USDT"}, okx, ("okx instruments (SPOT)",)),
    Case("okx-swap", "OKX_SWAP_WS", {"BTC-USDT-SWAP": "BTC/USDT:USDT"}, okx, ("okx instruments (SWAP)",)),
    Case(
        "coinbase",
        "COINBASE_WS",
        {"BTC-USD": "BTC/USD", "ETH-USD": "ETH/USD"},
        coinbase,
        (
            "coinbase products (spot)",
            "coinbase currencies",
            "coinbase crypto currencies",
            "coinbase exchange rates",
        ),
        coinbase_candles,
    ),
    Case(
        "binance",
        "BINANCE_WS",
        {"BTCUSDT": "BTC/USDT", "ETHBTC": "ETH/BTC"},
        binance(futures=False),
        ("binance exchangeInfo (spot)", "binance depth snapshots"),
        other_binance_market(futures=False),
    ),
    Case(
        "binanceusdm",
        "BINANCE_WS",
        {"BTCUSDT": "BTC/USDT:USDT"},
        binance(futures=True),
        ("binance exchangeInfo (usdm)", "binance depth snapshots"),
        other_binance_market(futures=True),
    ),
    Case("kraken", "KRAKEN_WS", {"XBT/USD": "BTC/USD", "ETH/EUR": "ETH/EUR"}, kraken, ("kraken AssetPairs",)),
    Case(
        "deribit",
        "DERIBIT_WS",
        {"BTC-PERPETUAL": "BTC/USD:BTC", "ETH-26DEC25-3000-C": "ETH/USD:ETH-251226-3000-C"},
        deribit,
        ("deribit instruments",),
    ),
]


@pytest.fixture(params=CASES, ids=[f"{c.venue}-{c.session}" for c in CASES])
async def case(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Case, Venue]]:
    case: Case = request.param
    venue, log = start_replay_venue(tmp_path, case.venue, session_files(case.session))
    try:
        yield case, venue
    finally:
        await stop_venue(venue, log)


def trades_of(events: Iterator[md.MarketEvent]) -> list[tuple[D, D, int]]:
    return [(D(e.trade.price), D(e.trade.size), e.trade.taker_side) for e in events]


async def test_a_session_of_frames_only_is_served_with_markets_made_up_from_it(
    case: tuple[Case, Venue],
) -> None:
    spec, venue = case
    stubs = venue.stubs()
    assert await instruments(stubs) == spec.symbols
    collected = await collect(
        stubs, list(spec.symbols.values()), channels=list(spec.channels), played=venue.log_path
    )
    expected = spec.expected()
    for native, symbol in spec.symbols.items():
        market = expected[native]
        assert len(market.trades) > 10 and market.bids and market.asks, "the session streams this market"
        assert trades_of(iter(collected.of(symbol, "trade"))) == market.trades
        assert collected.book(symbol) == (market.bids, market.asks)
    summary = await summary_of(venue)
    for kind in spec.synthesized:
        assert kind in summary.synthesized.split(", ")
        assert f"synthesized {kind} (the capture holds none)" in venue.log()
    assert summary.refused == "none", "no REST call was left unanswered"
    frames = received(session_files(spec.session))
    assert summary.reasons == spec.dropped(frames)
    assert summary.served + summary.control + summary.dropped == summary.total == len(frames)
