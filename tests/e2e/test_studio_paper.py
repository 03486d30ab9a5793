"""A paper venue in Studio, in a real browser against the real mesh (studio_mesh): paper OKX swaps
(`trademesh venue okx-swap --paper --replay <capture>`) registered beside the sim carries the
PAPER mark on the health board and in the order ticket once it is selected; the sim carries none.
Studio trades on it as on the sim: an order from the ticket fills through the inspector. The
Accounts page lists it as a paper account (the sim as a sim one) with its paper balances."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, log_in, place
from tests.integration.replay import capture_files

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PAPER = "okx-swap"


def card(page: Page, venue: str) -> str:
    return f'#health article.venue[data-venue="{venue}"]'


async def test_a_paper_venue_is_marked_paper_on_the_health_board_and_in_the_order_ticket(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    files = [str(path) for path in capture_files("OKX_SWAP")]
    venue = await asyncio.to_thread(mesh.processes.start, "venue", PAPER, "--paper", "--replay", *files)
    # The inspector (for the ticket, below) starts while the page logs in and reads the board.
    inspector = asyncio.create_task(asyncio.to_thread(mesh.start_inspector))
    try:
        await log_in(page, mesh, api_key)
        paper = page.locator(card(page, PAPER))
        await expect(paper).to_have_attribute("data-paper", "true", timeout=WAIT_MS)
        await expect(paper.locator("h3 .badge.paper")).to_have_text("PAPER")
        await expect(page.locator(card(page, "sim"))).to_have_attribute("data-paper", "false")
        await expect(page.locator(f"{card(page, 'sim')} .badge.paper")).to_have_count(0)

        await expect(page.locator(f'#venue-select option[value="{PAPER}"]')).to_have_count(1, timeout=WAIT_MS)
        await page.select_option("#venue-select", PAPER)
        await expect(page.locator("#ticket h3 #ticket-paper")).to_have_text("PAPER", timeout=WAIT_MS)
        await expect(page.locator("#ticket h3")).to_contain_text("BTC/USDT:USDT")
        await page.screenshot(path=artifact("paper-venue"))

        # Studio trades on a paper venue as on the sim: the ticket's intent through the inspector,
        # matched against the recorded book, its fill in the fills table.
        await inspector
        await expect(page.locator("#trading .status")).to_have_text("live", timeout=WAIT_MS)
        order_id = await place(page, "buy", "market", "0.01")
        fill = page.locator(f'#fills tr[data-order-id="{order_id}"]')
        await expect(fill.first).to_be_visible(timeout=WAIT_MS)
        await expect(fill.first).to_contain_text("taker")
        await page.screenshot(path=artifact("paper-venue-filled"))

        await page.select_option("#venue-select", "sim")
        await expect(page.locator("#ticket h3")).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#ticket-paper")).to_have_count(0)

        # The Accounts page: the paper venue is an account of okx-swap in PAPER mode, its balances
        # streamed by the paper venue itself (the paper account's, after the fill).
        await page.click("#nav-accounts")
        row = page.locator(f'#accounts-rows tr[data-venue="{PAPER}"]')
        await expect(row).to_have_attribute("data-mode", "paper", timeout=WAIT_MS)
        await expect(row).to_have_attribute("data-exchange", PAPER)
        await expect(row.locator(".badge.mode-paper")).to_have_text("PAPER")
        await expect(page.locator('#accounts-rows tr[data-venue="sim"]')).to_have_attribute(
            "data-mode", "sim"
        )
        balances = page.locator(
            f'#accounts-cards article[data-venue="{PAPER}"] .account-balances tr[data-asset]'
        )
        await expect(balances.first).to_be_visible(timeout=WAIT_MS)
        # No ledger runs in this module: each card says so where its books would be.
        books = page.locator(f'#accounts-cards article[data-venue="{PAPER}"] tbody.account-pnl')
        await expect(books).to_contain_text("ledger:", timeout=WAIT_MS)
        await page.screenshot(path=artifact("paper-venue-accounts"))
    finally:
        await asyncio.wait([inspector])  # its start ended, whether it failed
        await asyncio.to_thread(mesh.stop_inspector)
        await asyncio.to_thread(venue.terminate)
