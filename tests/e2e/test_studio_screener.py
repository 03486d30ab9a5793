"""Studio's Screener page in a real browser against the real mesh (studio_mesh: its Screener runs
the shipped sim-movers and tests/e2e/screens/sim-seconds.toml, which ranks the sim's markets on 1s
bars every second): in the nav; the screens as the Screener's own ListScreens answers them, a
screen's definition shown; the chosen screen's rows equal to its GetResults (asked of the
Screener over gRPC, not through Studio) for the sim's symbols, its money metrics shown to the cent
with the exact value in their title; a new evaluation shown without a reload; sorting by a column
both ways."""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh
from tests.e2e.test_studio import WAIT_MS, sign_in
from tests.e2e.test_studio_market import rounded
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.screener.v1 import screener_pb2_grpc as sc_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SIM_SYMBOLS = {"BTC/USDT", "ETH/USDT", "SOL/USDT"}  # tests.integration.mesh.sim_config
SCREEN = "sim-seconds"
ROWS = "#screen-rows tr[data-symbol]"
# The money metrics as shown: each one's metric, text and exact value.
_MONEY = """() => [...document.querySelectorAll('#screen-rows td[data-metric] [data-exact]')]
  .map(e => [e.closest('td').dataset.metric, e.textContent, e.title])"""
# The page as shown: its evaluation's time, and each row's rank, symbol, score and metrics (a
# money metric's exact value, from its title).
_READ = """() => ({
  computed: document.querySelector('#screen-computed').dataset.computedNs,
  rows: [...document.querySelectorAll('#screen-rows tr[data-symbol]')].map(r => [
    Number(r.dataset.rank), r.dataset.symbol, Number(r.dataset.score), r.dataset.top === 'true',
    Object.fromEntries([...r.querySelectorAll('td[data-metric]')].filter(c => c.textContent !== '\u2013')
      .map(c => [c.dataset.metric, c.querySelector('[data-exact]')?.title ?? c.textContent])),
  ]),
})"""


async def screener(mesh: StudioMesh, method: str, request: Any) -> Any:
    """The Screener's own answer, asked of it directly."""
    assert mesh.screener is not None
    async with grpc.aio.insecure_channel(mesh.screener.address) as channel:
        stub: Any = sc_grpc.ScreenerStub(channel)
        return await getattr(stub, method)(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)


def as_shown(result: sc.ScreenResult) -> dict[str, Any]:
    rows = [
        [r.rank, r.symbol, r.score, r.rank <= result.top_n, {m.metric: m.value for m in r.metrics}]
        for r in result.ranked
    ]
    return {"computed": str(result.computed_ns), "rows": rows}


async def test_the_screener_page_shows_the_screens_and_a_screens_results_live_and_sorted(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    await sign_in(page, mesh, api_key)
    await page.click("#nav-screener")
    await expect(page.locator("#screener-page")).to_be_visible()
    await expect(page.locator("#nav-screener")).to_have_attribute("aria-current", "page")
    listed = (await screener(mesh, "ListScreens", sc.ListScreensRequest())).screens
    names = [s.name for s in listed]
    assert names == ["sim-movers", SCREEN]
    await expect(page.locator("#screens-list a[data-screen]")).to_have_count(len(names))
    # The first by name is shown first: the shipped screen, its definition as loaded.
    await expect(page.locator("#screen-definition")).to_have_attribute("data-screen", "sim-movers")
    await _check_definition(page, listed[0], "every 1 min")

    await page.click(f'#screens-list a[data-screen="{SCREEN}"]')
    await expect(page).to_have_url(re.compile(f"#/screener/{SCREEN}$"))
    await _check_definition(page, listed[1], "every 1 s")
    first = await _check_rows_equal_get_results(page, mesh)
    await page.evaluate("window.__screenerKept = true")  # gone if the page reloads
    await page.wait_for_function(
        f"() => BigInt(document.querySelector('#screen-computed').dataset.computedNs || 0) > {first}n",
        timeout=WAIT_MS,
    )
    assert await page.evaluate("window.__screenerKept === true"), "the page reloaded"
    await _check_sorting(page)


async def _check_definition(page: Page, screen: sc.ScreenDefinition, cadence: str) -> None:
    definition = page.locator("#screen-definition")
    await expect(definition).to_have_attribute("data-screen", screen.name)
    await expect(definition.locator('dd[data-key="top"]')).to_have_text(str(screen.top))
    await expect(definition.locator('dd[data-key="cadence_s"]')).to_contain_text(cadence)
    await expect(definition.locator('dd[data-key="filters"]')).to_have_text(", ".join(screen.filters))
    weights = ", ".join(f"{w.metric} \u00d7 {w.weight:g}" for w in screen.score.weights)
    await expect(definition.locator('dd[data-key="score"]')).to_contain_text(weights)
    await expect(definition.locator('dd[data-key="venue"]')).to_have_text("sim")


async def _check_rows_equal_get_results(page: Page, mesh: StudioMesh) -> int:
    """The page's rows are GetResults' when both show the same evaluation (a new one comes every
    second: read until they do), every sim symbol ranked. Its evaluation time, as shown."""

    async def agree() -> dict[str, Any] | None:
        answer = await screener(mesh, "GetResults", sc.GetResultsRequest(screen=SCREEN))
        shown = await page.evaluate(_READ)
        if not answer.HasField("result") or shown["computed"] != str(answer.result.computed_ns):
            return None
        wanted = as_shown(answer.result)
        return shown if shown == wanted and {r[1] for r in shown["rows"]} == SIM_SYMBOLS else None

    shown = await until(agree, 60, 0.1, "the page's rows equal to the Screener's GetResults")
    assert [r[3] for r in shown["rows"]] == [True, True, False]  # the screen's top 2
    # Its filter's bar_volume is money (in USDT): to the cent, the exact value on hover.
    money = await page.evaluate(_MONEY)
    assert sorted(m[0] for m in money) == ["bar_volume"] * len(SIM_SYMBOLS), money
    assert all(text == rounded(exact, "0.01") for _, text, exact in money), money
    await expect(page.locator("#screen-results .status")).to_have_text("live")
    await expect(page.locator("#screen-computed")).to_contain_text(f"{SCREEN} on sim: evaluated at")
    return int(shown["computed"])


async def _check_sorting(page: Page) -> None:
    """By score one way then the other (the order kept as new evaluations redraw the rows), then
    by symbol."""
    header = page.locator('#screen-results-table th:has(button[data-sort="score"])')
    await page.click('#screen-results-table button[data-sort="score"]')
    await expect(header).to_have_attribute("aria-sort", "ascending")
    scores = [row[2] for row in (await page.evaluate(_READ))["rows"]]
    assert len(scores) == len(SIM_SYMBOLS) and scores == sorted(scores), scores
    await page.click('#screen-results-table button[data-sort="score"]')
    await expect(header).to_have_attribute("aria-sort", "descending")
    scores = [row[2] for row in (await page.evaluate(_READ))["rows"]]
    assert scores == sorted(scores, reverse=True), scores
    await page.click('#screen-results-table button[data-sort="symbol"]')
    symbols = [row[1] for row in (await page.evaluate(_READ))["rows"]]
    assert symbols == sorted(SIM_SYMBOLS), symbols
