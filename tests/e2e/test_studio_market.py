"""Studio's market board (`#/market`) in a real browser against the e2e mesh (see studio_mesh): every
venue's tickers side by side (the sim's symbols here), each row a ticker the bridge sent, exactly
(its prices and 24h volume), and caught up with the bridge's newest; shown as people read them
(prices at the tick the venue states, the volume to the cent, each exact value in its title); drawn
at most 4 frames a second however many tickers come (the newest per symbol at each frame), on the
tab's one live stream. The bridge's tickers are read beside the page, from the bridge itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import grpc
import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, sign_in
from tests.e2e.test_studio_connections import gateway_metrics
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.livedata.v1 import livedata_pb2_grpc as lv_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SIM_SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]  # tests.integration.mesh.sim_config's
FRAME_MS = 250  # board/page.ts: at most 4 frames a second
WATCH_S = 3.0
_AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
# A row as read: its ticker's time, and each cell's column, text and exact value (its title).
_READ_ROW = """r => [r.dataset.ts, Object.fromEntries([...r.cells].map(c =>
  [c.dataset.col, [c.textContent, c.querySelector('[data-exact]')?.getAttribute('title') ?? null]]))]"""


@dataclass
class BridgeTickers:
    """The sim's tickers as the bridge sends them: (bid, ask, last, quote volume) by (symbol, event
    time), and each symbol's newest event time."""

    sent: dict[tuple[str, int], tuple[str, str, str, str]] = field(default_factory=dict)
    newest: dict[str, int] = field(default_factory=dict)

    def take(self, reply: lv.SubscribeResponse) -> None:
        for event in reply.events:
            if event.WhichOneof("payload") != "ticker":
                continue
            t = event.ticker
            ticker = (t.best_bid, t.best_ask, t.last_price, t.quote_volume_24h)
            self.sent[(event.symbol, event.ts_event_ns)] = ticker
            self.newest[event.symbol] = max(self.newest.get(event.symbol, 0), event.ts_event_ns)


@contextlib.asynccontextmanager
async def bridge_tickers(mesh: StudioMesh) -> AsyncIterator[BridgeTickers]:
    """The bridge's sim tickers, followed from before the page subscribes (its first, empty
    message says the subscription is in place) until the block ends."""
    assert mesh.bridge is not None
    tickers = BridgeTickers()
    async with grpc.aio.insecure_channel(mesh.bridge.address) as channel:
        stub: lv_grpc.LiveDataAsyncStub = lv_grpc.LiveDataStub(channel)
        call = stub.Subscribe(lv.SubscribeRequest(venues=["sim"], kinds=[lv.KIND_TICKERS]), metadata=_AUTH)
        tickers.take(await call.read())  # type: ignore[arg-type]

        async def read() -> None:
            while (reply := await call.read()) is not grpc.aio.EOF:
                tickers.take(reply)  # type: ignore[arg-type]

        reading = asyncio.create_task(read())
        try:
            yield tickers
        finally:
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await reading


async def caught_up(row: Locator, symbol: str, bridge: BridgeTickers) -> None:
    """Until the row shows the bridge's newest ticker of `symbol`; every ticker it shows meanwhile
    is one the bridge sent, exactly."""

    async def newest() -> bool | None:
        ts, *shown = await row.evaluate(
            "r => [r.dataset.ts, r.dataset.bid, r.dataset.ask, r.dataset.last, r.dataset.volume]"
        )
        sent = bridge.sent.get((symbol, int(ts)))
        if sent is None:
            return None  # drawn before the test's subscription read it
        assert tuple(shown) == sent, f"{symbol} at {ts}: the board shows {shown}, the bridge sent {sent}"
        return True if int(ts) == bridge.newest[symbol] else None

    await until(newest, 30, 0.02, f"the board's {symbol} at the bridge's newest ticker")


async def venue_tick(mesh: StudioMesh, symbol: str) -> str:
    """The tick size of `symbol` as the sim venue itself states it."""
    assert mesh.venue is not None
    async with grpc.aio.insecure_channel(mesh.venue.address) as channel:
        stub: md_grpc.MarketDataAsyncStub = md_grpc.MarketDataStub(channel)
        reply = await stub.ListInstruments(
            md.ListInstrumentsRequest(symbols=[symbol]), metadata=_AUTH, timeout=CALL_TIMEOUT_S
        )
    (tick,) = [i.tick_size for i in reply.instruments if i.symbol == symbol]
    return tick


def rounded(value: str, step: str) -> str:
    """`value` at the decimals of `step`, half away from zero, thousands grouped: what Studio
    shows ("65,000.10" of "65000.1" at 0.01)."""
    places = max(0, -int(Decimal(step).normalize().as_tuple().exponent))
    return format(Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), ",")


async def read_at_tick(row: Locator, symbol: str, tick: str, bridge: BridgeTickers) -> tuple[Any, ...]:
    """The row as read once its prices are at the tick (the venue's instruments come after the
    first tickers), with the ticker the bridge sent at its time."""

    async def at_tick() -> tuple[Any, ...] | None:
        ts, cells = await row.evaluate(_READ_ROW)
        sent = bridge.sent.get((symbol, int(ts)))
        if sent is None or cells["bid"][0] != rounded(sent[0], tick):
            return None
        return cells, sent

    return await until(at_tick, 30, 0.02, f"the board's {symbol} prices at its tick {tick}")


async def test_the_market_board_shows_the_bridges_tickers_at_most_4_frames_a_second(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    async with bridge_tickers(mesh) as bridge:
        await sign_in(page, mesh, api_key)
        await page.click("#nav-market")
        await expect(page.locator("#market-page")).to_be_visible()
        await expect(page.locator("#trading-page")).to_be_hidden()
        await expect(page.locator("#market-board .status")).to_have_text("live", timeout=WAIT_MS)
        sim = page.locator('#board-venues section.venue-board[data-venue="sim"]')
        for symbol in SIM_SYMBOLS:
            await expect(sim.locator(f'tr[data-symbol="{symbol}"]')).to_have_attribute(
                "data-ts", re.compile(r"^\d+$")
            )

        # Each row is a ticker the bridge sent, exactly, and catches up with its newest.
        for symbol in SIM_SYMBOLS:
            await caught_up(sim.locator(f'tr[data-symbol="{symbol}"]'), symbol, bridge)
        # What a user reads is that ticker as people read it: bid, ask and last at the tick the
        # venue states, the 24h volume in USDT to the cent, each exact value on hover (its title),
        # and the change since the board opened.
        headings = ["symbol", "bid", "ask", "last", "change", "24h change", "24h volume"]
        await expect(sim.locator("thead th")).to_have_text(headings)
        tick = await venue_tick(mesh, "BTC/USDT")
        cells, sent = await read_at_tick(sim.locator('tr[data-symbol="BTC/USDT"]'), "BTC/USDT", tick, bridge)
        assert cells["symbol"][0] == "BTC/USDT"
        for column, value in zip(("bid", "ask", "last"), sent[:3], strict=True):
            assert cells[column] == [rounded(value, tick), value], (column, cells[column], value)
        volume = sent[3]
        assert volume != "", "the sim states its 24h quote volume"
        assert cells["volume"] == [f"{rounded(volume, '0.01')} USDT", volume], (cells["volume"], volume)
        change = cells["change"][0]
        assert re.fullmatch(r"[+-]?[\d,]+(\.\d+)? \([+-]?\d+\.\d\d%\)", change), change

        # Frames: at most one per 250 ms however many tickers come (conflated: fewer frames than
        # tickers). The duration watched is what is measured.
        board = page.locator("#board-venues")
        count = "b => [Number(b.dataset.frames), Number(b.dataset.tickers), performance.now()]"
        frames0, tickers0, t0 = await board.evaluate(count)
        await asyncio.sleep(WATCH_S)
        frames1, tickers1, t1 = await board.evaluate(count)
        frames, tickers, elapsed_ms = frames1 - frames0, tickers1 - tickers0, t1 - t0
        assert 2 <= frames <= elapsed_ms / FRAME_MS + 1, f"{frames} frames in {elapsed_ms:.0f} ms"
        assert tickers > frames, f"{tickers} tickers drawn in {frames} frames"
        await page.locator("#market-board").screenshot(path=artifact("market-board"))

        # Through the tab's one live stream (the gateway's multiplexer): no stream of its own.
        async def one_stream() -> bool | None:
            metrics = await asyncio.to_thread(gateway_metrics, mesh)
            return True if metrics["open_streams"] == metrics["sessions"] == 1.0 else None

        await until(one_stream, WAIT_MS / 1000, 0.2, "one live stream through the gateway, the tab's")
