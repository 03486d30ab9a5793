"""Two accounts at the sim in Studio (docs/accounts.md): `trademesh venue sim --account desk-a`
and `--account desk-b`, each its own process with its own balances, registered with the mesh's
gateway. The trading page's venue picker lists both accounts, and the Ledger page shows each
account's books apart: both listed with their own balances, and the venue filter keeping one.
The Accounts page lists each account (exchange, account, mode, instance) with its balances from
its own venue's account stream and its PnL and fees from the ledger: a fill at desk-b moves
desk-b's balances and books, and desk-a's not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, log_in, shown_amount
from tests.e2e.test_studio_ledger import open_ledger
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
TRADE = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
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


@dataclass(frozen=True)
class Accounts:
    ledger: ServiceProcess
    # By venue name ("sim.desk-a").
    sims: dict[str, ServiceProcess]


@pytest.fixture(scope="module")
async def accounts(mesh: StudioMesh) -> AsyncIterator[Accounts]:
    """The two account sims and the mesh's ledger (which follows them through the registry) for
    this module; both sims and the ledger stopped when it ends (the later modules see the one
    sim of the mesh). The sims start at once, the ledger once both serve: its books open with
    the balances of the venues registered at its first start (this module's, the package's first
    ledger)."""
    starting: list[asyncio.Task[ServiceProcess]] = []
    for account, usdt in (("desk-a", 50000), ("desk-b", 20000)):
        path = mesh.directory / f"sim-{account}.toml"
        path.write_text(f'tick_interval_ms = 50\n[balances]\nUSDT = "{usdt}"\n')
        args = ("venue", "sim", "--account", account, "--config", str(path))
        starting.append(asyncio.create_task(asyncio.to_thread(mesh.processes.start, *args)))
    try:
        sims = await asyncio.gather(*starting)
        ledger = await asyncio.to_thread(mesh.start_ledger)
        await until(lambda: _opened(ledger), 60, 0.2, "both accounts' books opened")
        yield Accounts(ledger, dict(zip(OPENING, sims, strict=True)))
    finally:
        await asyncio.wait(starting)  # each start ended, whether the other failed
        await asyncio.to_thread(mesh.stop_ledger)
        for sim in starting:
            if sim.exception() is None:
                await asyncio.to_thread(sim.result().terminate)


async def test_studio_lists_both_accounts_with_their_own_balances(
    page: Page, mesh: StudioMesh, api_key: str, accounts: Accounts
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
        # To the cent, the exact balance on hover.
        balance = await row.get_attribute("data-balance") or ""
        await expect(row.locator('[data-col="balance"]')).to_have_text(shown_amount(balance))
        await expect(row.locator('[data-col="balance"] [data-exact]')).to_have_attribute("title", balance)
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


async def _usdt(page: Page, venue: str) -> Decimal:
    """The USDT total the Accounts page shows for `venue`, from its account stream."""
    card = page.locator(f'#accounts-cards article[data-venue="{venue}"]')
    row = card.locator('.account-balances tr[data-asset="USDT"]')
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    return Decimal(await row.get_attribute("data-total") or "")


async def _buy_at(sim: ServiceProcess) -> tf.PlaceOrderResponse:
    """A market buy of 0.01 BTC at the account, placed with the trading credential (the test
    stands in for the inspector)."""
    async with grpc.aio.insecure_channel(sim.address) as channel:
        order = tf.PlaceOrderRequest(
            symbol="BTC/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="0.01"
        )
        answer: tf.PlaceOrderResponse = await tf_grpc.TradeFlowStub(channel).PlaceOrder(
            order, metadata=TRADE, timeout=CALL_TIMEOUT_S
        )
    return answer


async def test_the_accounts_page_shows_each_account_apart(
    page: Page, mesh: StudioMesh, api_key: str, accounts: Accounts
) -> None:
    await log_in(page, mesh, api_key)
    await page.click("#nav-accounts")
    await expect(page.locator("#accounts-page")).to_be_visible()
    await expect(page.locator("#nav-accounts")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#accounts .status")).to_have_text("live", timeout=WAIT_MS)

    instances = set()
    for venue, amount in OPENING.items():
        row = page.locator(f'#accounts-rows tr[data-venue="{venue}"]')
        await expect(row).to_have_count(1, timeout=WAIT_MS)
        await expect(row).to_have_attribute("data-exchange", "sim")
        await expect(row).to_have_attribute("data-account", venue.removeprefix("sim."))
        await expect(row).to_have_attribute("data-mode", "sim")
        instances.add(await row.get_attribute("data-instances"))
        # Its balances, as its own venue streams them (TradeFlow.StreamAccount through the gateway).
        assert await _usdt(page, venue) == amount
    assert len(instances) == 2 and "" not in instances  # each account its own process
    # The mesh's own sim: the exchange's one account.
    await expect(page.locator('#accounts-rows tr[data-venue="sim"]')).to_have_attribute("data-account", "")
    for venue in OPENING:  # the ledger's books of each account: no fill yet
        books = page.locator(f'#accounts-cards article[data-venue="{venue}"] tbody.account-pnl')
        await expect(books).to_have_attribute("data-fills", "0", timeout=WAIT_MS)
    await page.screenshot(path=artifact("accounts-page-opened"), full_page=True)

    # A fill at desk-b: desk-b's balances move on its stream and its books count the fill and
    # its fee; desk-a's stay as they were.
    placed = await _buy_at(accounts.sims["sim.desk-b"])
    assert placed.order.status == tf.ORDER_STATUS_FILLED, placed
    desk_b = page.locator('#accounts-cards article[data-venue="sim.desk-b"]')
    bought = desk_b.locator('.account-balances tr[data-asset="BTC"]')
    await expect(bought).to_have_count(1, timeout=WAIT_MS)
    # The stream may list BTC at 0 first (a snapshot before the fill): the fill's change follows.
    await page.wait_for_function(
        '() => Number(document.querySelector(\'#accounts-cards article[data-venue="sim.desk-b"]'
        ' .account-balances tr[data-asset="BTC"]\')?.dataset.total) > 0',
        timeout=WAIT_MS,
    )
    assert 0 < Decimal(await bought.get_attribute("data-total") or "") <= Decimal("0.01")
    # About 650 USDT paid (a number is close enough to wait on; the figure is checked exact below).
    await page.wait_for_function(
        '() => Number(document.querySelector(\'#accounts-cards article[data-venue="sim.desk-b"]'
        ' .account-balances tr[data-asset="USDT"]\')?.dataset.total) < 19400',
        timeout=WAIT_MS,
    )
    assert await _usdt(page, "sim.desk-b") < OPENING["sim.desk-b"] - 600
    # One fill per price level the market order met (one or more: the sim's book moves), the
    # card's books and the overview's row read alike.
    await page.wait_for_function(
        """() => {
            const card = document.querySelector(
                '#accounts-cards article[data-venue="sim.desk-b"] tbody.account-pnl tr[data-fills]');
            const row = document.querySelector('#accounts-rows tr[data-venue="sim.desk-b"]');
            return card && row && Number(card.dataset.fills) >= 1 && card.dataset.fills === row.dataset.fills;
        }""",
        timeout=WAIT_MS,
    )
    books = desk_b.locator("tbody.account-pnl tr[data-fills]")
    fee = Decimal(await books.get_attribute("data-fees") or "")
    assert fee < 0  # the taker fee paid (as it affects PnL: negative)
    desk_a = page.locator('#accounts-cards article[data-venue="sim.desk-a"]')
    await expect(desk_a.locator("tbody.account-pnl")).to_have_attribute("data-fills", "0")
    # The sim lists every asset of its instruments; desk-a holds no BTC.
    assert (
        Decimal(
            await desk_a.locator('.account-balances tr[data-asset="BTC"]').get_attribute("data-total") or ""
        )
        == 0
    )
    assert await _usdt(page, "sim.desk-a") == OPENING["sim.desk-a"]
    await page.screenshot(path=artifact("accounts-page-desk-b-filled"), full_page=True)
