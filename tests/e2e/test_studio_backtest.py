"""Studio's Backtest page in a real browser against a real mesh (see studio_mesh): the backtest
hub (`trademesh backtester`) runs the shipped "trend" example over recorded history in the
mesh's database: a recording that trades (fixtures/studio-backtest/, restored there: the mesh's
own quiet market pays no trade's fees in a test's minutes, so its runs make none), and what the
mesh's recorder has written of the sim's market for a minute or two.

A run started from the form shows its progress live until it is done, then its result: the
metrics per strategy and the account's, the equity and drawdown chart, its fills on the price
chart, its round trips; it is listed among the runs with the account's figures. Two runs of other
latencies are compared side by side. Options the hub refuses are shown, not started. What the
page shows is checked against what the hub itself answers (its gRPC API, not through the
gateway), a run's fills and round trips among it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import pytest
from playwright.async_api import Page, expect

from tests.e2e.backtest_fixture import Recording, restore
from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, log_in
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.backtest.v1 import backtest_pb2_grpc as bt_grpc
from trademesh.core.advisor.config import MESH_TIMEFRAME
from trademesh.core.platform.service.process import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
STRATEGY = "trend"
SYMBOL = "BTC/USDT"  # the first of trend's symbols, the one the trades chart opens on
# The recording's runs decide on 1s bars: its stops and targets clear the fees there (its README).
RECORDED_TIMEFRAME = "1s"
# The mesh's own history: the runs over it start once the recorder has written a minute, and
# cover the last minute: 60 one-second samples of its curve, and every figure the page shows of
# a run (a run's cost was its events: 3 minutes of the sim's market were 50,000 of them).
RANGE_S = 60
HISTORY_S = RANGE_S
# A run to cancel covers the last 3 minutes: it is still going when Cancel is clicked.
CANCELLED_RANGE_S = 180
# A run of a few minutes of the sim's market: the child process's start, then seconds.
RUN_S = 180
# What the page saw of #backtest-progress: each change of its run, status and fraction.
WATCH_PROGRESS = """() => {
    const el = document.querySelector('#backtest-progress');
    window.__progress = [];
    new MutationObserver(() => window.__progress.push(
        [el.dataset.runId, el.dataset.status, Number(el.dataset.fraction)]
    )).observe(el, { attributes: true });
}"""
PAINTED = """e => [...e.querySelectorAll('canvas')].some(c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 0 && (d[i] > 150 || d[i + 2] > 150)) return true;
    }
    return false;
})"""


async def _hub_call(hub: ServiceProcess, method: str, request: object) -> Any:
    async with grpc.aio.insecure_channel(hub.address) as channel:
        stub: bt_grpc.BacktestAsyncStub = bt_grpc.BacktestStub(channel)
        return await getattr(stub, method)(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)


async def hub_result(hub: ServiceProcess, run_id: str) -> bt.GetResultResponse:
    reply = await _hub_call(hub, "GetResult", bt.GetResultRequest(run_id=run_id))
    assert isinstance(reply, bt.GetResultResponse)
    return reply


async def recorded_span(database_url: str) -> tuple[int, int]:
    """The first and last recorded trade of the sim's BTC/USDT, ns (0, 0 when none yet)."""
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT min(ts_event_ns) AS first, max(ts_event_ns) AS last FROM trades"
            " WHERE venue = 'sim' AND symbol = $1",
            SYMBOL,
        )
    finally:
        await connection.close()
    return (row["first"] or 0, row["last"] or 0) if row is not None else (0, 0)


@pytest.fixture(scope="module")
async def recording(mesh: StudioMesh) -> Recording:
    """The recording that trades, in the mesh's database beside what its recorder writes (its
    minutes are not the mesh's: it was recorded before)."""
    return await restore(mesh.database_url)


@pytest.fixture(scope="module")
async def hub(mesh: StudioMesh) -> AsyncIterator[ServiceProcess]:
    """The backtest hub, once the recorder has written HISTORY_S of the sim's market."""

    async def recorded() -> bool | None:
        first, last = await recorded_span(mesh.database_url)
        return True if first and last - first >= HISTORY_S * 1_000_000_000 else None

    await until(recorded, HISTORY_S + 120, 1.0, f"{HISTORY_S} s of {SYMBOL}'s trades recorded")
    started = await asyncio.to_thread(mesh.start_backtester)
    try:
        yield started
    finally:
        await asyncio.to_thread(mesh.stop_backtester)


def utc_input(seconds: int) -> str:
    """A datetime-local input's value, read by the page as UTC, in the browser's normalized form
    (HTML's "normalized local date and time string" leaves out seconds that are zero)."""
    value = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return value.removesuffix(":00") if seconds % 60 == 0 else value


async def run_range(mesh: StudioMesh, span_s: int = RANGE_S) -> tuple[int, int]:
    """The last `span_s` of recorded history, s: from the later of the first recorded trade and
    `span_s` ago, to now."""
    first, _ = await recorded_span(mesh.database_url)
    now = int(time.time())
    return max(first // 1_000_000_000 + 1, now - span_s), now


async def open_backtest(page: Page) -> None:
    await page.click("#nav-backtest")
    await expect(page.locator("#backtest-page")).to_be_visible()
    await expect(page.locator("#trading-page")).to_be_hidden()
    await expect(page.locator("#nav-backtest")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#backtest-runs-panel .status")).to_have_text("live", timeout=WAIT_MS)
    strategy = page.locator(f'#backtest-strategies input[value="{STRATEGY}"]')
    await expect(strategy).to_be_visible(timeout=WAIT_MS)


async def fill_form(
    page: Page,
    start_s: int,
    end_s: int,
    order_latency_ms: str,
    symbols: str = "",
    llm: str = "off",
    latency: str = "model",
    timeframe: str = "",
) -> None:
    """trend alone, over [start_s, end_s), its equity sampled every second (the advisor on
    `timeframe`'s bars, "" for a run's default)."""
    for box in await page.locator("#backtest-strategies input[name=strategy]").all():
        if await box.get_attribute("value") == STRATEGY:
            await box.check()
        else:
            await box.uncheck()
    await page.fill("#backtest-symbols", symbols)
    await page.fill("#backtest-from", utc_input(start_s))
    await page.fill("#backtest-to", utc_input(end_s))
    await expect(page.locator("#backtest-from")).to_have_value(utc_input(start_s))
    await page.select_option("#backtest-latency", latency)
    await page.fill("#backtest-order-latency", order_latency_ms)
    more = page.locator("#backtest-form details.more")
    if await more.get_attribute("open") is None:
        await more.locator("summary").click()
    await page.fill("#backtest-sample", "1")
    await page.fill("#backtest-timeframe", timeframe)
    await page.select_option("#backtest-llm", llm)


async def run_in_page(
    page: Page,
    window: tuple[int, int],
    order_latency_ms: str,
    llm: str = "off",
    latency: str = "model",
    symbols: str = "",
    timeframe: str = "",
) -> str:
    """A run of trend over [start_s, end_s) from the form, followed until done; its id."""
    start_s, end_s = window
    await fill_form(page, start_s, end_s, order_latency_ms, symbols, llm, latency, timeframe)
    await page.evaluate(WATCH_PROGRESS)
    await page.click("#backtest-run")
    progress = page.locator("#backtest-progress")
    await expect(page.locator("#backtest-message")).to_have_attribute("data-tone", "ok", timeout=WAIT_MS)
    run_id = await progress.get_attribute("data-run-id")
    assert run_id, "the run's id is not shown"
    await expect(progress).to_have_attribute("data-status", "done", timeout=RUN_S * 1000)
    seen: list[list[Any]] = await page.evaluate("() => window.__progress")
    ours = [(status, fraction) for rid, status, fraction in seen if rid == run_id]
    assert ours[0][0] == "running" and ours[-1] == ("done", 1.0), ours
    fractions = [fraction for status, fraction in ours if status == "running"]
    assert fractions == sorted(fractions), f"the progress bar went back: {fractions}"
    await expect(progress).to_have_attribute("data-fraction", "1.0000")
    assert int(await progress.get_attribute("data-events") or "0") > 0
    await expect(page.locator("#backtest-progress-text")).to_contain_text("events/s")
    await expect(page.locator("#backtest-status")).to_have_text("done")
    await expect(page.locator("#backtest-error")).to_be_hidden()
    await expect(page.locator("#backtest-cancel")).to_be_disabled()
    return run_id


async def run_recorded(page: Page, recording: Recording, order_latency_ms: str) -> str:
    """A run of trend over the recording's window, on its 1s bars, followed until done; its id."""
    window = (recording.start_s, recording.end_s)
    return await run_in_page(
        page, window, order_latency_ms, symbols=recording.symbol, timeframe=RECORDED_TIMEFRAME
    )


async def metric(page: Page, scope: str, key: str) -> str | None:
    return await page.locator(f'{scope} td[data-col="{key}"]').get_attribute("data-value")


async def test_a_run_shows_its_progress_then_its_metrics_equity_and_trades(
    page: Page, mesh: StudioMesh, api_key: str, hub: ServiceProcess, recording: Recording
) -> None:
    await log_in(page, mesh, api_key)
    await open_backtest(page)
    # The form opens on the last hour, to now (UTC).
    to_value = await page.locator("#backtest-to").input_value()
    from_value = await page.locator("#backtest-from").input_value()
    opened = datetime.fromisoformat(to_value).replace(tzinfo=UTC)
    assert abs(opened.timestamp() - time.time()) < 120, to_value
    assert opened.timestamp() - datetime.fromisoformat(from_value).replace(tzinfo=UTC).timestamp() == 3600
    # The advisor's timeframe a run takes when the field is left empty: `trademesh up`'s.
    await expect(page.locator("#backtest-timeframe")).to_have_attribute("placeholder", MESH_TIMEFRAME)

    run_id = await run_recorded(page, recording, "20")
    # Done: its result opens, as the hub has it.
    result = page.locator("#backtest-result")
    await expect(result).to_have_attribute("data-run-id", run_id, timeout=WAIT_MS)
    await expect(result).to_have_attribute("data-status", "done")
    await expect(page.locator("#backtest-result .status")).to_have_text("done", timeout=WAIT_MS)
    assert page.url.endswith(f"#/backtest/{run_id}")
    expected = await hub_result(hub, run_id)
    assert expected.run.status == bt.RUN_STATUS_DONE
    # The run traded: the figures below are of its fills and round trips.
    assert expected.fills and expected.trips, (len(expected.fills), len(expected.trips))
    shown = await page.locator("#backtest-metrics tbody tr[data-strategy]").evaluate_all(
        "rs => rs.map(r => r.dataset.strategy)"
    )
    assert shown == [*sorted(m.strategy for m in expected.metrics if m.strategy != "total"), "total"], shown
    assert STRATEGY in shown
    for m in expected.metrics:
        scope = f'#backtest-metrics tr[data-strategy="{m.strategy}"]'
        assert await metric(page, scope, "total_return") == m.total_return
        assert await metric(page, scope, "max_drawdown") == m.max_drawdown
        assert await metric(page, scope, "trades") == str(m.trades)
        assert await metric(page, scope, "fees") == m.fees
        assert await metric(page, scope, "end_equity") == m.end_equity

    # The equity chart: the account's curve (and its drawdown) and trend's, point for point.
    chart = page.locator("#backtest-equity-chart")
    curves = {c.strategy: c for c in expected.curves}
    assert "total" in curves and len(curves["total"].points) >= 2
    await expect(chart).to_have_attribute("data-series", str(len(curves)))
    total = page.locator('#backtest-equity-chart-legend li[data-line="total"]')
    seconds = {p.ts_ns // 1_000_000_000 for p in curves["total"].points}
    await expect(total).to_have_attribute("data-points", str(len(seconds)))
    await expect(total).to_have_attribute("data-last", curves["total"].points[-1].equity)
    assert int(await chart.get_attribute("data-drawdown-points") or "0") == len(seconds)
    assert await chart.evaluate(PAINTED), "the equity chart drew nothing"
    await chart.screenshot(path=artifact("backtest-equity-chart"))

    # The fills on the price chart, a marker each: the line of their prices (the sim has no
    # candles of the recording's minutes: its market began later).
    trades = page.locator("#backtest-trades-chart")
    await expect(trades).to_have_attribute("data-symbol", recording.symbol, timeout=WAIT_MS)
    assert {f.symbol for f in expected.fills} == {recording.symbol}
    await expect(trades).to_have_attribute("data-fills", str(len(expected.fills)))
    await expect(trades).to_have_attribute("data-source", "fills")
    await expect(page.locator("#backtest-trades-note")).to_have_text(
        f"{len(expected.fills)} fills of {recording.symbol}"
    )
    # The round trips, each with its PnL, as the hub has them.
    trips = page.locator("#backtest-trips")
    await expect(trips).to_have_attribute("data-count", str(len(expected.trips)))
    pnls = await trips.locator("tr[data-pnl]").evaluate_all("rs => rs.map(r => r.dataset.pnl)")
    assert pnls == [t.pnl for t in expected.trips], pnls

    # Listed among the runs, done, with the account's figures.
    row = page.locator(f'#backtest-runs tr[data-run-id="{run_id}"]')
    await expect(row).to_have_attribute("data-status", "done", timeout=WAIT_MS)
    await expect(row).to_have_class("run open")
    figures = {m.strategy: m for m in expected.metrics}["total"]
    assert figures.trades == len(expected.trips)  # a trade is a round trip
    await expect(row.locator('[data-col="trades"]')).to_have_text(str(figures.trades))
    shown_return = page.locator('#backtest-metrics tr[data-strategy="total"] td[data-col="total_return"]')
    page_return = await shown_return.inner_text()
    await expect(row.locator('[data-col="total_return"]')).to_have_text(page_return)
    await page.screenshot(path=artifact("backtest-page"), full_page=True)

    # A reload keeps the run open.
    await page.reload()
    await expect(result).to_have_attribute("data-run-id", run_id, timeout=WAIT_MS)
    await expect(page.locator('#backtest-metrics tr[data-strategy="total"]')).to_have_count(1)


async def test_two_runs_are_compared_side_by_side(
    page: Page, mesh: StudioMesh, api_key: str, hub: ServiceProcess, recording: Recording
) -> None:
    await log_in(page, mesh, api_key)
    await open_backtest(page)
    # Other latencies, other runs (a run's id is its options'): the recording's, which trades;
    # then the mesh's last minute, replaying its session's recorded LLM answers (this mesh's
    # advisor has no endpoint: none are recorded) and sending its orders at their live twins'
    # recorded arrivals (the model's 250 ms for the rest).
    first = await run_recorded(page, recording, "5")
    live = await run_range(mesh)
    second = await run_in_page(page, live, "250", llm="recorded", latency="recorded")
    assert first != second
    runs = {r.run_id: r for r in (await _hub_call(hub, "ListRuns", bt.ListRunsRequest(limit=500))).runs}
    assert (runs[first].options.llm, runs[second].options.llm) == ("off", "recorded")
    assert (runs[first].options.latency, runs[second].options.latency) == ("model", "recorded")
    # The page shows each run's latency: the open result's options, then each compared run's.
    await expect(page.locator("#backtest-result")).to_have_attribute("data-run-id", second, timeout=WAIT_MS)
    await expect(page.locator("#backtest-result-head .who")).to_contain_text(
        "latency recorded (else 250.0/20.0 ms) · LLM recorded", timeout=WAIT_MS
    )
    # Its range is the sim's own: the price chart draws the sim's candles of it.
    trades = page.locator("#backtest-trades-chart")
    await expect(trades).to_have_attribute("data-symbol", SYMBOL, timeout=WAIT_MS)
    await expect(trades).to_have_attribute("data-source", "candles")
    assert int(await trades.get_attribute("data-candles") or "0") > 0
    compare = page.locator("#backtest-compare")
    for run_id in (first, second):
        row = page.locator(f'#backtest-runs tr[data-run-id="{run_id}"]')
        await expect(row).to_have_attribute("data-status", "done", timeout=WAIT_MS)
        await row.locator("input.compare-pick").check()
    await expect(compare).to_be_enabled()
    await expect(compare).to_have_attribute("data-picked", f"{first},{second}")
    await compare.click()
    view = page.locator("#backtest-compare-view")
    await expect(view).to_be_visible()
    await expect(view).to_have_attribute("data-runs", f"{first},{second}")
    await expect(page.locator("#backtest-compare-view .status")).to_have_text("2 runs", timeout=WAIT_MS)
    head = page.locator("#backtest-compare-head")
    await expect(head.locator(f'[data-run-id="{first}"] .who')).to_contain_text("latency 5.0/20.0 ms")
    await expect(head.locator(f'[data-run-id="{second}"] .who')).to_contain_text("latency recorded")

    # The metrics side by side: a column per run and strategy, each as the hub has it.
    for run_id in (first, second):
        expected = await hub_result(hub, run_id)
        if run_id == first:  # figures of trades, not all 0
            assert {m.strategy: m for m in expected.metrics}["total"].trades > 0
        for m in expected.metrics:
            at = f'[data-run-id="{run_id}"][data-strategy="{m.strategy}"]'
            await expect(page.locator(f"#backtest-compare-metrics th{at}")).to_have_count(1)
            for key, value in (("total_return", m.total_return), ("trades", str(m.trades))):
                cell = page.locator(f'#backtest-compare-metrics tr[data-metric="{key}"] td{at}')
                await expect(cell).to_have_attribute("data-value", value)
        # Its account curve on the one chart.
        total = next(c for c in expected.curves if c.strategy == "total")
        line = page.locator(f'#backtest-compare-chart-legend li[data-run-id="{run_id}"]')
        points = len({p.ts_ns // 1_000_000_000 for p in total.points})
        await expect(line).to_have_attribute("data-points", str(points))
    chart = page.locator("#backtest-compare-chart")
    await expect(chart).to_have_attribute("data-series", "2")
    assert await chart.evaluate(PAINTED), "the comparison chart drew nothing"
    await view.screenshot(path=artifact("backtest-compare"))


async def test_options_the_hub_refuses_are_shown_and_not_started(
    page: Page, mesh: StudioMesh, api_key: str, hub: ServiceProcess
) -> None:
    await log_in(page, mesh, api_key)
    await open_backtest(page)
    before = await _hub_call(hub, "ListRuns", bt.ListRunsRequest(limit=500))
    start_s, end_s = await run_range(mesh)
    # The page's own check: the range ends before it starts.
    await fill_form(page, end_s, start_s, "20")
    await page.click("#backtest-run")
    message = page.locator("#backtest-message")
    await expect(message).to_have_attribute("data-tone", "error")
    await expect(message).to_have_text("the range ends before it starts")
    # The hub's: a symbol the sim does not list.
    await fill_form(page, start_s, end_s, "20", symbols="NOPE/USDT")
    await page.click("#backtest-run")
    await expect(message).to_have_attribute("data-tone", "error", timeout=WAIT_MS)
    await expect(message).to_contain_text("not started: invalid argument")
    after = await _hub_call(hub, "ListRuns", bt.ListRunsRequest(limit=500))
    assert [r.run_id for r in after.runs] == [r.run_id for r in before.runs]


async def test_a_running_run_is_cancelled_from_its_progress(
    page: Page, mesh: StudioMesh, api_key: str, hub: ServiceProcess
) -> None:
    await log_in(page, mesh, api_key)
    await open_backtest(page)
    start_s, end_s = await run_range(mesh, CANCELLED_RANGE_S)
    # A latency of its own: a run of its own (not one of the tests before, done already).
    await fill_form(page, start_s, end_s, "77")
    await page.click("#backtest-run")
    progress = page.locator("#backtest-progress")
    await expect(page.locator("#backtest-message")).to_have_attribute("data-tone", "ok", timeout=WAIT_MS)
    run_id = await progress.get_attribute("data-run-id")
    assert run_id
    # Its 3 minutes of the sim's market are about 50,000 events, seconds of a run (its process,
    # forked from the hub's run server, starts at once): still going when Cancel is clicked.
    await expect(progress).to_have_attribute("data-status", "running")
    await page.click("#backtest-cancel")
    await expect(progress).to_have_attribute("data-status", "cancelled", timeout=WAIT_MS)
    await expect(page.locator("#backtest-message")).to_have_text(f"run {run_id} cancelled")
    await expect(page.locator("#backtest-cancel")).to_be_disabled()
    # As the hub has it. (A run cancelled before its process stored it is not listed by
    # ListRuns: the hub alone knows it, until it stops.)
    async with grpc.aio.insecure_channel(hub.address) as channel:
        stub: bt_grpc.BacktestAsyncStub = bt_grpc.BacktestStub(channel)
        request = bt.WatchProgressRequest(run_id=run_id)
        watched = stub.WatchProgress(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
        statuses = [m.progress.status async for m in watched]
    assert statuses[-1] == bt.RUN_STATUS_CANCELLED, statuses
