"""Studio's Supervisor page in a real browser against the e2e mesh (studio_mesh), with an
inspector, a ledger and the Supervisor started for the module: the Supervisor with its own key
(read, trade) as `trademesh up` makes it, in propose mode, looking every EVERY_S.

Two strategies paused by hand at the detector are proposed resumed by the rules; the page shows
each proposal with its reason and evidence (its id the one the Supervisor's own GetState
answers); Approve, with a reason, carries one out (its patches active again, read from the
detector itself) and the live audit trail shows the approval (the operator, the reason), the
action and its outcome; Reject of the other records the rejection, and that strategy stays paused.
The mode control: a key without the admin scope is refused (the gateway's words on the page), a
key with it sets the mode (GetState confirms)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import grpc
import pytest
from playwright.async_api import Locator, Page, Route, expect

from tests.e2e.studio_mesh import StudioMesh, create_key
from tests.e2e.test_studio import WAIT_MS, sign_in
from tests.e2e.test_studio_ledger import skip_old_intents
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.supervisor.v1 import supervisor_pb2_grpc as sv_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
EVERY_S = 0.5  # the Supervisor's looks: a paused strategy is proposed resumed within a second
APPROVED, REJECTED = "trend", "mean_reversion"  # two of the detector's example strategies
PROPOSALS = "#supervisor-proposals-rows"
AUDIT = "#supervisor-audit-rows"
RESUME_REASON = re.compile(r"^drawdown 0\.0% is back under 4\.0%")
APPROVAL_REASON = "e2e: its drawdown is back under the threshold"


@pytest.fixture(scope="module")
async def admin_key(e2e_database: str) -> str:
    """A key that may set the Supervisor's mode (read, admin); made before the tests, so the
    gateway has loaded it (it refreshes its keys every 2 s) by the time one logs in with it."""
    return await asyncio.to_thread(create_key, e2e_database, "e2e-admin", ("read", "admin"))


@pytest.fixture(scope="module", autouse=True)
async def supervisor(mesh: StudioMesh, admin_key: str) -> AsyncIterator[ServiceProcess]:
    """The ledger and the inspector (what the Supervisor reads: PnL, the risk state), then the
    Supervisor; when the module ends it stops first, and both strategies run again."""
    await skip_old_intents(mesh.redis_url)
    await asyncio.gather(asyncio.to_thread(mesh.start_ledger), asyncio.to_thread(mesh.start_inspector))
    started = await asyncio.to_thread(mesh.start_supervisor, EVERY_S)
    try:
        # A whole observation: the gateway knows the detector, the inspector and the ledger.
        await until(lambda: _observing(mesh), 60, 0.2, "the Supervisor's first whole observation")
        yield started
    finally:
        await asyncio.to_thread(mesh.stop_supervisor)
        for strategy in (APPROVED, REJECTED):
            await _set_patches(mesh, strategy, paused=False)
        await asyncio.to_thread(mesh.stop_inspector)
        await asyncio.to_thread(mesh.stop_ledger)


async def _state(mesh: StudioMesh) -> sv.GetStateResponse:
    """The Supervisor's own answer, asked of it directly (not through the gateway)."""
    assert mesh.supervisor is not None
    async with grpc.aio.insecure_channel(mesh.supervisor.address) as channel:
        stub: sv_grpc.SupervisorAsyncStub = sv_grpc.SupervisorStub(channel)
        return await stub.GetState(sv.GetStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)


async def _observing(mesh: StudioMesh) -> bool | None:
    return True if re.match(r"^\d+ strategies", (await _state(mesh)).observed) else None


async def _set_patches(mesh: StudioMesh, strategy: str, paused: bool) -> None:
    """Every patch of `strategy` paused or activated at the detector itself (by hand); those in
    that state already are left (the detector refuses to activate an active one)."""
    assert mesh.detector is not None
    wanted = pb.PATCH_STATE_PAUSED if paused else pb.PATCH_STATE_ACTIVE
    async with grpc.aio.insecure_channel(mesh.detector.address) as channel:
        stub = pb_grpc.PatchStub(channel)
        listed = await stub.ListPatches(pb.ListPatchesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        ours = [p for p in listed.patches if p.patch_id.startswith(f"{strategy}/") and p.state != wanted]
        for patch in ours:
            if paused:
                request = pb.PausePatchRequest(patch_id=patch.patch_id)
                await stub.PausePatch(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
            else:
                activate = pb.ActivatePatchRequest(patch_id=patch.patch_id)
                await stub.ActivatePatch(activate, metadata=AUTH, timeout=CALL_TIMEOUT_S)


async def _patch_states(mesh: StudioMesh, strategy: str) -> set[int]:
    assert mesh.detector is not None
    async with grpc.aio.insecure_channel(mesh.detector.address) as channel:
        listed = await pb_grpc.PatchStub(channel).ListPatches(
            pb.ListPatchesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return {p.state for p in listed.patches if p.patch_id.startswith(f"{strategy}/")}


async def _open_supervisor(page: Page, mesh: StudioMesh, key: str) -> None:
    await sign_in(page, mesh, key)
    await page.click("#nav-supervisor")
    await expect(page.locator("#supervisor-page")).to_be_visible()
    await expect(page.locator("#nav-supervisor")).to_have_attribute("aria-current", "page")


STATE_PATH = "trademesh.supervisor.v1.Supervisor/GetState"


async def _polled_since(page: Page) -> None:
    """Until the page has drawn a GetState asked after now: the poll asks again only after drawing."""
    for _ in ("answered and drawn", "asked again"):
        async with page.expect_request(lambda r: r.url.endswith(STATE_PATH), timeout=WAIT_MS) as asked:
            pass
        await asked.value


async def _resume_row(page: Page, mesh: StudioMesh, strategy: str) -> tuple[Locator, str]:
    """The page's proposal to resume `strategy`, and its id: the one GetState answers."""
    row = page.locator(f'{PROPOSALS} tr[data-kind="resume"][data-strategy="{strategy}"]')
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    proposal_id = await row.get_attribute("data-proposal-id")
    assert proposal_id is not None
    answered = {(p.kind, p.strategy): p for p in (await _state(mesh)).open}
    proposal = answered.get((sv.ACTION_KIND_RESUME, strategy))
    assert proposal is not None and proposal.proposal_id == proposal_id, answered
    await expect(row.locator('td[data-col="reason"]')).to_have_text(RESUME_REASON)
    # What the rule saw: the drawdown as a percentage, the money to the cent (the exact value the
    # Supervisor gave, on hover).
    await expect(row.locator('li[data-name="drawdown"]')).to_have_text("drawdown: 0.00%")
    pnl = row.locator('li[data-name="realised_pnl"]')
    await expect(pnl).to_have_text(re.compile(r"^realised pnl: -?[\d,]+\.\d\d+$"))
    await expect(pnl).to_have_attribute("title", {e.name: e.value for e in proposal.evidence}["realised_pnl"])
    return row, proposal_id


async def _decide(page: Page, row: Locator, button: str, reason: str) -> None:
    """Approve or Reject (`button`) with a reason: "yes" stays disabled until one is typed."""
    await row.locator(f"button.{button}").click()
    await expect(page.locator("#confirm-yes")).to_be_disabled()
    await page.fill("#confirm-reason", reason)
    await page.click("#confirm-yes")


def _entry(page: Page, proposal_id: str, kind: str) -> Locator:
    return page.locator(f'{AUDIT} tr[data-proposal-id="{proposal_id}"][data-kind="{kind}"]')


async def test_a_proposal_to_resume_is_approved_on_the_page_and_carried_out_and_another_rejected(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    for strategy in (APPROVED, REJECTED):
        await _set_patches(mesh, strategy, paused=True)
    await _open_supervisor(page, mesh, api_key)
    await expect(page.locator("#supervisor-mode")).to_have_text("propose")
    await expect(page.locator("#supervisor-audit > header .status")).to_have_text("live")

    row, approved = await _resume_row(page, mesh, APPROVED)
    await _decide(page, row, "approve", APPROVAL_REASON)
    done = re.compile(rf"^{re.escape(approved)}: approved; action; done: \d+ patches active$")
    await expect(page.locator("#supervisor-message")).to_have_text(done)

    async def active() -> bool | None:
        return True if await _patch_states(mesh, APPROVED) == {pb.PATCH_STATE_ACTIVE} else None

    await until(active, 10, 0.2, f"{APPROVED} active again at the detector")
    # The live trail: the approval by the operator with the reason, the action, its outcome.
    approval = _entry(page, approved, "approved")
    await expect(approval).to_have_attribute("data-who", "operator")
    await expect(approval).to_contain_text(f"resume {APPROVED}: {APPROVAL_REASON}")
    await expect(_entry(page, approved, "action")).to_have_count(1)
    await expect(_entry(page, approved, "done")).to_contain_text(re.compile(r"done: \d+ patches active"))
    await expect(page.locator(f'{PROPOSALS} tr[data-proposal-id="{approved}"]')).to_have_count(0)

    row, rejected = await _resume_row(page, mesh, REJECTED)
    await _decide(page, row, "reject", "e2e: not yet")
    await expect(page.locator("#supervisor-message")).to_have_text(f"{rejected}: rejected")
    await expect(_entry(page, rejected, "rejected")).to_contain_text(f"resume {REJECTED}: e2e: not yet")
    assert await _patch_states(mesh, REJECTED) == {pb.PATCH_STATE_PAUSED}
    assert rejected not in {p.proposal_id for p in (await _state(mesh)).open}

    # A proposal's id shows its story alone: proposed by the rules, approved, acted on, done.
    await _entry(page, approved, "approved").locator("button.link").click()
    await expect(page.locator("#supervisor-audit-only")).to_contain_text(f"only {approved}")
    kinds = await page.locator(f"{AUDIT} tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["done", "action", "approved", "proposal"], kinds
    await expect(_entry(page, approved, "proposal")).to_have_attribute("data-who", "rules")


async def test_the_mode_control_is_refused_without_the_admin_scope_and_sets_the_mode_with_it(
    page: Page, mesh: StudioMesh, api_key: str, admin_key: str
) -> None:
    await _open_supervisor(page, mesh, api_key)  # read, trade, close_all: no admin
    await expect(page.locator("#supervisor-mode")).to_have_text("propose")
    await page.select_option("#supervisor-mode-choice", label="off")
    await page.click("#supervisor-set-mode")
    await page.click("#confirm-yes")
    message = page.locator("#supervisor-message")
    await expect(message).to_have_attribute("data-tone", "error")
    await expect(message).to_contain_text("permission denied")
    await expect(message).to_contain_text("'admin' scope")
    assert (await _state(mesh)).mode == sv.MODE_PROPOSE

    await page.click("#logout")
    # The new page's first GetState held back: nothing can be picked before the mode in force is
    # known (a pick made then was put back by the first draw, and the mode set was the one in force).
    answered = asyncio.Event()

    async def held(route: Route) -> None:
        await answered.wait()
        await route.continue_()

    await page.route(f"**/{STATE_PATH}", held)
    try:
        await _open_supervisor(page, mesh, admin_key)
        await expect(page.locator("#supervisor-mode-choice")).to_be_disabled()
        await expect(page.locator("#supervisor-set-mode")).to_be_disabled()
    finally:
        answered.set()  # the route stays, passing every GetState on from now
    await expect(page.locator("#supervisor-mode")).to_have_text("propose")
    try:
        await page.select_option("#supervisor-mode-choice", label="off")
        await _polled_since(page)  # the pick stays through a poll's redraw (it was reset once)
        await expect(page.locator("#supervisor-mode-choice")).to_have_value(str(sv.MODE_OFF))
        await page.click("#supervisor-set-mode")
        await page.click("#confirm-yes")
        await expect(message).to_have_text("mode off")
        assert (await _state(mesh)).mode == sv.MODE_OFF
        await expect(page.locator("#supervisor-mode")).to_have_text("off")
        await expect(page.locator(f'{AUDIT} tr[data-kind="mode"]').first).to_contain_text("propose -> off")
    finally:
        await page.select_option("#supervisor-mode-choice", label="propose")
        await page.click("#supervisor-set-mode")
        await page.click("#confirm-yes")
        await expect(message).to_have_text("mode propose")
    assert (await _state(mesh)).mode == sv.MODE_PROPOSE
