"""Studio's Strategies page in a real browser against a real mesh with a real detector running the
example strategies (see studio_mesh): the patch list live from StreamStrategyStatus, a patch's
graph with live probe values, parameter edits with the detector's field violations, pause and
activate, signal markers on the market chart with their rules on hover, and the signal timeline;
and a second detector instance (its own process, its own strategy), picked on the page: its
patches, its timeline and its signals on the chart.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import ROOT, StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, boxes_seen, log_in, open_market, watch_boxes

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EXAMPLES = [
    "trend/sim/BTC/USDT",
    "trend/sim/ETH/USDT",
    "mean_reversion/sim/BTC/USDT",
    "order_flow/sim/BTC/USDT",
]
TREND = "trend/sim/BTC/USDT"
# The examples warm up from live 1s bars on a sim that has just started, then signal: the
# detector's promise is signals within a minute or so of start.
WARM_MS = 90_000
SIGNAL_MS = 120_000
STRATEGIES = ROOT / "trademesh" / "core" / "detector" / "strategies"
SECOND = "detector-b"
# The second detector's strategy: every taker buy after a sell is a signal (a few a second on the
# sim), from live trades at once: no warm-up.
TAKER_BUYS = """
id = "taker_buys"
description = "A taker buy after a sell"
venues = ["sim"]
symbols = ["BTC/USDT"]
threshold = 1.0
cables = [
    "trades.trade -> fields.trade",
    "fields.signed_size -> bought.a",
    "bought.out -> score.rule_1",
    "score.signal -> emit.signal",
]
modules = [
    { id = "trades", type = "trades" },
    { id = "fields", type = "trade_fields" },
    { id = "bought", type = "compare", params = { op = ">", value = 0.0 } },
    { id = "score", type = "weighted_score", params = { direction = "long", name_1 = "taker_bought" } },
    { id = "emit", type = "signal" },
]
"""
TAKER_BUYS_PATCH = "taker_buys/sim/BTC/USDT"


def strategy_graph(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """(module ids, cables as (from port, to port)) of a strategy file."""
    data = tomllib.loads(path.read_text())
    modules = {m["id"] for m in data["modules"]}
    cables = {tuple(part.strip() for part in c.split("->")) for c in data["cables"]}
    return modules, {(a, b) for a, b in cables}


@pytest.fixture(scope="module")
def second_detector(mesh: StudioMesh) -> Iterator[str]:
    """A second detector process, registered with the gateway as detector-b, running TAKER_BUYS;
    stopped with the module: the mesh is the worker's, and its signals must not reach the modules
    after this one (the advisor's page expects the example strategies' decisions only)."""
    path = mesh.directory / "taker_buys.toml"
    path.write_text(TAKER_BUYS)
    detector = mesh.start_detector("--instance", SECOND, "--strategy", str(path))
    yield SECOND
    detector.terminate()


async def markers(page: Page) -> list[str]:
    """The strategies of the chart's signal markers."""
    found: list[str] = await page.locator("#chart .signal-marker").evaluate_all(
        "ms => ms.map(m => m.dataset.strategy)"
    )
    return found


async def open_strategies(page: Page, mesh: StudioMesh, key: str, patch_id: str | None = None) -> None:
    await log_in(page, mesh, key)
    await page.click("#nav-strategies")
    await expect(page.locator("#strategies-page")).to_be_visible()
    await expect(page.locator("#trading-page")).to_be_hidden()
    if patch_id is not None:
        link = page.locator(f'#patches tr[data-patch-id="{patch_id}"] a')
        await link.click(timeout=WAIT_MS)
        await expect(page.locator("#patch-view")).to_have_attribute("data-patch-id", patch_id)
        await expect(page.locator("#patch-graph")).to_be_visible(timeout=WAIT_MS)


async def test_the_strategies_page_lists_the_example_patches_going_active(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    await open_strategies(page, mesh, api_key)
    for patch_id in EXAMPLES:
        row = page.locator(f'#patches tr[data-patch-id="{patch_id}"]')
        await expect(row).to_have_attribute("data-state", "active", timeout=WARM_MS)
        await expect(row.locator('[data-col="warm"]')).to_have_text("yes", timeout=WAIT_MS)
        strategy, venue, *symbol = patch_id.split("/")
        await expect(row.locator('[data-col="strategy"]')).to_have_text(strategy)
        await expect(row.locator('[data-col="market"]')).to_have_text(f"{venue} {'/'.join(symbol)}")
        assert re.fullmatch(r"\d+", await row.locator('[data-col="version"]').inner_text())
    # Status comes once a second: evaluations/s of a busy patch turn non-zero.
    rate = page.locator(f'#patches tr[data-patch-id="{TREND}"] [data-col="rate"]')
    await expect(rate).to_have_text(re.compile(r"^(?!0\.0$)\d+(\.\d)?$"), timeout=WAIT_MS)
    await expect(page.locator("#strategies .status")).to_have_text("live")
    # Back to trading: the market is still there.
    await page.click("#nav-trading")
    await expect(page.locator("#health")).to_be_visible()
    await expect(page.locator("#strategies-page")).to_be_hidden()


async def test_the_patch_view_draws_every_module_and_cable_with_live_probe_values(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    await open_strategies(page, mesh, api_key, TREND)
    modules, cables = strategy_graph(STRATEGIES / "trend.toml")
    drawn = page.locator("#patch-graph .module")
    await expect(drawn).to_have_count(len(modules), timeout=WAIT_MS)
    assert set(await drawn.evaluate_all("gs => gs.map(g => g.dataset.moduleId)")) == modules
    orders = await drawn.evaluate_all("gs => gs.map(g => Number(g.dataset.order))")
    assert sorted(orders) == list(range(1, len(modules) + 1)), "each module has its place in the order"
    paths = page.locator("#patch-graph path.cable")
    ends = await paths.evaluate_all("ps => ps.map(p => [p.dataset.from, p.dataset.to])")
    assert {(a, b) for a, b in ends} == cables
    # Cables run forward: a cable's source box is left of its target's.
    lefts = dict(await drawn.evaluate_all("gs => gs.map(g => [g.dataset.moduleId, g.getBBox().x])"))
    assert all(lefts[a.split(".")[0]] < lefts[b.split(".")[0]] for a, b in cables)
    # Live values: the close on its cables is a number, and it changes as bars close.
    close = page.locator('#patch-graph text.probe[data-port="ohlcv.close"]').first
    await expect(close).to_have_attribute("data-value", re.compile(r"^\d+(\.\d+)?$"), timeout=WARM_MS)
    first = await close.get_attribute("data-value")
    await expect(close).not_to_have_attribute("data-value", first or "", timeout=WAIT_MS)
    trend_up = page.locator('#patch-graph text.probe[data-port="trend_up.out"]')
    await expect(trend_up).to_have_attribute("data-value", re.compile(r"^(true|false)$"), timeout=WAIT_MS)
    await page.locator("#patch-graph").screenshot(path=artifact("patch-graph-trend"))


async def test_a_signal_shows_on_the_chart_with_its_rules_and_in_its_patch_timeline(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    await log_in(page, mesh, api_key)
    await open_market(page, "1m")  # 1m: markers stay put while hovered
    # The newest marker: drawn last, so no marker of a neighbouring candle lies over it.
    marker = page.locator("#chart .signal-marker").last
    await expect(marker).to_be_visible(timeout=SIGNAL_MS)
    direction = await marker.get_attribute("data-direction")
    assert direction in {"long", "short", "flat"}
    assert 0 <= float(await marker.get_attribute("data-conviction") or "-1") <= 1
    strategy = await marker.get_attribute("data-strategy")
    assert strategy in {"trend", "mean_reversion", "order_flow"}
    await marker.hover()
    tooltip = page.locator("#chart .signal-tooltip")
    await expect(tooltip).to_be_visible()
    await expect(tooltip).to_contain_text(strategy or "")
    rules = tooltip.locator("tr[data-rule]")
    assert await rules.count() >= 2
    assert await tooltip.locator('tr[data-fired="true"]').count() >= 1, "a signal has rules that fired"
    fired = await tooltip.locator('tr[data-fired="true"]').evaluate_all("rs => rs.map(r => r.dataset.rule)")
    await page.locator("#chart").screenshot(path=artifact("chart-signal-tooltip"))

    # Its patch's timeline: a row per rule, a mark where each fired.
    trace = "#recent-signals li button.trace-link"
    await watch_boxes(page, [trace])
    await page.goto(f"{mesh.url}/#/strategies/{quote(f'{strategy}/sim/BTC/USDT', safe='')}")
    timeline = page.locator("#signal-timeline")
    await expect(timeline).not_to_have_attribute("data-signals", "0", timeout=WAIT_MS)
    for rule in fired:
        row = timeline.locator(f'.rule-row[data-rule="{rule}"]')
        await expect(row).to_be_visible()
        assert int(await row.get_attribute("data-fired") or "0") >= 1
        assert await row.locator(".fire").count() >= 1
    # The newest signal's trace button: where it showed first it stayed, the patch's graph and
    # parameters drawn (they came after it, and moved it down the page by 900 px).
    await expect(page.locator("#patch-params fieldset").first).to_be_visible()
    seen = await boxes_seen(page)
    assert len(seen[trace]) == 1, seen


async def test_params_are_edited_with_violations_shown_and_pause_and_activate_work(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    buttons = ["#patch-pause", "#patch-activate"]
    await watch_boxes(page, buttons)
    await open_strategies(page, mesh, api_key, TREND)
    state = page.locator("#patch-state")
    version = page.locator("#patch-version")
    await expect(state).to_have_attribute("data-state", "active", timeout=WARM_MS)
    await page.click("#patch-pause")
    await expect(state).to_have_attribute("data-state", "paused", timeout=WAIT_MS)
    await expect(page.locator(f'#patches tr[data-patch-id="{TREND}"]')).to_have_attribute(
        "data-state", "paused", timeout=WAIT_MS
    )
    await expect(page.locator("#patch-activate")).to_be_enabled()
    await expect(page.locator("#patch-pause")).to_be_disabled()

    before = int(await version.get_attribute("data-version") or "0")
    period = page.locator('input[name="fast.period"]')
    await period.fill("8")
    await page.click('#patch-params fieldset[data-module-id="fast"] button.set-params')
    await expect(version).to_have_attribute("data-version", str(before + 1), timeout=WAIT_MS)
    await expect(page.locator('input[name="fast.period"]')).to_have_value("8")

    # Out of range: the detector's field violation under the input, the version unchanged.
    await page.locator('input[name="fast.period"]').fill("0")
    await page.click('#patch-params fieldset[data-module-id="fast"] button.set-params')
    violation = page.locator('#patch-params .violation[data-field="fast.period"]')
    await expect(violation).to_contain_text("out of range", timeout=WAIT_MS)
    await expect(page.locator('#patch-params fieldset[data-module-id="fast"] .message')).to_contain_text(
        "invalid argument"
    )
    await expect(version).to_have_attribute("data-version", str(before + 1))
    await page.screenshot(path=artifact("patch-param-violation"), full_page=True)

    # Back to the file's value, then active again (warmed from the venue's candles).
    await page.locator('input[name="fast.period"]').fill("12")
    await page.click('#patch-params fieldset[data-module-id="fast"] button.set-params')
    await expect(version).to_have_attribute("data-version", str(before + 2), timeout=WAIT_MS)
    await page.click("#patch-activate")
    await expect(state).to_have_attribute("data-state", "active", timeout=WAIT_MS)
    await expect(page.locator("#patch-message")).to_have_text("activated")
    await expect(page.locator(f'#patches tr[data-patch-id="{TREND}"]')).to_have_attribute(
        "data-state", "active", timeout=WAIT_MS
    )
    # The buttons kept their place from the patch's opening on, through its states and versions.
    seen = await boxes_seen(page)
    assert all(len(seen[button]) == 1 for button in buttons), seen


async def test_a_second_detector_is_picked_and_its_patches_timeline_and_chart_markers_follow(
    page: Page, mesh: StudioMesh, api_key: str, second_detector: str
) -> None:
    await open_strategies(page, mesh, api_key)
    picker = page.locator("#detector-picker")
    await expect(picker.locator("option")).to_have_count(2, timeout=WAIT_MS)
    assert await picker.locator("option").all_inner_texts() == ["detector", second_detector]
    await expect(picker).to_have_value("detector")  # the first registered, by default
    await expect(page.locator(f'#patches tr[data-patch-id="{TREND}"]')).to_be_visible(timeout=WAIT_MS)

    await picker.select_option(second_detector)
    await expect(page).to_have_url(re.compile(rf"#/strategies\?detector={second_detector}$"))
    row = page.locator(f'#patches tr[data-patch-id="{TAKER_BUYS_PATCH}"]')
    await expect(row).to_have_attribute("data-state", "active", timeout=WAIT_MS)
    await expect(page.locator("#patches tr[data-patch-id]")).to_have_count(1)  # its patches only
    await expect(row.locator('[data-col="signal"]')).to_contain_text("long", timeout=WAIT_MS)
    await page.locator("#strategies").screenshot(path=artifact("strategies-second-detector"))

    await row.locator("a").click()
    await expect(page.locator("#patch-view")).to_have_attribute("data-detector", second_detector)
    timeline = page.locator("#signal-timeline")
    await expect(timeline).not_to_have_attribute("data-signals", "0", timeout=WAIT_MS)
    await expect(timeline.locator('.rule-row[data-rule="taker_bought"] .fire').first).to_be_attached()
    await page.reload()  # the choice is in the URL
    await expect(page.locator("#patch-view")).to_have_attribute("data-detector", second_detector)
    await expect(picker).to_have_value(second_detector, timeout=WAIT_MS)

    # The trading page's chart shows the chosen detector's signals, and only those.
    await page.click("#nav-trading")
    await open_market(page, "1m")
    chart = page.locator("#chart")
    await expect(chart).to_have_attribute("data-signals-detector", second_detector)
    await expect(page.locator("#chart .signal-marker").first).to_be_attached(timeout=WAIT_MS)
    assert set(await markers(page)) == {"taker_buys"}

    await page.click("#nav-strategies")
    await page.locator("#detector-picker").select_option("detector")
    await expect(page.locator(f'#patches tr[data-patch-id="{TREND}"]')).to_be_visible(timeout=WAIT_MS)
    await page.click("#nav-trading")
    await expect(chart).to_have_attribute("data-signals-detector", "detector")
    await expect(chart).to_have_attribute("data-signals-status", "live", timeout=WAIT_MS)
    assert "taker_buys" not in await markers(page)
