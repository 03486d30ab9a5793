"""Ticker.open_24h (the price 24 hours ago as the venue states it) from real venue processes: the
sim's (its window's first trade: within a day of its start, the open of its first 1m candle of the
last 24 h, what Studio's board used to ask GetCandles for) on its stream and in GetTickers;
Binance's GetTickers parsing its replay stand-in's /ticker/24hr openPrice; Binance USD-M's stream
taking its recorded 24hrTicker's `o`; node-ref's (TypeScript: its own trades' window, as the sim's)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.replay import capture_files, collect, replay_venue_fixture, running_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, Stubs, Venue, next_batch, until
from tests.node_venue import running
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.binance.standin.adapter import BinanceReplay
from trademesh.venues.replay.adapter import RestRequest
from trademesh.venues.replay.capture import load_capture

pytestmark = pytest.mark.integration

D = Decimal
MINUTE_NS = 60_000_000_000
DAY_NS = 1440 * MINUTE_NS


async def _first_candle_open(stubs: Stubs, symbol: str) -> str:
    """The open of the venue's first 1m candle of the last 24 h."""
    now_ns = time.time_ns()
    start_ns = (now_ns - DAY_NS) // MINUTE_NS * MINUTE_NS
    request = md.GetCandlesRequest(
        symbol=symbol, timeframe=common.TIMEFRAME_1_MINUTE, start_ns=start_ns, limit=1
    )
    answer = await stubs.md.GetCandles(request, timeout=CALL_TIMEOUT_S)
    assert answer.candles, "the sim holds candles of its own trades"
    return answer.candles[0].open


async def test_sim_states_its_24h_open_on_its_stream_and_in_get_tickers(stubs: Stubs) -> None:
    listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    ticks = {i.symbol: D(i.tick_size) for i in listed.instruments}

    async def all_opened() -> md.GetTickersResponse | None:
        answer = await stubs.md.GetTickers(md.GetTickersRequest(), timeout=CALL_TIMEOUT_S)
        return answer if answer.tickers and all(t.ticker.open_24h for t in answer.tickers) else None

    answer = await until(all_opened, 30, 0.2, "every sim ticker with its 24h open")
    for item in answer.tickers:
        opened = D(item.ticker.open_24h)
        assert opened > 0 and opened % ticks[item.symbol] == 0, item
        # The sim started within the day: its window opens at its first trade, the first candle's open.
        assert item.ticker.open_24h == await _first_candle_open(stubs, item.symbol), item.symbol

    symbol = answer.tickers[0].symbol
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=[symbol], channels=[md.CHANNEL_TICKERS]))

    async def streamed() -> md.Ticker | None:
        batch = await next_batch(call)
        return next((e.ticker for e in batch.events if e.HasField("ticker") and e.ticker.open_24h), None)

    ticker = await until(streamed, 30, 0, "a streamed ticker with its 24h open")
    assert ticker.open_24h == answer.tickers[0].ticker.open_24h, "the same window's open"
    call.cancel()


BINANCE_FILES = capture_files("BINANCE")
replay_venue = replay_venue_fixture("binance", BINANCE_FILES)


def _standin_open_prices() -> dict[str, str]:
    """What Binance's stand-in answers GET /api/v3/ticker/24hr: openPrice by native symbol."""
    standin = BinanceReplay(load_capture(BINANCE_FILES))
    answer = standin.trades.tickers(RestRequest("GET", "api.binance.com/api/v3/ticker/24hr", {}, ""))
    return {row["symbol"]: row["openPrice"] for row in json.loads(answer.body)}


async def test_binance_get_tickers_parse_the_standins_24h_open(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    natives = {i.symbol: i.native_symbol for i in listed.instruments}
    answer = await stubs.md.GetTickers(md.GetTickersRequest(), timeout=3 * CALL_TIMEOUT_S)
    stated = _standin_open_prices()
    opened = {t.symbol: t.ticker.open_24h for t in answer.tickers}
    assert opened.get("NKN/USDT"), "the streamed symbol's 24h open"
    for symbol, text in opened.items():
        price = D(stated[natives[symbol]])
        assert text == ("" if price == 0 else format(price.normalize(), "f")), symbol
    await stubs.close()


FUTURES_FILES = capture_files("BINANCE_FUTURES")


def _recorded_opens() -> dict[str, set[Decimal]]:
    """The 24h opens the USD-M session's 24hrTicker frames state, by symbol."""
    opens: dict[str, set[Decimal]] = {}
    for path in FUTURES_FILES:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if head.replace(".", "").isdigit() and text.startswith('{"stream"'):
                data = json.loads(text)["data"]
                if data.get("e") == "24hrTicker":
                    opens.setdefault(f"{data['s'].removesuffix('USDT')}/USDT:USDT", set()).add(D(data["o"]))
    return opens


async def test_binance_usdm_streams_its_recorded_24h_open(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    recorded = _recorded_opens()
    assert recorded
    async with running_replay_venue(tmp_path, request, "binanceusdm", FUTURES_FILES) as venue:
        stubs = venue.stubs()
        symbols = sorted(recorded)

        def opened(collected: object) -> bool:
            return all(
                any(e.ticker.open_24h for e in collected.of(symbol, "ticker"))  # type: ignore[attr-defined]
                for symbol in symbols
            )

        collected = await collect(stubs, symbols, [md.CHANNEL_TICKERS], played=venue.log_path, until=opened)
        for symbol in symbols:
            stated = {D(e.ticker.open_24h) for e in collected.of(symbol, "ticker") if e.ticker.open_24h}
            assert stated and stated <= recorded[symbol], symbol
        await stubs.close()


async def test_node_ref_states_its_24h_open(tmp_path: Path) -> None:
    """node-ref plays minutes of market before it opens: its window opens at that history's first
    trade, the open of its first 1m candle of the day."""
    async with running(tmp_path / "node-ref.log") as venue:
        stubs = venue.stubs()

        async def opened() -> md.GetTickersResponse | None:
            answer = await stubs.md.GetTickers(md.GetTickersRequest(), timeout=CALL_TIMEOUT_S)
            return answer if answer.tickers and all(t.ticker.open_24h for t in answer.tickers) else None

        answer = await until(opened, 30, 0.2, "node-ref's tickers with their 24h open")
        for item in answer.tickers:
            assert item.ticker.open_24h == await _first_candle_open(stubs, item.symbol), item.symbol
        await stubs.close()
