"""GetTrades' paging (trademesh.venues.runtime.trades), its and GetTickers' validation, the sim's trade log
and the live connector's reads of ccxt fetch_trades and fetch_tickers (against fake exchanges)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from trademesh.core.domain.model import Instrument, InstrumentKind, Side
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, Unavailable
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.binance.spec import SPEC as BINANCE
from trademesh.venues.deribit.spec import SPEC as DERIBIT
from trademesh.venues.kraken.spec import SPEC as KRAKEN
from trademesh.venues.live.normalize import ticker_of
from trademesh.venues.live.trading import LiveTrading
from trademesh.venues.runtime import validate
from trademesh.venues.runtime.trades import (
    MAX_TRADES,
    PublicTrade,
    TradesCursor,
    TradesRead,
    decode_token,
    encode_token,
    trades_page,
)
from trademesh.venues.sim.trade_log import TradeLog

MS = 1_000_000


def _instrument(symbol: str) -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(
        symbol=symbol,
        venue="sim",
        native_symbol=symbol.replace("/", ""),
        kind=InstrumentKind.SPOT,
        base_asset=base,
        quote_asset=quote,
        settle_asset=quote,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        min_size=Decimal("0.001"),
        min_notional=Decimal(0),
    )


INSTRUMENTS = {s: _instrument(s) for s in ("BTC/USDT", "ETH/USDT")}


def _trades(times_ms: list[int]) -> list[PublicTrade]:
    return [PublicTrade(t * MS, str(i + 1), "100.5", "0.25", Side.BUY) for i, t in enumerate(times_ms)]


def _reader(
    tape: list[PublicTrade], page: int, window_ns: int | None = None
) -> Callable[[int, int, int], TradesRead]:
    """A venue's read over `tape` as an exchange pages: at most `page` trades from a time, one
    window at a time when window_ns is set."""

    def read(since: int, end: int, limit: int) -> TradesRead:
        stop = end if window_ns is None else min(end, since + window_ns)
        found = [t for t in tape if since <= t.ts_event_ns < stop]
        asked = min(limit, page)
        got = found[:asked]
        if len(found) <= asked:
            if stop >= end:
                return TradesRead(got, complete=True)
            return TradesRead(got, complete=False, scanned_to_ns=stop)
        return TradesRead(got, complete=False)

    return read


def _page_all(
    read: Callable[[int, int, int], TradesRead], start: int, end: int, limit: int, pages_at_most: int = 10_000
) -> tuple[list[PublicTrade], int]:
    """Every page of [start, end) as a client pages it: through the encoded token each time."""
    cursor: TradesCursor | None = TradesCursor("BTC/USDT", end, start)
    got: list[PublicTrade] = []
    pages = 0
    while cursor is not None:
        pages += 1
        assert pages <= pages_at_most, "the paging does not end"
        page, following = trades_page(
            cursor, read(cursor.since_ns, cursor.end_ns, limit + cursor.skip), limit, "v"
        )
        assert len(page) <= limit
        got += page
        cursor = None if following is None else decode_token(encode_token(following))
    return got, pages


def test_token_round_trip_and_refusals() -> None:
    cursor = TradesCursor("BTC/USDT", 10_000, 5_000, 3)
    assert decode_token(encode_token(cursor)) == cursor
    for bad in ("", "not a token", "e30", encode_token(cursor) + "x" * 600, "eyJ2IjoxfQ"):
        with pytest.raises(ValueError, match="page token"):
            decode_token(bad)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("page", [6, 7, 1000])
def test_pages_neither_repeat_nor_skip_trades_sharing_a_timestamp(limit: int, page: int) -> None:
    # Runs of trades in one millisecond, longer than a page of the client and of the exchange.
    times = [1, 1, 1, 2, 5, 5, 5, 5, 5, 9, 10, 10, 11, 11, 11, 11, 12, 20, 20, 21]
    tape = _trades(times)  # the exchange's page is longer than one instant's trades (else: below)
    got, _ = _page_all(_reader(tape, page), 0, 21 * MS, limit)
    assert [t.trade_id for t in got] == [t.trade_id for t in tape[:-1]], "each once, in order"


def test_a_range_starting_and_ending_inside_runs_of_one_instant() -> None:
    tape = _trades([1, 2, 2, 2, 3, 3, 4])
    got, _ = _page_all(_reader(tape, 1000), 2 * MS, 4 * MS, 2)
    assert [t.ts_event_ns // MS for t in got] == [2, 2, 2, 3, 3]


def test_windowed_reads_go_on_across_empty_windows() -> None:
    hour = 3_600_000 * MS
    tape = [*_trades([10, 20]), PublicTrade(5 * hour + 7 * MS, "x", "1", "1", Side.SELL)]
    got, pages = _page_all(_reader(tape, 1000, window_ns=hour), 0, 6 * hour, 1000)
    assert [t.trade_id for t in got] == ["1", "2", "x"]
    assert pages == 6, "one page a window, empty ones included (each with a token)"


def test_empty_range_is_one_page_without_token() -> None:
    cursor = TradesCursor("BTC/USDT", 100 * MS, 0)
    page, following = trades_page(cursor, TradesRead([], complete=True), 10, "v")
    assert page == [] and following is None


def test_no_progress_is_unavailable_not_a_loop() -> None:
    cursor = TradesCursor("BTC/USDT", 100 * MS, 1 * MS, skip=3)
    read = TradesRead(_trades([1, 1, 1]), complete=False)  # only the trades already sent
    with pytest.raises(Unavailable, match="no progress"):
        trades_page(cursor, read, 10, "v")


def _violations(call: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        call()
    return {v.field: v.description for v in caught.value.violations}


def test_trades_request_validation() -> None:
    now = 1_000 * MS

    def check(**fields: Any) -> dict[str, str]:
        return _violations(lambda: validate.trades_request(md.GetTradesRequest(**fields), INSTRUMENTS, now))

    assert set(check(symbol="")) == {"symbol"}
    assert "unknown symbol" in check(symbol="XRP/USDT", start_ns=0)["symbol"]
    assert set(check(symbol="BTC/USDT", start_ns=5, end_ns=5)) == {"end_ns"}
    assert set(check(symbol="BTC/USDT", start_ns=now + 1)) == {"end_ns"}, "end 0 is now, before start"
    assert set(check(symbol="BTC/USDT", start_ns=-1)) == {"start_ns"}
    assert set(check(symbol="BTC/USDT", limit=MAX_TRADES + 1)) == {"limit"}
    assert set(check(symbol="BTC/USDT", page_token="garbage!")) == {"page_token"}
    other = encode_token(TradesCursor("ETH/USDT", now, 0))
    assert "ETH/USDT" in check(symbol="BTC/USDT", page_token=other)["page_token"]
    both = check(symbol="XRP/USDT", start_ns=9, end_ns=3, limit=5000)
    assert set(both) == {"symbol", "end_ns", "limit"}, "every bad field at once"

    cursor, limit = validate.trades_request(
        md.GetTradesRequest(symbol="BTC/USDT", start_ns=7), INSTRUMENTS, now
    )
    assert (cursor, limit) == (TradesCursor("BTC/USDT", now, 7), 1000), "end 0: now, fixed in the cursor"
    token = encode_token(TradesCursor("BTC/USDT", 50, 20, 2))
    cursor, limit = validate.trades_request(
        md.GetTradesRequest(symbol="BTC/USDT", start_ns=0, end_ns=0, limit=3, page_token=token),
        INSTRUMENTS,
        now,
    )
    assert (cursor, limit) == (TradesCursor("BTC/USDT", 50, 20, 2), 3), "the token's range, not the request's"


def test_tickers_request_validation() -> None:
    assert validate.tickers_request(md.GetTickersRequest(), INSTRUMENTS) == ["BTC/USDT", "ETH/USDT"]
    assert validate.tickers_request(md.GetTickersRequest(symbols=["ETH/USDT"]), INSTRUMENTS) == ["ETH/USDT"]
    found = _violations(
        lambda: validate.tickers_request(
            md.GetTickersRequest(symbols=["ETH/USDT", "NOPE/USDT", ""]), INSTRUMENTS
        )
    )
    assert set(found) == {"symbols[1]", "symbols[2]"}


def test_sim_trade_log_reads_and_stays_bounded() -> None:
    log = TradeLog(kept=5)
    for i in range(12):
        log.add(i * 10, i + 1, 1000 + i, 3, Side.SELL if i % 2 else Side.BUY)
    assert len(log) < 10, "cut back to what it keeps once twice that"
    oldest = log.times[0]
    with pytest.raises(FailedPrecondition, match=f"the oldest it holds is at {oldest} ns"):
        log.read(0, 1000, 100, str, str)  # from before what is kept: not answered as if whole
    read = log.read(oldest, 1000, 100, lambda p: f"{p / 100}", lambda lots: f"{lots / 1000}")
    assert read.complete
    assert [t.trade_id for t in read.trades] == [str(i + 1) for i in range(12 - len(log), 12)]
    first = read.trades[0]
    assert (first.price, first.size) == (f"{(1000 + 12 - len(log)) / 100}", "0.003")
    part = log.read(100, 111, 1, str, str)
    assert [t.ts_event_ns for t in part.trades] == [100] and not part.complete
    assert log.read(100, 111, 2, str, str).complete
    assert log.read(111, 115, 2, str, str) == TradesRead([], complete=True)


class _FakeExchange:
    """fetch_trades and fetch_tickers over a tape of ccxt trade structures."""

    def __init__(self, rows: list[dict[str, Any]], window_ms: int | None = None) -> None:
        self.rows = rows
        self.window_ms = window_ms
        self.calls: list[tuple[Any, ...]] = []
        self.markets = {
            "BTC/USDT": {"type": "spot", "base": "BTC"},
            "ETH/USDT": {"type": "spot", "base": "ETH"},
            "BTC-PERP": {"type": "swap", "base": "BTC"},
        }

    async def fetch_trades(self, symbol: str, since: int, limit: int, params: dict[str, Any]) -> list[Any]:
        self.calls.append((symbol, since, limit, dict(params)))
        until = params.get("until")
        found = [
            r for r in self.rows if r["timestamp"] >= since and (until is None or r["timestamp"] <= until)
        ]
        return found[:limit]

    async def fetch_tickers(self, symbols: list[str]) -> dict[str, Any]:
        self.calls.append(("tickers", tuple(symbols)))
        return {
            s: {
                "bid": 100.5,
                "bidVolume": 2,
                "ask": 100.75,
                "askVolume": 0.1,
                "last": 100.6,
                "timestamp": 1234,
            }
            for s in symbols
            if s != "ETH/USDT"
        }


def _rows(times_ms: list[int]) -> list[dict[str, Any]]:
    return [
        {"timestamp": t, "id": str(i), "price": 0.1 + 0.2, "amount": 1.5, "side": "sell" if i % 2 else "buy"}
        for i, t in enumerate(times_ms)
    ]


def test_live_reads_binance_an_hour_at_a_time() -> None:
    hour = 3_600_000
    exchange = _FakeExchange(_rows([5, 6, 2 * hour + 1]))
    trading = LiveTrading(BINANCE, exchange, list)
    first = asyncio.run(trading.trades("BTC/USDT", 0, 3 * hour * MS, 1000))
    assert [t.trade_id for t in first.trades] == ["0", "1"]
    assert not first.complete and first.scanned_to_ns == hour * MS, "the hour read holds every trade of it"
    assert exchange.calls[-1] == ("BTC/USDT", 0, 1000, {"until": hour - 1})
    assert first.trades[0].price == "0.30000000000000004", "ccxt's float read by its repr, not rounded"
    assert first.trades[1].taker_side is Side.SELL
    last = asyncio.run(trading.trades("BTC/USDT", 2 * hour * MS, 2 * hour * MS + 10 * MS, 1000))
    assert [t.trade_id for t in last.trades] == ["2"] and last.complete
    assert exchange.calls[-1][3] == {"until": 2 * hour + 9}, "end exclusive: its ms before"
    full = asyncio.run(trading.trades("BTC/USDT", 0, 3 * hour * MS, 1))
    assert len(full.trades) == 1 and not full.complete and full.scanned_to_ns == 0, "full: nothing beyond"


def test_live_reads_kraken_and_deribit_forward() -> None:
    exchange = _FakeExchange(_rows([5, 5, 7, 9]))
    kraken = LiveTrading(KRAKEN, exchange, list)
    read = asyncio.run(kraken.trades("BTC/USDT", 5 * MS + 1, 9 * MS, 1000))
    assert [t.trade_id for t in read.trades] == ["2"] and read.complete, "before since_ns: dropped"
    deribit = LiveTrading(DERIBIT, exchange, list)
    asyncio.run(deribit.trades("BTC/USDT", 0, 9 * MS, 1000))
    assert exchange.calls[-1][3] == {"until": 8, "sorting": "asc"}


def test_live_tickers_grouped_and_in_order() -> None:
    exchange = _FakeExchange([])
    tickers = asyncio.run(LiveTrading(BINANCE, exchange, list).tickers(["ETH/USDT", "BTC/USDT", "BTC-PERP"]))
    assert [c for c in exchange.calls] == [("tickers", ("ETH/USDT", "BTC/USDT")), ("tickers", ("BTC-PERP",))]
    assert [t.symbol for t in tickers] == ["BTC/USDT", "BTC-PERP"], "none: left out"
    ticker = tickers[0]
    assert (ticker.ts_event_ns, ticker.ticker.best_bid, ticker.ticker.best_ask_size) == (
        1234 * MS,
        "100.5",
        "0.1",
    )
    exchange.calls.clear()
    asyncio.run(LiveTrading(DERIBIT, exchange, list).tickers(["ETH/USDT", "BTC/USDT", "BTC-PERP"]))
    assert len(exchange.calls) == 3, "Deribit: one call per base asset and market type"


def test_a_ticker_price_without_its_size_is_left_out_its_last_price_kept() -> None:
    summary = {"bid": 0.05, "bidVolume": None, "ask": 0.06, "askVolume": 3, "last": 0.055}
    ticker = ticker_of(summary)
    assert (ticker.best_bid, ticker.best_bid_size) == ("", "")
    assert (ticker.best_ask, ticker.best_ask_size, ticker.last_price) == ("0.06", "3", "0.055")


class _NewestFirst(_FakeExchange):
    """A venue answering the newest `limit` trades of [since, until] (OKX's history-trades by time)."""

    async def fetch_trades(self, symbol: str, since: int, limit: int, params: dict[str, Any]) -> list[Any]:
        self.calls.append((symbol, since, limit, dict(params)))
        first, last = int(params["before"]) + 1, int(params["after"]) - 1
        found = [r for r in self.rows if first <= r["timestamp"] <= last]
        return sorted(found[-limit:], key=lambda r: r["timestamp"])


def test_newest_first_reads_shrink_the_window_until_it_is_whole() -> None:
    from trademesh.venues.okx.spec import SPEC as OKX

    # 250 trades a second for 10 s, then quiet: OKX answers 100 a call.
    exchange = _NewestFirst(_rows([t // 250 * 1000 + t % 250 for t in range(2500)]))
    trading = LiveTrading(OKX, exchange, list)
    read = asyncio.run(trading.trades("BTC/USDT", 0, 60_000 * MS, 1000))
    assert 0 < len(read.trades) < 100 and not read.complete
    assert [int(t.trade_id) for t in read.trades] == list(range(len(read.trades))), "the oldest, in order"
    assert read.scanned_to_ns > read.trades[-1].ts_event_ns, "the window's end: every trade before it is here"
    assert len(exchange.calls) <= 4, "a full page's span sizes the next window"
    whole, _ = _page_all(
        lambda s, e, n: asyncio.run(trading.trades("BTC/USDT", s, e, n)), 0, 60_000 * MS, 1000
    )
    assert [int(t.trade_id) for t in whole] == list(range(2500)), "each once, in order"


def test_newest_first_refuses_an_instant_with_more_than_a_page() -> None:
    from trademesh.venues.okx.spec import SPEC as OKX

    exchange = _NewestFirst(_rows([5] * 150))
    trading = LiveTrading(OKX, exchange, list)

    def read_from(since: int, end: int, limit: int) -> TradesRead:
        return asyncio.run(trading.trades("BTC/USDT", since, end, limit))

    with pytest.raises(Unavailable, match="cannot be paged"):
        _page_all(read_from, 0, 60_000 * MS, 1000)


def test_newest_first_reads_lengthen_a_quiet_window_before_a_burst() -> None:
    from trademesh.venues.okx.spec import SPEC as OKX

    # One trade every 12 s for ten minutes, then 150 in 50 ms at the window's end.
    quiet = [i * 12_000 for i in range(50)]
    exchange = _NewestFirst(_rows(quiet + [599_950 + i // 3 for i in range(150)]))
    trading = LiveTrading(OKX, exchange, list)

    def read_from(since: int, end: int, limit: int) -> TradesRead:
        return asyncio.run(trading.trades("BTC/USDT", since, end, limit))

    first = read_from(0, 3_600_000 * MS, 1000)
    assert first.scanned_to_ns >= 500_000 * MS, "most of the quiet stretch in one read"
    whole, _ = _page_all(read_from, 0, 3_600_000 * MS, 1000)
    assert [int(t.trade_id) for t in whole] == list(range(200))
    assert len(exchange.calls) <= 20, "the quiet stretch in one read, the burst in a few"
