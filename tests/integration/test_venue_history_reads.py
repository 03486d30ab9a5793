"""MarketData GetTrades and GetTickers from real venue processes: the sim (its history is exactly
what it streamed; paging through tokens; bad input refused with field violations), Binance spot
against its recorded session (aggTrades paged an hour at a time through the stand-in, the made-up
past before the session and the session's own trades; /ticker/24hr), OKX and Coinbase (windows of
their newest-first trade history), and Bybit (no trade history of the past: UNIMPLEMENTED, as its
capabilities say)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.integration.replay import capture_files, replay_venue_fixture
from tests.integration.support import CALL_TIMEOUT_S, Stubs, Venue, next_batch, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration

D = Decimal
MINUTE_NS = 60_000_000_000
SYMBOL = "BTC/USDT"


def _violations(error: grpc.aio.AioRpcError) -> list[str]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                request = error_details_pb2.BadRequest()
                if detail.Unpack(request):
                    return [v.field for v in request.field_violations]
    return []


def _row(trade: md.HistoricalTrade | md.MarketEvent) -> tuple[int, str, str, str, int]:
    item = trade.trade
    return trade.ts_event_ns, item.trade_id, item.price, item.size, item.taker_side


async def _all_pages(
    stubs: Stubs, symbol: str, start_ns: int, end_ns: int, limit: int
) -> tuple[list[md.HistoricalTrade], int]:
    """Every page of the range through its tokens: the trades and the number of pages."""
    request = md.GetTradesRequest(symbol=symbol, start_ns=start_ns, end_ns=end_ns, limit=limit)
    trades: list[md.HistoricalTrade] = []
    for pages in range(1, 10_000):
        page = await stubs.md.GetTrades(request, timeout=CALL_TIMEOUT_S)
        assert len(page.trades) <= (limit or 1000)
        trades += page.trades
        if not page.next_page_token:
            return trades, pages
        request = md.GetTradesRequest(symbol=symbol, page_token=page.next_page_token, limit=limit)
    raise AssertionError("the paging does not end")


async def test_sim_history_is_what_it_streamed_paged_through_tokens(stubs: Stubs) -> None:
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.trade_history and status.capabilities.all_tickers
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_TRADES]))
    streamed: list[md.MarketEvent] = []
    try:

        async def enough() -> bool | None:
            message = await next_batch(call)
            assert not any(e.HasField("notice") for e in message.events), "a continuous stream"
            streamed.extend(e for e in message.events if e.HasField("trade"))
            return True if len(streamed) >= 25 else None

        await until(enough, 30.0, 0.0, "25 trades streamed")
    finally:
        call.cancel()
    start_ns, end_ns = streamed[0].ts_event_ns, streamed[-1].ts_event_ns + 1
    whole, pages = await _all_pages(stubs, SYMBOL, start_ns, end_ns, 0)
    assert pages == 1
    assert [_row(t) for t in whole] == [_row(e) for e in streamed], "the same trades, exactly, oldest first"
    paged, pages = await _all_pages(stubs, SYMBOL, start_ns, end_ns, 3)
    assert [_row(t) for t in paged] == [_row(t) for t in whole], "pages of 3 neither skip nor repeat"
    assert pages >= len(whole) // 3
    later, _ = await _all_pages(stubs, SYMBOL, streamed[5].ts_event_ns, end_ns, 4)
    assert [_row(t) for t in later] == [_row(t) for t in whole if t.ts_event_ns >= streamed[5].ts_event_ns]


async def _page_token(stubs: Stubs) -> str | None:
    """A page token for SYMBOL's trades, once the sim has traded twice in the last minute (a page
    of one then ends early). Not from 0: a sim running long has let its oldest trades go, and a
    read from before them is refused (FAILED_PRECONDITION: a CI run's module ran 20 minutes)."""
    since = time.time_ns() - MINUTE_NS
    page = await stubs.md.GetTrades(
        md.GetTradesRequest(symbol=SYMBOL, start_ns=since, limit=1), timeout=CALL_TIMEOUT_S
    )
    return page.next_page_token or None


async def test_sim_refuses_bad_requests_naming_the_field(stubs: Stubs) -> None:
    # Run alone, the venue may have traded once or not at all yet: wait for a second trade.
    token = await until(lambda: _page_token(stubs), 120, 0.1, f"two trades of {SYMBOL} at the sim")
    cases: list[tuple[md.GetTradesRequest | md.GetTickersRequest, set[str]]] = [
        (md.GetTradesRequest(symbol="NOPE/USDT"), {"symbol"}),
        (md.GetTradesRequest(), {"symbol"}),
        (md.GetTradesRequest(symbol=SYMBOL, start_ns=2 * MINUTE_NS, end_ns=MINUTE_NS), {"end_ns"}),
        (md.GetTradesRequest(symbol=SYMBOL, start_ns=-1), {"start_ns"}),
        (md.GetTradesRequest(symbol=SYMBOL, limit=1001), {"limit"}),
        (md.GetTradesRequest(symbol=SYMBOL, page_token="bm9wZQ"), {"page_token"}),
        (md.GetTradesRequest(symbol="ETH/USDT", page_token=token), {"page_token"}),
        (md.GetTradesRequest(symbol="X", start_ns=5, end_ns=1, limit=5000), {"symbol", "end_ns", "limit"}),
        (md.GetTickersRequest(symbols=[SYMBOL, "NOPE/USDT"]), {"symbols[1]"}),
    ]
    for request, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            if isinstance(request, md.GetTickersRequest):
                await stubs.md.GetTickers(request, timeout=CALL_TIMEOUT_S)
            else:
                await stubs.md.GetTrades(request, timeout=CALL_TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert set(_violations(caught.value)) == fields, request
    # The venue serves on.
    assert (await stubs.md.GetTickers(md.GetTickersRequest(), timeout=CALL_TIMEOUT_S)).tickers


async def test_sim_tickers_all_at_once(stubs: Stubs) -> None:
    listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    symbols = [i.symbol for i in listed.instruments]
    answer = await stubs.md.GetTickers(md.GetTickersRequest(), timeout=CALL_TIMEOUT_S)
    assert [t.symbol for t in answer.tickers] == symbols, "every instrument, in ListInstruments' order"
    for item in answer.tickers:
        ticker = item.ticker
        assert (
            D(ticker.best_bid) < D(ticker.best_ask)
            and D(ticker.best_bid_size) > 0
            and D(ticker.last_price) > 0
        )
        assert D(ticker.base_volume_24h) >= 0 and item.ts_event_ns > 0
    some = await stubs.md.GetTickers(md.GetTickersRequest(symbols=symbols[:1]), timeout=CALL_TIMEOUT_S)
    assert [t.symbol for t in some.tickers] == symbols[:1]


BINANCE_FILES = capture_files("BINANCE")
replay_venue = replay_venue_fixture("binance", BINANCE_FILES)


def _first_agg_trade(files: list[Path], stream: str) -> dict[str, object]:
    for path in files:
        for line in path.read_text().splitlines():
            if f'"{stream}"' in line and '"aggTrade"' in line:
                return dict(json.loads(line.split(": ", 1)[1])["data"])
    raise AssertionError(f"no aggTrade of {stream} in the capture")


async def test_binance_pages_aggtrades_through_the_standin(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.trade_history and status.capabilities.all_tickers
    first = _first_agg_trade(BINANCE_FILES, "nknusdt@aggTrade")
    first_ns = int(str(first["T"])) * 1_000_000
    # An hour and a half of made-up past (two of Binance's one-hour windows) and the session's start.
    start_ns, end_ns = first_ns - 90 * MINUTE_NS, first_ns + MINUTE_NS
    whole, pages = await _all_pages(stubs, "NKN/USDT", start_ns, end_ns, 0)
    assert pages >= 2, "more than one page: the venue pages the stand-in an hour at a time"
    times = [t.ts_event_ns for t in whole]
    assert times == sorted(times) and all(start_ns <= t < end_ns for t in times)
    ids = [int(t.trade.trade_id) for t in whole]
    assert ids == sorted(set(ids)), "aggregate ids increase, none repeated"
    assert min(times) < first_ns - 60 * MINUTE_NS, "the made-up past before the session"
    session = [t for t in whole if t.trade.trade_id == str(first["a"])]
    assert len(session) == 1, "the session's first aggregate"
    assert (D(session[0].trade.price), D(session[0].trade.size)) == (D(str(first["p"])), D(str(first["q"])))
    assert session[0].trade.taker_side == (common.SIDE_SELL if first["m"] else common.SIDE_BUY)
    paged, _ = await _all_pages(stubs, "NKN/USDT", start_ns, end_ns, 7)
    assert [_row(t) for t in paged[:200]] == [_row(t) for t in whole[:200]], "pages of 7 follow on"
    tickers = await stubs.md.GetTickers(md.GetTickersRequest(), timeout=CALL_TIMEOUT_S)
    listed = {i.symbol for i in (await stubs.md.ListInstruments(md.ListInstrumentsRequest())).instruments}
    assert tickers.tickers and {t.symbol for t in tickers.tickers} <= listed
    nkn = [t for t in tickers.tickers if t.symbol == "NKN/USDT"]
    assert nkn and D(nkn[0].ticker.last_price) > 0
    await stubs.close()


@pytest.mark.replay(faults=["history-ratelimit@2"])
async def test_binance_waits_out_rate_limit_answers(replay_venue: Venue) -> None:
    """Two 429s (Retry-After: 1) on the history calls: the venue waits them out and answers."""
    stubs = replay_venue.stubs()
    first_ns = int(str(_first_agg_trade(BINANCE_FILES, "nknusdt@aggTrade")["T"])) * 1_000_000
    request = md.GetTradesRequest(symbol="NKN/USDT", start_ns=first_ns - MINUTE_NS, end_ns=first_ns + 1)
    page = await stubs.md.GetTrades(request, timeout=3 * CALL_TIMEOUT_S)
    assert page.trades and page.trades[-1].ts_event_ns == first_ns
    await stubs.close()


@pytest.mark.replay(faults=["ban@5"])
async def test_binance_banned_is_resource_exhausted_and_serves_on(replay_venue: Venue) -> None:
    """Answered 418 on every try: RESOURCE_EXHAUSTED, not a traceback; the next call answers."""
    stubs = replay_venue.stubs()
    request = md.GetTradesRequest(symbol="NKN/USDT", start_ns=MINUTE_NS, end_ns=2 * MINUTE_NS)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.md.GetTrades(request, timeout=3 * CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value
    await stubs.md.GetTickers(md.GetTickersRequest(), timeout=3 * CALL_TIMEOUT_S)  # 2 bans left, then served
    await stubs.close()


okx_venue = replay_venue_fixture("okx", capture_files("OKX"))
coinbase_venue = replay_venue_fixture("coinbase", capture_files("COINBASE"))


def _first_push(prefix: str, channel: str) -> dict[str, object]:
    """The first trade the capture's `channel` pushes (OKX's trades, Coinbase's market_trades)."""
    for path in capture_files(prefix):
        for line in path.read_text().splitlines():
            if f'"channel":"{channel}"' not in line or ": {" not in line:
                continue
            message = json.loads(line.split(": ", 1)[1])
            if "data" in message:
                return dict(message["data"][0])
            for event in message.get("events", []):
                if event.get("trades"):
                    return dict(min(event["trades"], key=lambda t: t["time"]))
    raise AssertionError(f"no {channel} push in {prefix}")


async def _newest_first_venue_pages(
    venue: Venue, symbol: str, first_ns: int, first_id: str, minutes: int, page: int
) -> None:
    """A venue reading windows of an exchange's newest-first trade history (`page` trades a call at
    most): `minutes` of the made-up past, more than a page of the exchange's, and the session's
    start, paged whole and in pages of 50, the same trades."""
    stubs = venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.trade_history
    start_ns, end_ns = first_ns - minutes * MINUTE_NS, first_ns + MINUTE_NS // 2
    whole, _ = await _all_pages(stubs, symbol, start_ns, end_ns, 0)
    times = [t.ts_event_ns for t in whole]
    assert len(whole) > page, "more than one call of the exchange's"
    assert times == sorted(times) and all(start_ns <= t < end_ns for t in times)
    keys = [(t.ts_event_ns, t.trade.trade_id) for t in whole]
    assert len(set(keys)) == len(keys), "each trade once"
    assert min(times) < first_ns - (minutes - 5) * MINUTE_NS, "the made-up past before the session"
    assert first_id in {t.trade.trade_id for t in whole}, "the session's first trade"
    assert all(D(t.trade.price) > 0 and D(t.trade.size) > 0 for t in whole)
    paged, _ = await _all_pages(stubs, symbol, start_ns, end_ns, 50)
    assert [_row(t) for t in paged] == [_row(t) for t in whole], "pages of 50 follow on"
    await stubs.close()


async def test_okx_pages_history_trades_by_time_through_the_standin(okx_venue: Venue) -> None:
    first = _first_push("OKX", "trades")
    first_ns = int(str(first["ts"])) * 1_000_000
    await _newest_first_venue_pages(okx_venue, "BTC/USDT", first_ns, str(first["tradeId"]), 20, 100)


async def test_coinbase_pages_market_trades_by_window_through_the_standin(coinbase_venue: Venue) -> None:
    first = _first_push("COINBASE", "market_trades")
    when = datetime.fromisoformat(str(first["time"]).replace("Z", "+00:00"))
    first_ns = int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    await _newest_first_venue_pages(coinbase_venue, "BTC/USD", first_ns, str(first["trade_id"]), 180, 1000)


kraken_venue = replay_venue_fixture("kraken", capture_files("KRAKEN"))
deribit_venue = replay_venue_fixture("deribit", capture_files("DERIBIT"))


async def _forward_venue_pages(venue: Venue, symbol: str) -> None:
    """A venue reading its exchange's history forward from a time: 2,500 trades of the stand-in's
    made-up past from 2020-09-13, whole and in pages of 250, the same trades."""
    stubs = venue.stubs()
    assert (await stubs.admin.GetStatus(admin.GetStatusRequest())).capabilities.trade_history
    request = md.GetTradesRequest(symbol=symbol, start_ns=1_600_000_000 * 10**9, limit=1)
    first = await stubs.md.GetTrades(request, timeout=CALL_TIMEOUT_S)
    assert first.trades and first.next_page_token
    start_ns = first.trades[0].ts_event_ns
    request = md.GetTradesRequest(symbol=symbol, start_ns=start_ns, end_ns=start_ns + 10**18)
    whole: list[md.HistoricalTrade] = []
    while len(whole) < 2500:
        page = await stubs.md.GetTrades(request, timeout=CALL_TIMEOUT_S)
        whole += page.trades
        assert page.next_page_token
        request = md.GetTradesRequest(symbol=symbol, page_token=page.next_page_token)
    times = [t.ts_event_ns for t in whole]
    keys = [(t.ts_event_ns, t.trade.trade_id) for t in whole]
    assert times == sorted(times) and len(set(keys)) == len(keys) and times[0] == start_ns
    assert all(D(t.trade.price) > 0 and D(t.trade.size) > 0 for t in whole)
    request = md.GetTradesRequest(symbol=symbol, start_ns=start_ns, end_ns=start_ns + 10**18, limit=250)
    paged: list[md.HistoricalTrade] = []
    while len(paged) < 2500:
        page = await stubs.md.GetTrades(request, timeout=CALL_TIMEOUT_S)
        assert len(page.trades) <= 250
        paged += page.trades
        request = md.GetTradesRequest(symbol=symbol, page_token=page.next_page_token, limit=250)
    assert [_row(t) for t in paged[:2500]] == [_row(t) for t in whole[:2500]], "pages of 250 follow on"
    await stubs.close()


async def _first_listed(venue: Venue) -> str:
    stubs = venue.stubs()
    listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    await stubs.close()
    return listed.instruments[0].symbol


async def test_kraken_pages_trades_forward_through_the_standin(kraken_venue: Venue) -> None:
    await _forward_venue_pages(kraken_venue, await _first_listed(kraken_venue))


async def test_deribit_pages_trades_by_time_through_the_standin(deribit_venue: Venue) -> None:
    await _forward_venue_pages(deribit_venue, await _first_listed(deribit_venue))


bybit_venue = replay_venue_fixture("bybit", capture_files("BYBIT"))


async def test_a_venue_without_forward_trade_history_answers_unimplemented(bybit_venue: Venue) -> None:
    stubs = bybit_venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert not status.capabilities.trade_history and status.capabilities.all_tickers
    symbol = (await stubs.md.ListInstruments(md.ListInstrumentsRequest())).instruments[0].symbol
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.md.GetTrades(md.GetTradesRequest(symbol=symbol, start_ns=0), timeout=CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "capabilities.trade_history" in (caught.value.details() or "")
    await stubs.close()
