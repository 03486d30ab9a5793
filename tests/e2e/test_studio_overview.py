"""Studio's Overview page in a real browser against the real mesh (studio_mesh, its Overwatch on
the bars' 1s streams): shown after log-in, first in the nav; its regime board lists the sim's
symbols, each with the regime Overwatch's own GetBoard answers (asked over gRPC, not through
Studio); beside it the strategies of the overview stream, as Overwatch's own StreamOverview
answers (no inspector nor ledger in this module: both named as not answering), and the services
board's summary. A regime change made live (bars published on
a stream Overwatch reads, as tests/integration/test_overwatch.py does: a calm range that warms a
market of this test's own venue, then thin volume) shows in the page without a reload, and the
board sorts and filters by venue."""

from __future__ import annotations

import re
from collections.abc import Sequence

import grpc
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import OVERWATCH_TIMEFRAME, StudioMesh
from tests.e2e.test_studio import WAIT_MS, sign_in
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.overwatch_support import bus_bar
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.platform.bus.codec import encode_bars
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SIM_SYMBOLS = {"BTC/USDT", "ETH/USDT", "SOL/USDT"}  # tests.integration.mesh.sim_config
# A venue of this test's own: its bars are published here, no venue process behind it.
VENUE = "e2e-regimes"
SYMBOL = "BTC/USDT"
WARM_BARS = 150  # more than the classifier's 100-bar warm-up: a regime other than unknown
THIN_BARS = 60  # then thin volume (0.15x): thin_liquidity within ~25 bars
ROWS = "#regimes-rows tr[data-venue]"
NOT_SHOWN = "\N{EN DASH}"  # a figure not read
REGIME_LABEL = re.compile(r"(trend up|trend down|range|high volatility|thin liquidity|unknown)$")
# The rows as the page shows them: [venue, symbol, regime word, ADX ("" before the first)].
_READ_ROWS = "rows => rows.map(r => [r.dataset.venue, r.dataset.symbol, r.dataset.regime, r.dataset.adx])"


def word(regime: ow.Regime.ValueType) -> str:
    """The word the page writes in data-regime: REGIME_TREND_UP -> trend_up."""
    return ow.Regime.Name(regime).removeprefix("REGIME_").lower()


async def answered(mesh: StudioMesh, venues: Sequence[str]) -> dict[tuple[str, str], ow.MarketRegime]:
    """Overwatch's own board of `venues`, asked of it directly (not through the gateway)."""
    assert mesh.overwatch is not None
    async with grpc.aio.insecure_channel(mesh.overwatch.address) as channel:
        stub: ow_grpc.OverwatchAsyncStub = ow_grpc.OverwatchStub(channel)
        request = ow.GetBoardRequest(filter=ow.MarketFilter(venues=list(venues)))
        reply = await stub.GetBoard(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
    return {(m.venue, m.symbol): m for m in reply.board.markets}


async def shown(page: Page) -> list[list[str]]:
    rows: list[list[str]] = await page.locator(ROWS).evaluate_all(_READ_ROWS)
    return rows


async def publish(mesh: StudioMesh, candles: Sequence[Candle], per_entry: int) -> None:
    """Bars on bars.{VENUE}.1s, as the bar service publishes them (an Envelope of bus.v1.Bars)."""
    client = aioredis.Redis.from_url(mesh.redis_url)
    try:
        stream = f"bars.{{{VENUE}}}.{OVERWATCH_TIMEFRAME}"
        for start in range(0, len(candles), per_entry):
            chunk = candles[start : start + per_entry]
            bars = [bus_bar(c, VENUE, SYMBOL, common.TIMEFRAME_1_SECOND) for c in chunk]
            await client.xadd(stream, {b"d": encode_bars("bars/e2e", bars)})
    finally:
        await client.aclose()


async def test_the_overview_is_shown_after_log_in_with_overwatchs_regimes_and_follows_a_change_live(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    await sign_in(page, mesh, api_key)
    assert await page.locator("nav.pages a").first.get_attribute("id") == "nav-overview"
    await expect(page.locator("#nav-overview")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#trading-page")).to_be_hidden()
    await _check_sim_regimes(page, mesh)
    await _check_overview_strategies(page, mesh)
    await _check_health_summary(page)
    await page.evaluate("window.__overviewKept = true")  # gone if the page reloads
    await _check_live_change(page, mesh)
    assert await page.evaluate("window.__overviewKept === true"), "the page reloaded"
    await _check_sort_and_filter(page)
    await _check_figures_follow(page, mesh)


async def _check_sim_regimes(page: Page, mesh: StudioMesh) -> None:
    """Every sim symbol on the page with the regime Overwatch answers for it. The sim's markets
    change regime live (every ~50 bars of 1s on its random walk): the two are read until they
    agree, within the deadline."""

    async def agree() -> dict[tuple[str, str], str] | None:
        board = {key: word(m.regime) for key, m in (await answered(mesh, ["sim"])).items()}
        page_rows = {(v, s): r for v, s, r, _ in await shown(page) if v == "sim"}
        if {s for _, s in board} != SIM_SYMBOLS or page_rows != board:
            return None
        return board

    regimes = await until(agree, 60, 0.5, "the page's sim regimes equal to Overwatch's GetBoard")
    assert all(r != "unspecified" for r in regimes.values()), regimes
    await expect(page.locator("#regimes > header .status")).to_have_text("live")
    await expect(page.locator("#regimes-figures-status")).to_have_text("live")
    # Each regime in words, not colour alone.
    first = page.locator(f'{ROWS}[data-venue="sim"] td[data-col="regime"]').first
    await expect(first).to_have_text(REGIME_LABEL)


async def overview(mesh: StudioMesh) -> ow.Overview:
    """The overview Overwatch gathers now: the first message of its StreamOverview, asked of it
    directly (not through the gateway)."""
    assert mesh.overwatch is not None
    async with grpc.aio.insecure_channel(mesh.overwatch.address) as channel:
        stub: ow_grpc.OverwatchAsyncStub = ow_grpc.OverwatchStub(channel)
        stream = stub.StreamOverview(ow.StreamOverviewRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        try:
            async for message in stream:
                return message.overview
        finally:
            stream.cancel()
    raise AssertionError("StreamOverview ended before its first message")


# The strategies as the page shows them: [id, state, patches, last signal ns, direction, open
# positions, realised].
_READ_STRATEGIES = """rows => rows.map(r => [r.dataset.strategy, r.dataset.state, r.dataset.patches,
    r.dataset.lastSignalNs, r.dataset.direction, r.dataset.openPositions, r.dataset.realised])"""


async def _check_overview_strategies(page: Page, mesh: StudioMesh) -> None:
    """The detector's example strategies, each with its state, patches and last signal as
    Overwatch's own overview says (a strategy may signal between the two reads: they are read
    until they agree); no inspector and no ledger run in this module: both named unavailable,
    the PnL shown as not answering rather than as zero."""

    async def agree() -> list[list[str]] | None:
        told = await overview(mesh)
        expected = [
            [s.strategy_id, s.state, str(s.patches), str(s.last_signal_ns), s.last_signal_direction,
             str(s.open_positions), s.realised_pnl]
            for s in told.strategies
        ]  # fmt: skip
        rows = await page.locator("#overview-strategies tr[data-strategy]").evaluate_all(_READ_STRATEGIES)
        return expected if expected and rows == expected else None

    strategies = await until(agree, 60, 0.5, "the page's strategies equal to Overwatch's overview")
    assert all(int(patches) > 0 for _, _, patches, *_ in strategies), strategies
    await expect(page.locator("#overview-mesh .status")).to_have_text("live")
    unavailable = page.locator("#overview-unavailable")
    await expect(unavailable).to_have_attribute("data-parts", "inspector,ledger")
    await expect(page.locator("#overview-risk")).to_have_attribute("data-read", "false")
    realised = page.locator('#overview-strategies tr[data-strategy] td[data-col="realised"]').first
    await expect(realised).to_have_text(NOT_SHOWN)


async def _check_health_summary(page: Page) -> None:
    """The services board's summary: the mesh's instances (the gateway and the 7 services
    studio_mesh starts, at least) counted by health."""
    summary = page.locator("#overview-health-summary")
    await expect(summary).to_have_text(re.compile(r"^\d+ instances: (.*, )?\d+ serving"), timeout=WAIT_MS)
    await expect(page.locator("#overview-health .status")).to_have_text("live")
    assert int(await summary.get_attribute("data-total") or 0) >= 8


async def _check_live_change(page: Page, mesh: StudioMesh) -> None:
    series = segment_bars(Regime.THIN_LIQUIDITY, THIN_BARS, seed=7, spec=SeriesSpec(warmup_bars=WARM_BARS))
    row = page.locator(f'{ROWS}[data-venue="{VENUE}"][data-symbol="{SYMBOL}"]')
    await publish(mesh, series.bars[:WARM_BARS], per_entry=50)

    async def warm() -> ow.MarketRegime | None:
        market = (await answered(mesh, [VENUE])).get((VENUE, SYMBOL))
        return market if market is not None and market.bars == WARM_BARS else None

    before = await until(warm, 30, 0.2, f"Overwatch read the {WARM_BARS} warm bars")
    assert before.regime not in (ow.REGIME_UNKNOWN, ow.REGIME_THIN_LIQUIDITY), before
    await expect(row).to_have_attribute("data-regime", word(before.regime), timeout=WAIT_MS)

    await publish(mesh, series.bars[WARM_BARS:], per_entry=10)
    await expect(row).to_have_attribute("data-regime", "thin_liquidity", timeout=WAIT_MS)
    await expect(row.locator('td[data-col="regime"]')).to_contain_text("thin liquidity")
    after = (await answered(mesh, [VENUE]))[(VENUE, SYMBOL)]
    assert after.regime == ow.REGIME_THIN_LIQUIDITY
    assert await row.get_attribute("data-since") == str(after.since_ns)


async def _check_sort_and_filter(page: Page) -> None:
    await page.select_option("#regimes-venue", VENUE)
    await expect(page.locator(ROWS)).to_have_count(1)
    await expect(page.locator(f'{ROWS}[data-venue="{VENUE}"]')).to_have_count(1)
    await page.select_option("#regimes-venue", "")
    await expect(page.locator(f'{ROWS}[data-venue="sim"]')).to_have_count(len(SIM_SYMBOLS))

    await page.click('#regimes-table button[data-sort="adx"]')
    await expect(page.locator('#regimes-table th:has(button[data-sort="adx"])')).to_have_attribute(
        "aria-sort", "ascending"
    )
    ascending = [float(adx) for *_, adx in await shown(page) if adx != ""]
    assert len(ascending) >= 2 and ascending == sorted(ascending), ascending
    await page.click('#regimes-table button[data-sort="adx"]')
    await expect(page.locator('#regimes-table th:has(button[data-sort="adx"])')).to_have_attribute(
        "aria-sort", "descending"
    )
    descending = [float(adx) for *_, adx in await shown(page) if adx != ""]
    assert descending == sorted(descending, reverse=True), descending


async def _check_figures_follow(page: Page, mesh: StudioMesh) -> None:
    """A market whose regime holds sends no change, yet its bars read and figures follow
    Overwatch's board (GetBoard every few seconds): the sim's BTC/USDT row reaches a count of bars
    Overwatch answered after the page had shown an earlier one."""
    row = page.locator(f'{ROWS}[data-venue="sim"][data-symbol="{SYMBOL}"]')
    seen = int(await row.get_attribute("data-bars") or 0)

    async def later() -> int | None:
        bars = (await answered(mesh, ["sim"]))[("sim", SYMBOL)].bars
        return bars if bars > seen else None

    target = await until(later, 30, 0.5, "Overwatch read another bar of the sim's BTC/USDT")
    await page.wait_for_function(
        f"""() => Number(document.querySelector('{ROWS}[data-venue="sim"][data-symbol="{SYMBOL}"]')
            ?.dataset.bars ?? 0) >= {target}""",
        timeout=WAIT_MS,
    )
