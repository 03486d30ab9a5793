"""Studio's market board (`#/market`) fed by every instrument's ticker at once (MarketData.GetTickers
through the gateway, one call for the sim every few seconds) in a real browser against the e2e mesh
(see studio_mesh). With the bridge stopped (no live stream at all), every one of the sim's symbols
still shows, from the venue's own answer: its last price a price the sim traded, bid below ask at
the instrument's tick, refreshed every few seconds; and its 24h change, exactly the last price less
the sim's 24h open as its ticker states it (Ticker.open_24h: no candle asked), which is the open of
the sim's first 1m candle of the last 24 h (asked of the sim itself beside the page: it started
within the day).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import grpc
import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, sign_in
from tests.e2e.test_studio_market import SIM_SYMBOLS, rounded, venue_tick
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

_AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
DAY_NS = 86_400 * 10**9
MINUTE_NS = 60 * 10**9
_READ = """r => ({...r.dataset, cells: Object.fromEntries([...r.cells].map(c =>
  [c.dataset.col, [c.textContent, c.querySelector('[data-exact]')?.getAttribute('title') ?? null]])),
  since: r.querySelector('td[data-col="change24h"]')?.title ?? ""})"""


async def traded_prices(mesh: StudioMesh, symbol: str, until_ns: int) -> set[str]:
    """The prices the sim traded `symbol` at over the minute up to `until_ns` (its GetTrades)."""
    assert mesh.venue is not None
    async with grpc.aio.insecure_channel(mesh.venue.address) as channel:
        stub: md_grpc.MarketDataAsyncStub = md_grpc.MarketDataStub(channel)
        prices: set[str] = set()
        request = md.GetTradesRequest(
            symbol=symbol, start_ns=until_ns - MINUTE_NS, end_ns=until_ns + 1, limit=1000
        )
        while True:
            reply = await stub.GetTrades(request, metadata=_AUTH, timeout=CALL_TIMEOUT_S)
            prices |= {t.trade.price for t in reply.trades}
            if not reply.next_page_token:
                return prices
            request = md.GetTradesRequest(symbol=symbol, page_token=reply.next_page_token)


async def first_open_of_the_day(mesh: StudioMesh, symbol: str, now_ns: int) -> tuple[str, int]:
    """The open and open time of the sim's first 1m candle of the 24 h before `now_ns`, as the
    board asks for it (from the minute a day ago)."""
    assert mesh.venue is not None
    async with grpc.aio.insecure_channel(mesh.venue.address) as channel:
        stub: md_grpc.MarketDataAsyncStub = md_grpc.MarketDataStub(channel)
        start = (now_ns - DAY_NS) // MINUTE_NS * MINUTE_NS
        request = md.GetCandlesRequest(
            symbol=symbol, timeframe=common.TIMEFRAME_1_MINUTE, start_ns=start, limit=1
        )
        reply = await stub.GetCandles(request, metadata=_AUTH, timeout=CALL_TIMEOUT_S)
    (candle,) = reply.candles
    return candle.open, candle.open_time_ns


async def test_the_board_shows_every_price_at_once_from_the_venue_without_a_live_stream(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    await asyncio.to_thread(mesh.stop_bridge)  # no tickers but the venue's own answers
    try:
        await sign_in(page, mesh, api_key)
        await page.click("#nav-market")
        await expect(page.locator("#market-page")).to_be_visible()
        sim = page.locator('#board-venues section.venue-board[data-venue="sim"]')
        headings = ["symbol", "bid", "ask", "last", "change", "24h change", "24h volume"]
        await expect(sim.locator("thead th")).to_have_text(headings, timeout=WAIT_MS)
        for symbol in SIM_SYMBOLS:
            await expect(sim.locator(f'tr[data-symbol="{symbol}"]')).to_have_attribute(
                "data-source", "snapshot", timeout=WAIT_MS
            )

        # Each row: the sim's ticker as it answered, at the tick; its last a price it traded.
        tick = await venue_tick(mesh, "BTC/USDT")
        row = sim.locator('tr[data-symbol="BTC/USDT"]')

        async def at_tick_with_its_reference() -> dict[str, Any] | None:
            read: dict[str, Any] = await row.evaluate(_READ)
            if read["reference"] == "" or read["cells"]["bid"][0] != rounded(read["bid"], tick):
                return None
            return read

        read = await until(
            at_tick_with_its_reference, WAIT_MS / 1000, 0.1, "BTC/USDT at its tick, its 24h change"
        )
        ts = int(read["ts"])
        assert read["last"] in await traded_prices(mesh, "BTC/USDT", ts), read
        assert Decimal(read["bid"]) < Decimal(read["ask"])
        for column in ("bid", "ask", "last"):
            assert read["cells"][column] == [rounded(read[column], tick), read[column]], (column, read)
        assert read["volume"] != "" and read["cells"]["volume"][0].endswith(" USDT")

        # The 24h change: exactly the last price less the ticker's 24h open, 24 h before the ticker;
        # the sim's first 1m candle of the day opened at it.
        reference, _ = await first_open_of_the_day(mesh, "BTC/USDT", time.time_ns())
        assert (read["reference"], read["referenceFrom"]) == (reference, "ticker"), read
        assert int(read["referenceNs"]) == int(read["ts"]) - DAY_NS, read
        change = Decimal(read["last"]) - Decimal(reference)
        assert Decimal(read["change24h"]) == change, read
        shown, exact = read["cells"]["change24h"]
        assert exact == read["change24h"] and shown.startswith(
            "+" if change > 0 else ("-" if change < 0 else "0")
        )
        assert f"against {reference}" in read["since"] and "ticker's 24h open" in read["since"], read["since"]

        # Refreshed every few seconds: a newer answer of the venue within two rounds.
        async def refreshed() -> bool | None:
            return True if int(await row.get_attribute("data-ts") or 0) > ts else None

        await until(refreshed, 10, 0.1, "BTC/USDT's row refreshed from a newer GetTickers answer")
        snapshots = int(await page.locator("#board-venues").get_attribute("data-snapshots") or 0)
        assert snapshots >= 2
        await page.locator("#market-board").screenshot(path=artifact("market-board-all-prices"))
    finally:
        await asyncio.to_thread(mesh.start_bridge)
