"""Two accounts at the sim in Studio (docs/accounts.md): `trademesh venue sim --account desk-a`
and `--account desk-b`, each its own process with its own balances, registered with the mesh's
gateway. The trading page's venue picker lists both accounts, and the Ledger page shows each
account's books apart: both listed with their own balances, and the venue filter keeping one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import grpc
import pytest
from playwright.async_api import Page, expect

from core.foundations.process import ServiceProcess
from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, log_in
from tests.e2e.test_studio_ledger import open_ledger
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
OPENING = {"sim.desk-a": Decimal(50000), "sim.desk-b": Decimal(20000)}


async def _opened(ledger: ServiceProcess) -> bool | None:
    """Both accounts' books opened (their USDT at the venue), as the ledger itself answers."""
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        answer = await lg_grpc.LedgerStub(channel).GetBalances(
            lg.GetBalancesRequest(ledger=lg.LEDGER_KIND_CASH), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    cash = {
        b.account.venue: Decimal(b.balance)
        for b in answer.balances
        if b.account.code_name == "venue_cash" and b.account.asset == "USDT"
    }
    return True if all(cash.get(venue) == amount for venue, amount in OPENING.items()) else None


@pytest.fixture(scope="module")
async def accounts(mesh: StudioMesh) -> AsyncIterator[ServiceProcess]:
    """The two account sims and the mesh's ledger (which follows them through the registry) for
    this module; both sims and the ledger stopped when it ends (the later modules see the one
    sim of the mesh)."""
    sims: list[ServiceProcess] = []
    for account, usdt in (("desk-a", 50000), ("desk-b", 20000)):
        path = mesh.directory / f"sim-{account}.toml"
        path.write_text(f'tick_interval_ms = 50\n[balances]\nUSDT = "{usdt}"\n')
        sims.append(
            await asyncio.to_thread(
                mesh.processes.start, "venue", "sim", "--account", account, "--config", str(path)
            )
        )
    ledger = await asyncio.to_thread(mesh.start_ledger)
    try:
        await until(lambda: _opened(ledger), 60, 0.2, "both accounts' books opened")
        yield ledger
    finally:
        await asyncio.to_thread(mesh.stop_ledger)
        for sim in sims:
            await asyncio.to_thread(sim.terminate)


async def test_studio_lists_both_accounts_with_their_own_balances(
    page: Page, mesh: StudioMesh, api_key: str, accounts: ServiceProcess
) -> None:
    await log_in(page, mesh, api_key)
    # The trading page's venue picker: each account is a venue of its own.
    for venue in OPENING:
        await expect(page.locator(f'#venue-select option[value="{venue}"]')).to_have_count(1, timeout=WAIT_MS)

    await open_ledger(page)
    for venue, amount in OPENING.items():
        row = page.locator(
            f'#ledger-balances tr[data-venue="{venue}"][data-code="venue_cash"][data-asset="USDT"]'
        )
        await expect(row).to_have_count(1, timeout=WAIT_MS)
        assert Decimal(await row.get_attribute("data-balance") or "") == amount
        await expect(row.locator('[data-col="balance"]')).to_have_text(
            await row.get_attribute("data-balance") or ""
        )
    await page.screenshot(path=artifact("accounts-ledger-both"), full_page=True)

    # One account chosen: its books alone.
    await expect(page.locator('#ledger-venue option[value="sim.desk-a"]')).to_have_count(1, timeout=WAIT_MS)
    await page.select_option("#ledger-venue", "sim.desk-a")
    await page.wait_for_function(
        "() => { const rs = [...document.querySelectorAll('#ledger-balances tr[data-account-id]')];"
        " return rs.length > 0 && rs.every(r => r.dataset.venue === 'sim.desk-a'); }",
        timeout=WAIT_MS,
    )
    await expect(page.locator('#ledger-balances tr[data-venue="sim.desk-b"]')).to_have_count(0)
    await page.screenshot(path=artifact("accounts-ledger-desk-a"), full_page=True)
