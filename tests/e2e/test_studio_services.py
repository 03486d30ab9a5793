"""Studio's Services page in a real browser against the real mesh (studio_mesh): every
registered service listed with its health SERVING and its version, the sim venue's events/s
non-zero, and the page following the gateway's board live: a service started appears, and
stopped, leaves."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh
from tests.e2e.test_studio import WAIT_MS, log_in
from trademesh.core.platform.rpc.registration import package_version

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# What studio_mesh starts for every module (the others add theirs).
MESH = ("gateway", "sim", "ingest", "recorder", "bars", "bridge", "detector", "overwatch")
EXTRA = "backtester-board"
# A positive number as the page writes it (String of a double): not "0".
NON_ZERO = re.compile(r"^(?!0$)\d+(\.\d+)?(e[-+]?\d+)?$")


def row(page: Page, name: str) -> str:
    return f'#services-rows tr[data-service="{name}"]'


async def test_the_services_page_lists_the_mesh_serving_with_the_venues_events_and_follows_it_live(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    await log_in(page, mesh, api_key)
    await page.click("#nav-services")
    await expect(page.locator("#services-page")).to_be_visible()
    for name in MESH:
        await expect(page.locator(row(page, name))).to_have_attribute(
            "data-health", "serving", timeout=WAIT_MS
        )
    await expect(page.locator(f"{row(page, 'sim')} td.version")).to_have_text(package_version())
    events = page.locator(f'{row(page, "sim")} td[data-figure="events"]')
    await expect(events).to_have_attribute("data-value", NON_ZERO, timeout=WAIT_MS)
    assert float(await events.get_attribute("data-value") or 0) > 0
    await expect(page.locator("#services .status")).to_have_text("live")

    extra = await asyncio.to_thread(
        mesh.processes.start, "backtester", "--database-url", mesh.database_url, "--instance", EXTRA
    )
    try:
        await expect(page.locator(row(page, EXTRA))).to_have_attribute(
            "data-health", "serving", timeout=WAIT_MS
        )
    finally:
        await asyncio.to_thread(extra.terminate)
    await expect(page.locator(row(page, EXTRA))).to_have_count(0, timeout=WAIT_MS)
    await expect(page.locator(row(page, "sim"))).to_have_count(1)
