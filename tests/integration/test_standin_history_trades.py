"""The stand-ins' public trade history and all-tickers endpoints, read by the pinned ccxt the way
the live venues point it at a stand-in (trademesh.venues.live.exchange.create_exchange with the replay url):
fetch_trades pages through a range needing several pages (the capture's trades, the made-up
past before them: ids increasing, none repeated, none missing), an empty range answers [], and
fetch_tickers answers every listed instrument. The stand-ins run in this process (not released:
no playback is needed to read history)."""

from __future__ import annotations

import contextlib
import importlib
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_errors
import pytest

from tests.integration.replay import capture_files
from trademesh.venues.live.exchange import Hooks, create_exchange
from trademesh.venues.replay.loader import open_standin
from trademesh.venues.replay.server import ReplayOptions, ReplayServer, parse_fault
from trademesh.venues.replay.trades import TradeTape

MINUTE = 60_000
D = Decimal


@dataclass
class Standin:
    server: ReplayServer
    url: str
    exchange: Any

    def tape(self, native: str) -> TradeTape:
        tapes: dict[str, TradeTape] = self.server.adapter.trades.tapes  # type: ignore[attr-defined]
        return tapes[native]


@contextlib.asynccontextmanager
async def standin(name: str, prefix: str, faults: Sequence[str] = ()) -> AsyncIterator[Standin]:
    spec = importlib.import_module(f"trademesh.venues.{name}.spec").SPEC
    options = ReplayOptions(tuple(capture_files(prefix)), faults=tuple(parse_fault(f) for f in faults))
    server = open_standin(spec.standin, options)
    url = await server.start()
    exchange = create_exchange(spec, Hooks(lambda: None, lambda exc: None), False, url, throttled=False)
    try:
        await exchange.load_markets()
        yield Standin(server, url, exchange)
    finally:
        await exchange.close()
        await server.stop()


def ids(trades: Sequence[dict[str, Any]]) -> list[int]:
    return [int(t["id"]) for t in trades]


def assert_one_range(trades: Sequence[dict[str, Any]], expected: Sequence[int]) -> None:
    """Paged trades: ids strictly increasing (none repeated), exactly the range's (none missing)."""
    found = ids(trades)
    assert all(a < b for a, b in itertools.pairwise(found)), "ids increase, none repeated"
    assert found == list(expected)


# ---- Binance spot and USD-M: /api/v3/aggTrades, /fapi/v1/aggTrades, ticker/24hr

NKN_TRADE = 15683430  # the session's one NKNUSDT aggregate
NKN_TRADE_MS = 1633998523963


async def page_by_time(
    exchange: Any, symbol: str, since: int, until: int, limit: int
) -> list[dict[str, Any]]:
    """ccxt's forward paging by time: the next page from the last trade's time + 1 ms."""
    found: list[dict[str, Any]] = []
    pages = 0
    while since <= until:
        page = await exchange.fetch_trades(symbol, since, limit, {"until": until})
        pages += 1
        if not page:
            break
        found += page
        since = page[-1]["timestamp"] + 1
    assert pages > 2, "the range needs several pages"
    return found


async def test_binance_agg_trades_page_by_time_and_by_id() -> None:
    async with standin("binance", "BINANCE") as s:
        tape = s.tape("NKNUSDT")
        since = NKN_TRADE_MS - 30 * MINUTE
        expected = [p.id for p in tape.oldest(since * 1_000_000, 2**62, 10_000)]
        assert expected[-1] == NKN_TRADE and len(expected) == 118
        trades = await page_by_time(s.exchange, "NKN/USDT", since, NKN_TRADE_MS, 40)
        assert_one_range(trades, expected)
        last = trades[-1]
        assert (last["timestamp"], last["price"], last["amount"], last["side"]) == (
            NKN_TRADE_MS,
            0.3528,
            58.0,
            "buy",
        )
        assert last["info"] == {
            "a": NKN_TRADE,
            "p": "0.35280000",
            "q": "58.00000000",
            "f": 19862790,
            "l": 19862790,
            "T": NKN_TRADE_MS,
            "m": False,
            "M": True,
        }
        first = trades[0]["info"]
        made_up = tape.oldest(since * 1_000_000, 2**62, 1)[0]
        assert made_up.made_up and first["T"] >= since
        assert first == {
            "a": expected[0],
            "p": format(tape.candles.price_at(first["T"]), "f"),
            "q": "58.00000000",
            "f": 19862790 - (NKN_TRADE - expected[0]),
            "l": 19862790 - (NKN_TRADE - expected[0]),
            "T": made_up.ts_ms,
            "m": not made_up.buy,
            "M": True,
        }
        # By id (fromId), as a download resumes: the same trades.
        by_id: list[dict[str, Any]] = []
        cursor = expected[0]
        while True:
            page = await s.exchange.fetch_trades("NKN/USDT", None, 25, {"fromId": cursor})
            if not page:
                break
            by_id += page
            cursor = int(page[-1]["id"]) + 1
        assert_one_range(by_id, expected)
        assert [t["info"] for t in by_id] == [t["info"] for t in trades]
        # Empty ranges: the epoch's first hour, and after the session.
        assert await s.exchange.fetch_trades("NKN/USDT", 0, 100) == []
        assert await s.exchange.fetch_trades("NKN/USDT", NKN_TRADE_MS + 1, 100) == []
        # No range: the most recent, oldest first.
        recent = await s.exchange.fetch_trades("NKN/USDT", None, 3)
        assert ids(recent) == expected[-3:]
        # ccxt's own pagination (paginate: dynamic, by time), forward from since and backward.
        for direction in ("forward", "backward"):
            params = {"paginate": True, "paginationDirection": direction, "maxEntriesPerRequest": 20}
            paged = await s.exchange.fetch_trades("NKN/USDT", since, None, params)
            assert_one_range(paged, expected)


async def test_binance_made_up_klines_hold_the_made_up_trades() -> None:
    async with standin("binance", "BINANCE") as s:
        tape = s.tape("NKNUSDT")
        start = tape.session_minute - 5 * MINUTE
        klines = await s.exchange.fetch_ohlcv("NKN/USDT", "1m", start, 5)
        assert [k[0] for k in klines] == list(range(start, tape.session_minute, MINUTE))
        for open_ms, o, h, low, c, volume in klines:
            trades = await s.exchange.fetch_trades("NKN/USDT", open_ms, 100, {"until": open_ms + MINUTE - 1})
            prices = [t["price"] for t in trades]
            assert trades and trades[0]["timestamp"] == open_ms and prices[0] == o
            assert all(low <= price <= h for price in prices) and c >= low
            assert sum(t["amount"] for t in trades) == volume
            raw = await s.exchange.publicGetKlines(
                {"symbol": "NKNUSDT", "interval": "1m", "startTime": open_ms, "limit": 1}
            )
            assert raw[0][8] == len(trades) and raw[0][5] == format(58 * len(trades), ".8f")


async def test_binance_tickers_list_every_symbol() -> None:
    async with standin("binance", "BINANCE") as s:
        tickers = await s.exchange.fetch_tickers()
        assert set(tickers) == set(s.exchange.symbols) and len(tickers) == 1695
        nkn = tickers["NKN/USDT"]
        day = s.tape("NKNUSDT").day()
        assert nkn["info"]["lastPrice"] == "0.35280000" and nkn["info"]["lastQty"] == "58.00000000"
        assert nkn["info"]["count"] == day.count and nkn["info"]["lastId"] == NKN_TRADE
        assert D(nkn["info"]["volume"]) == day.volume == 58 * day.count
        assert nkn["info"]["closeTime"] - nkn["info"]["openTime"] == 86_400_000
        bid, ask = nkn["info"]["bidPrice"], nkn["info"]["askPrice"]
        assert D(bid) < D(ask)
        # A listed symbol the capture never shows: Binance's zeros.
        idle = tickers["RARE/USDT"]["info"]
        assert (idle["lastPrice"], idle["count"], idle["firstId"], idle["volume"]) == (
            "0.00000000",
            0,
            -1,
            "0.00000000",
        )


async def test_binanceusdm_agg_trades_and_tickers() -> None:
    async with standin("binanceusdm", "BINANCE_FUTURES") as s:
        tape = s.tape("CTKUSDT")
        session = tape.session
        assert len(session) == 38 and session[-1].id == 16599329
        since = session[0].ts_ms - 10 * MINUTE
        expected = [p.id for p in tape.oldest(since * 1_000_000, 2**62, 10_000)]
        trades = await page_by_time(s.exchange, "CTK/USDT:USDT", since, session[-1].ts_ms, 20)
        assert_one_range(trades, expected)
        assert trades[-1]["info"] == {
            "a": 16599329,
            "p": "1.01200",
            "q": "10",
            "f": trades[-1]["info"]["f"],
            "l": trades[-1]["info"]["l"],
            "T": session[-1].ts_ms,
            "m": False,
        }
        assert ids(trades)[-38:] == [p.id for p in session]
        by_id: list[dict[str, Any]] = []
        cursor = expected[0]
        while page := await s.exchange.fetch_trades("CTK/USDT:USDT", None, 30, {"fromId": cursor}):
            by_id += page
            cursor = int(page[-1]["id"]) + 1
        assert [t["info"] for t in by_id] == [t["info"] for t in trades]
        assert await s.exchange.fetch_trades("CTK/USDT:USDT", session[-1].ts_ms + 1, 100) == []
        assert await s.exchange.fetch_trades("CTK/USDT:USDT", 0, 100) == []
        tickers = await s.exchange.fetch_tickers()
        assert set(tickers) == set(s.exchange.symbols)
        ctk = tickers["CTK/USDT:USDT"]["info"]
        assert ctk["lastPrice"] == "1.01200" and "bidPrice" not in ctk and ctk["lastId"] == 16599329


async def test_binance_rate_limit_and_ban_answers() -> None:
    async with standin("binance", "BINANCE", faults=["history-ratelimit@1", "ban@1"]) as s:
        with pytest.raises(ccxt_errors.DDoSProtection, match="429"):
            await s.exchange.fetch_trades("NKN/USDT", None, 3)
        with pytest.raises(ccxt_errors.DDoSProtection, match="418"):
            await s.exchange.fetch_tickers()
        assert ids(await s.exchange.fetch_trades("NKN/USDT", None, 1)) == [NKN_TRADE]
    async with standin("binance", "BINANCE", faults=["ban@1"]) as s, aiohttp.ClientSession() as http:
        url = f"{s.url}/api.binance.com/api/v3/aggTrades?symbol=NKNUSDT&limit=1"
        async with http.get(url) as answer:
            assert (answer.status, answer.headers["Retry-After"]) == (418, "1")
            assert (await answer.json())["code"] == -1003


# ---- OKX spot and swaps: /api/v5/market/trades, /market/history-trades, /market/tickers

HISTORY = {"method": "publicGetMarketHistoryTrades"}


async def page_back_by_cursor(
    exchange: Any, symbol: str, cursor: str, first: int, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Backward paging by a cursor (`after`: older than it) down to the trade `first`."""
    found: list[dict[str, Any]] = []
    after: int | None = None
    pages = 0
    while True:
        extra = {**params, cursor: str(after)} if after is not None else dict(params)
        page = await exchange.fetch_trades(symbol, None, 100, extra)
        pages += 1
        older = [t for t in page if int(t["id"]) >= first]
        found = older + found
        if len(older) < len(page) or not page:
            break
        after = int(page[0]["id"])
    assert pages > 2, "the range needs several pages"
    return found


@pytest.mark.parametrize(
    ("name", "prefix", "symbol", "native", "session", "last"),
    [
        (
            "okx",
            "OKX",
            "BTC/USDT",
            "BTC-USDT",
            61,
            ("598811883", "96312.4", "0.12881997", "buy", 1740000069325),
        ),
        (
            "okx_swap",
            "OKX_SWAP",
            "BTC/USDT:USDT",
            "BTC-USDT-SWAP",
            83,
            ("598812005", "96298.3", "18.1", "sell", 1740000070014),
        ),
    ],
)
async def test_okx_history_trades_page_back_by_trade_id_and_by_time(
    name: str, prefix: str, symbol: str, native: str, session: int, last: tuple[Any, ...]
) -> None:
    async with standin(name, prefix) as s:
        tape = s.tape(native)
        assert len(tape.session) == session
        first = tape.session[0].id - 2000  # the made-up past, then the session
        expected = [p.id for p in tape.forward(from_id=first)]
        trades = await page_back_by_cursor(s.exchange, symbol, "after", first, HISTORY)
        assert_one_range(trades, expected)
        assert ids(trades)[-len(tape.session) :] == [p.id for p in tape.session]
        newest = trades[-1]["info"]
        assert (newest["tradeId"], newest["px"], newest["sz"], newest["side"], int(newest["ts"])) == last
        assert newest == {
            "instId": native,
            "side": "buy" if tape.session[-1].buy else "sell",
            "sz": format(tape.session[-1].size.normalize(), "f"),
            "px": format(tape.session[-1].price.normalize(), "f"),
            "source": "0",
            "tradeId": str(tape.session[-1].id),
            "ts": str(tape.session[-1].ts_ms),
        }
        # By time (type 2): the trades of a made-up hour, paged back from its end.
        hour = tape.session_minute - 3 * 60 * MINUTE
        by_time: list[dict[str, Any]] = []
        after = hour + 60 * MINUTE
        while True:
            page = await s.exchange.fetch_trades(
                symbol, None, 100, {**HISTORY, "type": "2", "after": str(after), "before": str(hour - 1)}
            )
            if not page:
                break
            by_time = page + by_time
            after = page[0]["timestamp"]
        assert [t["timestamp"] for t in by_time] == [
            p.ts_ms for p in tape.oldest(hour * 1_000_000, (hour + 60 * MINUTE) * 1_000_000 - 1, 10_000)
        ]
        assert 60 <= len(by_time) <= 540 and len(set(ids(by_time))) == len(by_time)
        # The most recent (/market/trades), and empty ranges.
        recent = await s.exchange.fetch_trades(symbol, None, 5)
        assert ids(recent) == [p.id for p in tape.session[-5:]]
        assert await s.exchange.fetch_trades(symbol, None, 100, {**HISTORY, "after": "1"}) == []
        assert (
            await s.exchange.fetch_trades(symbol, None, 100, {**HISTORY, "before": str(tape.session[-1].id)})
            == []
        )


@pytest.mark.parametrize(
    ("name", "prefix", "native"), [("okx", "OKX", "BTC-USDT"), ("okx_swap", "OKX_SWAP", "BTC-USDT-SWAP")]
)
async def test_okx_tickers_list_every_instrument(name: str, prefix: str, native: str) -> None:
    async with standin(name, prefix, faults=["history-ratelimit@1"]) as s:
        with pytest.raises(ccxt_errors.RateLimitExceeded):
            await s.exchange.fetch_tickers()
        tickers = await s.exchange.fetch_tickers()
        assert set(tickers) == set(s.exchange.symbols) and len(tickers) == 2
        market = s.exchange.markets_by_id[native][0]
        info = tickers[market["symbol"]]["info"]
        tape = s.tape(native)
        day = tape.day()
        assert info["last"] == format(tape.session[-1].price.normalize(), "f")
        assert D(info["vol24h"]) == day.volume and info["ts"] == str(day.close_ns // 1_000_000)
        assert D(info["bidPx"]) < D(info["askPx"])


# ---- Bybit spot: /v5/market/recent-trade (no paging on Bybit), /v5/market/tickers

BYBIT_LAST = ("2290000000812417105", "91249.50", "0.014062", "Sell", "1763712069614")


async def test_bybit_recent_trades_and_tickers() -> None:
    async with standin("bybit", "BYBIT", faults=["history-ratelimit@1"]) as s:
        with pytest.raises(ccxt_errors.RateLimitExceeded):
            await s.exchange.fetch_trades("BTC/USDT")
        tape = s.tape("BTCUSDT")
        assert len(tape.session) == 37
        # Bybit pages no further back than its most recent 60: the session's 37, and 23 made up.
        trades = await s.exchange.fetch_trades("BTC/USDT")
        assert_one_range(trades, [p.id for p in tape.newest(0, None, 60)])
        assert [t["info"]["execId"] for t in trades[-37:]] == [str(p.id) for p in tape.session]
        newest = trades[-1]["info"]
        assert (
            newest["execId"],
            newest["price"],
            newest["size"],
            newest["side"],
            newest["time"],
        ) == BYBIT_LAST
        made_up = trades[0]
        assert made_up["info"]["price"] == format(tape.candles.price_at(made_up["timestamp"]), "f")
        assert made_up["info"]["size"] == format(tape.candles.size_unit, "f")
        # since filters the answer (ccxt's way on Bybit); a range after the session is empty.
        since = tape.session[10].ts_ms
        assert ids(await s.exchange.fetch_trades("BTC/USDT", since)) == [p.id for p in tape.session[10:]]
        assert await s.exchange.fetch_trades("BTC/USDT", tape.session[-1].ts_ms + 1) == []
        assert await s.exchange.fetch_trades("ETH/USDT") == []  # listed, never streamed
        with pytest.raises(ccxt_errors.BadRequest):
            await s.exchange.fetch_trades("BTC/USDT", None, 61)
        tickers = await s.exchange.fetch_tickers()
        assert set(tickers) == set(s.exchange.symbols) == {"BTC/USDT", "ETH/USDT"}
        btc, day = tickers["BTC/USDT"]["info"], tape.day()
        assert btc["lastPrice"] == format(
            tape.newest(0, tape.candles.start_ms * 1_000_000 - 1, 1)[0].price, "f"
        )
        assert (btc["volume24h"], btc["highPrice24h"], btc["lowPrice24h"]) == (
            format(day.volume, "f"),
            format(day.high, "f"),
            format(day.low, "f"),
        )
        assert tickers["ETH/USDT"]["info"]["lastPrice"] == "" and tickers["ETH/USDT"]["last"] is None


# ---- Kraken: /0/public/Trades (since: seconds, or the ns cursor `last`), /0/public/Ticker

XMR_TRADES = [  # the session's XMR/USD trades, as the capture writes them
    ("354.11000000", "0.89594024", 1618678142.557535, "s"),
    ("354.55000000", "1.25690315", 1618678145.715785, "b"),
]


async def test_kraken_trades_page_by_the_last_cursor() -> None:
    async with standin("kraken", "KRAKEN", faults=["ban@1"]) as s:
        with pytest.raises(ccxt_errors.DDoSProtection):
            await s.exchange.fetch_trades("XMR/USD")
        tape = s.tape("XMR/USD")
        assert len(tape.session) == 4
        since_ms = tape.session[0].ts_ms - 20 * MINUTE
        expected = [p.id for p in tape.forward(from_ns=since_ms // 1000 * 1_000_000_000)]
        page = await s.exchange.fetch_trades("XMR/USD", since_ms, 30)
        found, pages = list(page), 1
        while page:
            cursor = page[-1]["info"][-1]  # ccxt appends the answer's `last` to its last row
            page = await s.exchange.fetch_trades("XMR/USD", None, 30, {"since": cursor})
            found += page
            pages += 1
        assert pages > 3
        # ccxt drops a first page's trades before `since` (Kraken's since is whole seconds).
        assert_one_range(found, [i for i in expected if i >= int(found[0]["id"])])
        assert ids(found)[-4:] == [p.id for p in tape.session]
        rows = [t["info"][:4] for t in found[-4:-2]]
        assert [tuple(r) for r in rows] == XMR_TRADES
        assert found[-4]["id"] == str(tape.first_id) and found[-5]["info"][4] == "l"
        assert all(D(t["info"][0]) % D("0.01") == 0 for t in found[:-4]), "made up on XMR/USD's tick"
        # Empty: after the session (the cursor of the last trade), and a pair never traded.
        last = str(tape.session[-1].ts_ns)
        assert await s.exchange.fetch_trades("XMR/USD", None, 30, {"since": last}) == []
        assert await s.exchange.fetch_trades("ZEC/USD", None, 30) == []
        assert ids(await s.exchange.fetch_trades("BTC/CHF", None, 2)) != []  # a book's price: a made-up past
        recent = await s.exchange.fetch_trades("XMR/USD", None, 3)
        assert ids(recent) == [p.id for p in tape.session[-3:]]


async def test_kraken_ticker_of_every_pair() -> None:
    async with standin("kraken", "KRAKEN") as s:
        tickers = await s.exchange.fetch_tickers()
        assert set(tickers) == set(s.exchange.symbols) and len(tickers) == 293
        xmr = tickers["XMR/USD"]["info"]
        day = s.tape("XMR/USD").day()
        assert xmr["c"] == ["353.81", "1.71754604"]
        assert xmr["t"][1] == day.count and xmr["v"][1] == format(day.volume.quantize(D("0.00000001")), "f")
        assert day.high is not None and xmr["h"][1] == format(day.high.quantize(D("0.01")), "f")
        assert tickers["ZEC/USD"]["info"]["t"] == [0, 0]


# ---- Coinbase: /api/v3/brokerage/market/products/{id}/ticker (limit, start, end), products

COINBASE_LAST = {
    "trade_id": "903118394",
    "product_id": "BTC-USD",
    "price": "91310.02",
    "size": "0.03863429",
    "time": "2025-11-21T08:05:10.023407Z",
    "side": "BUY",
}


async def test_coinbase_market_trades_page_back_by_time() -> None:
    async with standin("coinbase", "COINBASE", faults=["history-ratelimit@1"]) as s:
        with pytest.raises(ccxt_errors.RateLimitExceeded):
            await s.exchange.fetch_trades("BTC/USD", None, 5)
        tape = s.tape("BTC-USD")
        assert len(tape.session) == 79
        times = [p.ts_ns for p in tape.session]
        assert times == sorted(times), "the session's ids and times agree"
        since = tape.session[0].ts_ms - 15 * MINUTE
        until = (tape.session[-1].ts_ms // 1000 + 1) * 1000
        found: dict[int, dict[str, Any]] = {}
        pages = 0
        while True:  # back from the end: each page up to the next whole second after its oldest
            page = await s.exchange.fetch_trades("BTC/USD", since, 40, {"until": until})
            pages += 1
            new = [t for t in page if int(t["id"]) not in found]
            if not new:
                break
            found |= {int(t["id"]): t for t in page}
            until = (page[0]["timestamp"] // 1000 + 1) * 1000
        assert pages > 3
        trades = [found[i] for i in sorted(found)]
        assert_one_range(trades, [p.id for p in tape.forward(from_ns=since * 1_000_000)])
        assert trades[-1]["info"] == COINBASE_LAST
        made_up = trades[0]["info"]
        assert made_up["time"].endswith("000Z") and made_up["size"] == format(tape.candles.size_unit, "f")
        assert made_up["price"] == format(tape.candles.price_at(trades[0]["timestamp"]), "f")
        # Empty: after the session, and before the made-up past (the epoch's first second).
        after = tape.session[-1].ts_ms + 1000
        assert await s.exchange.fetch_trades("BTC/USD", after, 10, {"until": after + MINUTE}) == []
        assert await s.exchange.fetch_trades("BTC/USD", 0, 10, {"until": 1000}) == []
        tickers = await s.exchange.fetch_tickers()
        assert set(tickers) == set(s.exchange.symbols) and len(tickers) == 2


# ---- Deribit: public/get_last_trades_by_instrument[_and_time], get_book_summary_by_currency

PUT = "BTC-24SEP21-8000-P"  # the capture streams its book and ticker, no trades: all made up


async def test_deribit_trades_page_by_time_and_by_seq() -> None:
    async with standin("deribit", "DERIBIT", faults=["history-ratelimit@1"]) as s:
        symbol = s.exchange.markets_by_id[PUT][0]["symbol"]
        with pytest.raises(ccxt_errors.DDoSProtection):
            await s.exchange.fetch_trades(symbol, None, 5)
        tape = s.tape(PUT)
        assert tape.session == [] and tape.first_id == 271165630
        since = tape.session_minute - 60 * MINUTE
        expected = [p.id for p in tape.forward(from_ns=since * 1_000_000)]
        assert len(expected) > 150
        by_time: list[dict[str, Any]] = []
        cursor = since
        while True:
            page = await s.exchange.fetch_trades(symbol, cursor, 40, {"sorting": "asc"})
            if not page:
                break
            by_time += page
            cursor = page[-1]["timestamp"] + 1
        assert_one_range(by_time, expected)
        assert by_time[0]["info"] == {
            "trade_seq": 271165030,
            "trade_id": "271165030",
            "timestamp": 1626990120000,
            "tick_direction": 1,  # zero-plus: the price before it was the same
            "price": 0.0003,
            "mark_price": 0.0003,
            "instrument_name": PUT,
            "direction": "buy",
            "amount": 1,
        }
        by_seq: list[dict[str, Any]] = []
        seq = expected[0]
        while True:
            page = await s.exchange.fetch_trades(symbol, None, 40, {"start_seq": seq, "sorting": "asc"})
            if not page:
                break
            by_seq += page
            seq = int(page[-1]["info"]["trade_seq"]) + 1
        assert [t["info"] for t in by_seq] == [t["info"] for t in by_time]
        # The most recent (no since), newest first on the wire; empty after the clock.
        recent = await s.exchange.fetch_trades(symbol, None, 3)
        assert ids(recent) == expected[-3:]
        assert await s.exchange.fetch_trades(symbol, tape.end_ns // 1_000_000 + 1, 10) == []
        assert await s.exchange.fetch_trades(symbol, 0, 10, {"until": 1000}) == []


async def test_deribit_book_summaries_of_every_instrument() -> None:
    async with standin("deribit", "DERIBIT") as s:
        tickers = await s.exchange.fetch_tickers(params={"code": "BTC"})
        listed = {str(i["instrument_name"]) for i in s.server.adapter._instruments("BTC", None)}  # type: ignore[attr-defined]
        assert {s.exchange.market(symbol)["id"] for symbol in tickers} == listed and len(listed) == 398
        put = tickers[s.exchange.markets_by_id[PUT][0]["symbol"]]
        day = s.tape(PUT).day()
        assert put["info"]["volume"] == int(day.volume) and put["info"]["last"] == 0.0004
        assert (put["info"]["mark_price"], put["info"]["underlying_index"]) == (0.00090376, "BTC-24SEP21")
