"""A live venue's markets reload (trademesh/venues/live/market_reload.py) on a real ccxt client whose market
reads are scripted: what a reload swaps in, what a failed one keeps, its log and counts, its loop,
and that ccxt's own calls (every order's load_markets) never wait for it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support
import pytest

from trademesh.venues.binance.spec import SPEC
from trademesh.venues.live.market_reload import DELISTED, RELOADS, MarketReload

SYMBOLS = ("BTC/USDT", "ETH/USDT")


def market(symbol: str, tick: str = "0.01", active: bool = True) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "id": base + quote,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "active": active,
        "precision": {"price": float(tick), "amount": 0.0001},
        "limits": {"amount": {"min": 0.0001}, "cost": {"min": 5.0}},
        "info": {},
    }


class Scripted:
    """What the exchange answers each market read: a list of markets, or an error to raise; a
    read waits for `gate` when one is set."""

    def __init__(self, exchange: Any) -> None:
        self.answers: list[list[dict[str, Any]] | Exception] = []
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.cached_during_read: Any = None
        exchange.fetch_markets = self.fetch_markets
        self.exchange = exchange

    async def fetch_markets(self, params: Any = None) -> list[dict[str, Any]]:
        self.reads += 1
        self.cached_during_read = self.exchange.options.get("cachedCurrencies")
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
async def exchange() -> AsyncIterator[Any]:
    client = ccxt.async_support.binance({"enableRateLimit": False})
    client.has = {**client.has, "fetchCurrencies": False}  # markets only, unless a test says so
    client.set_markets([market("BTC/USDT"), market("ETH/USDT"), market("SOL/USDT")])
    try:
        yield client
    finally:
        await client.close()


def count(result: str) -> float:
    return RELOADS.labels(SPEC.name, result)._value.get()  # type: ignore[no-any-return]


def reload_of(exchange: Any, every_s: float = 300.0) -> tuple[MarketReload, Scripted]:
    return MarketReload(SPEC, exchange, SYMBOLS, every_s, clock=lambda: 1_764_374_400.0), Scripted(exchange)


async def test_a_market_gone_is_delisted_its_ccxt_market_kept(exchange: Any) -> None:
    reload, script = reload_of(exchange)
    assert [i.symbol for i in reload.instruments] == ["BTC/USDT", "ETH/USDT"]
    ok = count("ok")
    script.answers.append([market("BTC/USDT"), market("SOL/USDT")])
    assert await reload.reload()
    assert [i.symbol for i in reload.instruments] == ["BTC/USDT"]
    assert count("ok") == ok + 1 and DELISTED.labels(SPEC.name)._value.get() == 1
    why = reload.not_trading("ETH/USDT")
    assert why is not None and why.startswith(
        "ETH/USDT is delisted at binance: the exchange no longer lists it"
    )
    assert "2025-11-29 00:00:00 UTC" in why
    assert reload.not_trading("BTC/USDT") is None
    # ccxt still knows its market (its streams, a read or cancel of an order on it), by id too.
    assert (
        exchange.market("ETH/USDT")["id"] == "ETHUSDT"
        and exchange.safe_market("ETHUSDT")["symbol"] == "ETH/USDT"
    )
    assert "SOL/USDT" in exchange.markets  # the exchange's new listing is ccxt's, not the venue's
    assert [i.symbol for i in reload.served()] == ["BTC/USDT", "ETH/USDT"]  # its streams stay open

    script.answers.append([market("BTC/USDT"), market("ETH/USDT")])  # listed again
    assert await reload.reload()
    assert [i.symbol for i in reload.instruments] == ["BTC/USDT", "ETH/USDT"]
    assert reload.not_trading("ETH/USDT") is None and DELISTED.labels(SPEC.name)._value.get() == 0


async def test_changed_rules_are_served_and_an_inactive_market_is_listed_not_traded(exchange: Any) -> None:
    reload, script = reload_of(exchange)
    script.answers.append([market("BTC/USDT", tick="0.1"), market("ETH/USDT", active=False)])
    assert await reload.reload()
    by_symbol = {i.symbol: i for i in reload.instruments}
    assert by_symbol["BTC/USDT"].tick_size == Decimal("0.1")
    assert exchange.market("BTC/USDT")["precision"]["price"] == 0.1  # ccxt's orders use it too
    assert not by_symbol["ETH/USDT"].active
    assert (
        reload.not_trading("ETH/USDT")
        == "ETH/USDT is not trading at binance now: the exchange lists it inactive"
    )
    assert reload.not_trading("BTC/USDT") is None


async def test_a_failed_reload_keeps_the_last_list_logs_once_and_counts(
    exchange: Any, caplog: pytest.LogCaptureFixture
) -> None:
    reload, script = reload_of(exchange)
    before, markets = list(reload.instruments), exchange.markets
    failed = count("failed")
    script.answers += [
        ccxt.NetworkError("binance GET https://api.binance.com/api/v3/exchangeInfo?signature=abc timed out"),
        ccxt.RateLimitExceeded("binance 429"),
        ccxt.ExchangeError("binance refused"),
        [],  # no market at all: a glitch, not everything delisted
    ]
    with caplog.at_level(logging.DEBUG, logger="trademesh.venues.live.market_reload"):
        for _ in range(4):
            assert not await reload.reload()
    assert reload.instruments == before and exchange.markets is markets
    assert count("failed") == failed + 4 and reload.failures == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "reloading markets failed" in warnings[0] and "timed out" in warnings[0]
    assert "signature=abc" not in warnings[0]  # no query string (signatures) in a log line
    assert reload.not_trading("BTC/USDT") is None, "a failure delists nothing"

    caplog.clear()
    script.answers.append([market("BTC/USDT", tick="0.5"), market("ETH/USDT")])
    with caplog.at_level(logging.INFO, logger="trademesh.venues.live.market_reload"):
        assert await reload.reload()  # the next turn
    assert reload.failures == 0 and reload.instruments[0].tick_size == Decimal("0.5")
    assert any("after 4 failed reloads" in r.getMessage() for r in caplog.records)


async def test_currencies_are_read_first_where_ccxt_reads_them(exchange: Any) -> None:
    exchange.has = {**exchange.has, "fetchCurrencies": True}
    currencies = {"BTC": {"id": "BTC", "code": "BTC", "precision": 1e-8}}

    async def fetch_currencies(params: Any = None) -> Any:
        return currencies

    exchange.fetch_currencies = fetch_currencies
    reload, script = reload_of(exchange)
    script.answers.append([market("BTC/USDT"), market("ETH/USDT")])
    assert await reload.reload()
    assert script.cached_during_read == currencies  # as load_markets (Kraken's markets read them)
    assert "cachedCurrencies" not in exchange.options
    assert exchange.currencies["BTC"]["precision"] == 1e-8


async def test_ccxt_calls_do_not_wait_for_a_reload_under_way(exchange: Any) -> None:
    reload, script = reload_of(exchange)
    script.gate = asyncio.Event()
    script.answers.append([market("BTC/USDT", tick="0.1"), market("ETH/USDT")])
    turn = asyncio.create_task(reload.reload())
    while script.reads == 0:  # noqa: ASYNC110 (the reload's read has begun)
        await asyncio.sleep(0)
    # What every ccxt order call awaits first: answered at once, with the last markets.
    markets = await asyncio.wait_for(exchange.load_markets(), 1.0)
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01
    assert reload.instruments[0].tick_size == Decimal("0.01")
    script.gate.set()
    assert await turn
    assert exchange.markets["BTC/USDT"]["precision"]["price"] == 0.1
    assert reload.instruments[0].tick_size == Decimal("0.1")


async def test_the_loop_reloads_every_interval_past_failures_and_stops(exchange: Any) -> None:
    reload, script = reload_of(exchange, every_s=0.01)
    script.answers += [ccxt.NetworkError("down"), [market("BTC/USDT")], *[[market("BTC/USDT")]] * 1000]
    reload.start()
    try:
        deadline = time.monotonic() + 10
        while reload.not_trading("ETH/USDT") is None:  # the second turn, after a failed one
            assert time.monotonic() < deadline, "no reload after a failed one"
            await asyncio.sleep(0.01)
    finally:
        task = reload._task
        await reload.stop()
    assert script.reads >= 2 and task is not None and task.cancelled(), "stopped: no more turns"


async def test_an_interval_of_zero_never_reloads(exchange: Any) -> None:
    reload, script = reload_of(exchange, every_s=0)
    reload.start()
    await reload.stop()
    assert script.reads == 0 and [i.symbol for i in reload.instruments] == list(SYMBOLS)
