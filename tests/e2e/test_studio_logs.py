"""Studio's Logs page in a real browser against the real mesh (see studio_mesh): every process logs
to the bus's `logs` stream (LogHub), the gateway tails it (trademesh.logs.v1.Logs/Tail) on the
tab's Mux stream. The mesh's own lines (the sim venue's start-up line), the filters (by service,
level, text, trace id; in the URL), following a line logged after the page opened, pause holding
new lines (counted) until resume, and a trace id's link, in a line or in the trace view of any
page, opening the page on its lines.

The lines the tests provoke come from a probe logger of this process writing through the same
stream handler the services use (as tests/integration/test_loghub.py does), as service `probe`,
each test with its own mark.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh
from tests.e2e.test_studio import POLICIES, TICK, WAIT_MS, best_prices, log_in, open_market, place
from trademesh.core.platform.logs.setup import log_fields, record_fields
from trademesh.core.platform.logs.stream import StreamLogHandler, StreamSettings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROWS = "#log-lines tr"
MESSAGES = f"{ROWS} td[data-col=message]"


@pytest.fixture
def probe(mesh: StudioMesh) -> Iterator[logging.Logger]:
    """A logger of this process whose lines go to the mesh's `logs` stream as service `probe`."""
    handler = StreamLogHandler(StreamSettings(mesh.redis_url), "probe", "p1", record_fields)
    logger = logging.getLogger(f"tests.e2e.logs.{uuid.uuid4().hex[:6]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()


def mark() -> str:
    return f"mark-{uuid.uuid4().hex[:10]}"


async def open_logs(page: Page, mesh: StudioMesh, key: str, query: str = "") -> None:
    await log_in(page, mesh, key)
    await page.goto(f"{mesh.url}/#/logs{query}")
    await expect(page.locator("#logs-page")).to_be_visible()
    await expect(page.locator("#logs .status")).to_have_text("live", timeout=WAIT_MS)


async def messages(page: Page) -> list[str]:
    """The shown lines' messages, newest first."""
    return await page.locator(MESSAGES).all_inner_texts()


async def test_the_logs_page_shows_the_mesh_lines_and_filters_by_service_level_and_text(
    page: Page, mesh: StudioMesh, api_key: str, probe: logging.Logger
) -> None:
    # The sim venue's start-up line (another module may have started other venues meanwhile).
    await open_logs(page, mesh, api_key, "?service=venue&instance=sim&text=serving%20gRPC")
    await expect(page.locator(MESSAGES).first).to_contain_text("serving gRPC")
    shown = await page.locator(ROWS).evaluate_all(
        "rows => rows.map(r => r.querySelector('[data-col=service]').textContent + '/' +"
        " r.querySelector('[data-col=instance]').textContent)"
    )
    assert set(shown) == {"venue/sim"}, shown
    await expect(page.locator("#logs-instance")).to_have_value("sim")

    # The form's service filter goes into the URL, and only that service's lines show.
    await page.fill("#logs-text", "")
    await page.fill("#logs-instance", "")
    await page.fill("#logs-service", "ingest")
    await page.press("#logs-service", "Enter")
    await expect(page).to_have_url(f"{mesh.url}/#/logs?service=ingest")
    # The page takes the new URL's filters on its hashchange: until then the old lines show.
    only_ingest = "cells => cells.length > 0 && cells.every(c => c.textContent === 'ingest')"
    cells = f"{ROWS} td[data-col=service]"
    await page.wait_for_function(
        f"() => ({only_ingest})([...document.querySelectorAll({cells!r})])", timeout=WAIT_MS
    )

    # A text filter narrows to the lines naming it; a minimum level to the lines at it and above.
    word = mark()
    probe.info("%s routine", word)
    probe.warning("%s unusual", word)
    probe.info("%s other", mark())
    await page.goto(f"{mesh.url}/#/logs?service=probe&text={word}")
    await expect(page.locator(MESSAGES)).to_have_text([f"{word} unusual", f"{word} routine"])
    await page.select_option("#logs-level", "WARNING")
    await expect(page).to_have_url(f"{mesh.url}/#/logs?service=probe&level=WARNING&text={word}")
    await expect(page.locator(MESSAGES)).to_have_text([f"{word} unusual"])
    await expect(page.locator(f"{ROWS} td[data-col=level]")).to_have_text(["warning"])

    # Not following: one look at the newest lines, no stream kept open.
    await page.uncheck("#logs-follow")
    await expect(page).to_have_url(f"{mesh.url}/#/logs?service=probe&level=WARNING&text={word}&follow=0")
    await expect(page.locator("#logs .status")).to_have_text(re.compile("^not following"))
    await expect(page.locator(MESSAGES)).to_have_text([f"{word} unusual"])


async def test_following_shows_new_lines_and_pause_holds_them_until_resume(
    page: Page, mesh: StudioMesh, api_key: str, probe: logging.Logger
) -> None:
    word = mark()
    await open_logs(page, mesh, api_key, f"?service=probe&text={word}")
    await expect(page.locator(ROWS)).to_have_count(0)
    probe.info("%s first, logged after the page opened", word)
    await expect(page.locator(MESSAGES)).to_have_text([f"{word} first, logged after the page opened"])

    await page.click("#logs-pause")
    await expect(page.locator("#logs-pause")).to_have_text("Resume")
    probe.info("%s second, while paused", word)
    # The line reached the page (counted as waiting) and is not shown.
    await expect(page.locator("#logs-waiting")).to_have_text("paused: 1 new line waiting")
    assert await messages(page) == [f"{word} first, logged after the page opened"]

    await page.click("#logs-pause")
    await expect(page.locator("#logs-waiting")).to_be_hidden()
    await expect(page.locator(MESSAGES)).to_have_text(
        [f"{word} second, while paused", f"{word} first, logged after the page opened"]
    )


async def test_the_page_keeps_the_newest_2000_lines(
    page: Page, mesh: StudioMesh, api_key: str, probe: logging.Logger
) -> None:
    word = mark()
    await open_logs(page, mesh, api_key, f"?service=probe&text={word}")
    # In bursts the page keeps up with: a tab far behind has its stream cut and resubscribed
    # (the gateway's Mux bounds what waits for a slow client), which would skip lines.
    for start in range(0, 2100, 300):
        for n in range(start, start + 300):
            probe.info("%s bulk %d", word, n)
        await expect(page.locator(MESSAGES).first).to_have_text(f"{word} bulk {start + 299}")
    await expect(page.locator(ROWS)).to_have_count(2000)
    await expect(page.locator(MESSAGES).last).to_have_text(f"{word} bulk 100")
    await expect(page.locator("#logs-count")).to_have_text("2000 lines shown (the newest 2000 kept)")


async def test_a_trace_id_links_to_its_log_lines(
    page: Page, mesh: StudioMesh, api_key: str, probe: logging.Logger
) -> None:
    word = mark()
    trace_id = uuid.uuid4().hex
    probe.info("%s before the call", word)
    with log_fields(trace_id=trace_id, venue="sim"):
        probe.info("%s traced one", word)
        probe.warning("%s traced two", word)
    await open_logs(page, mesh, api_key, f"?service=probe&text={word}")
    await expect(page.locator(ROWS)).to_have_count(3)
    link = page.locator(f"{ROWS} a.log-trace").first
    await expect(link).to_have_attribute("href", f"#/logs?trace={trace_id}")
    await link.click()
    await expect(page).to_have_url(f"{mesh.url}/#/logs?trace={trace_id}")
    await expect(page.locator("#logs-trace")).to_have_value(trace_id)
    await expect(page.locator(MESSAGES)).to_have_text([f"{word} traced two", f"{word} traced one"])


async def test_the_trace_view_of_any_page_links_to_the_log_lines_naming_its_id(
    page: Page, mesh: StudioMesh, api_key: str, probe: logging.Logger
) -> None:
    order_id = f"order-{uuid.uuid4().hex[:12]}"
    probe.warning("inspector: sim refused %s: price band", order_id)
    await log_in(page, mesh, api_key)
    # An id as the pages show one (a fill's, an order's, a signal's: data-trace-id opens its
    # trace); the mesh here runs no ledger, so the trace itself answers an error: the link stays.
    await page.evaluate(
        """id => {
          const b = document.createElement("button");
          b.id = "probe-trace"; b.dataset.traceId = id; b.textContent = "trace";
          document.querySelector("#trading-page").append(b);
        }""",
        order_id,
    )
    await page.click("#probe-trace")
    await expect(page.locator("#trace-view")).to_be_visible()
    await expect(page.locator("#trace-logs")).to_have_attribute("href", f"#/logs?text={order_id}")
    await page.click("#trace-logs")
    await expect(page.locator("#trace-view")).to_be_hidden()
    await expect(page).to_have_url(f"{mesh.url}/#/logs?text={order_id}")
    await expect(page.locator(MESSAGES)).to_have_text([f"inspector: sim refused {order_id}: price band"])


@pytest.fixture
async def ticket_inspector(mesh: StudioMesh) -> AsyncIterator[None]:
    """The inspector the order ticket submits to (as test_studio's), closed after the test."""
    await asyncio.to_thread(mesh.start_inspector, POLICIES)
    try:
        yield
    finally:
        try:
            await mesh.close_all("e2e: the logs test ends")
        finally:
            await asyncio.to_thread(mesh.stop_inspector)


@pytest.mark.usefixtures("ticket_inspector")
async def test_an_order_from_the_ticket_links_to_its_traces_lines_at_the_inspector_and_the_venue(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    """The ticket sends its command with a `traceparent`: the gateway passes it on, the inspector
    logs its verdict under that trace and passes it on to the venue, which logs the order; the
    ticket's link opens the Logs page on exactly those lines."""
    await log_in(page, mesh, api_key)
    await open_market(page, "1m")
    bid, _ = await best_prices(page)
    # A limit buy 2% under the best bid rests: no fill needed, the venue's line is its placing.
    await place(page, "buy", "limit", "0.001", str((bid * Decimal("0.98") // TICK) * TICK))
    link = page.locator("#ticket-trace")
    await expect(link).to_be_visible()
    trace_id = await link.get_attribute("data-trace")
    assert trace_id is not None and re.fullmatch(r"[0-9a-f]{32}", trace_id), trace_id
    await link.click()
    await expect(page).to_have_url(f"{mesh.url}/#/logs?trace={trace_id}")
    services = page.locator(f"{ROWS} td[data-col=service]")
    await expect(services).to_have_count(2, timeout=WAIT_MS)
    # The page shows lines as the stream took them: each process sends its own, so the venue's
    # line (logged first) may arrive after the inspector's. One line of each, whatever the order.
    by_service = dict(zip(await services.all_inner_texts(), await messages(page), strict=True))
    assert sorted(by_service) == ["inspector", "venue"], by_service
    assert "manual intent" in by_service["inspector"] and "ALLOW" in by_service["inspector"], by_service
    assert by_service["venue"].startswith("sim: order ") and " BUY 0.001" in by_service["venue"], by_service
