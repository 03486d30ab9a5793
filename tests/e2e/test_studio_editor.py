"""Studio's patch graph editor in a real browser against the e2e mesh's detector (see studio_mesh):
a draft patch made from the Strategies page and built by clicking (a source, an indicator, a
condition, a score and a signal sink, cabled port to port), the page's graph equal to what the
detector holds (GetPatch over gRPC, beside the page); a cable that would close a cycle and one
between ports of different types refused, each refusal pinned where the cable would have gone;
the patch activated from the editor, which is then shut until it is paused; a module removed and
its cables gone with it; and a key without the `trade` scope refused, the form then disabled
saying why.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS
from tests.e2e.test_studio_strategies import open_strategies
from tests.integration.gateway_support import new_key
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.patch.v1 import patch_pb2 as pt
from trademesh.patch.v1 import patch_pb2_grpc as pt_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PATCH = "editor_e2e"
_AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
# (id, type, parameters set in the add form): 1s bars warm from the sim's candles at activation;
# the condition (an ATR below 0) never holds, so the patch signals nothing into the other tests.
MODULES = [
    ("bars", "trade_bars", {"timeframe": "1s"}),
    ("atr", "atr", {"period": "5"}),
    ("cond", "compare", {"op": "<"}),
    ("score", "weighted_score", {}),
    ("emit", "signal", {}),
]
CABLES = {
    ("bars.bar", "atr.bar"),
    ("atr.value", "cond.a"),
    ("cond.out", "score.rule_1"),
    ("score.signal", "emit.signal"),
}


async def detector_patch(mesh: StudioMesh, patch_id: str) -> pt.PatchGraph:
    """The patch as the detector holds it, asked of the detector itself (not through the gateway)."""
    assert mesh.detector is not None
    async with grpc.aio.insecure_channel(mesh.detector.address) as channel:
        stub: pt_grpc.PatchAsyncStub = pt_grpc.PatchStub(channel)
        reply = await stub.GetPatch(
            pt.GetPatchRequest(patch_id=patch_id), metadata=_AUTH, timeout=CALL_TIMEOUT_S
        )
    return reply.patch


@pytest.fixture
async def patch_removed(mesh: StudioMesh) -> AsyncIterator[str]:
    """The test's patch, deleted at its end (paused first when active): the later modules see the
    detector's examples only."""
    yield PATCH
    assert mesh.detector is not None
    async with grpc.aio.insecure_channel(mesh.detector.address) as channel:
        stub: pt_grpc.PatchAsyncStub = pt_grpc.PatchStub(channel)
        try:
            await stub.PausePatch(
                pt.PausePatchRequest(patch_id=PATCH), metadata=_AUTH, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:  # not active (or never made)
            print(f"pausing {PATCH}: {exc.details()}")
        try:
            await stub.DeletePatch(
                pt.DeletePatchRequest(patch_id=PATCH), metadata=_AUTH, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # never made: the test failed before
                raise


async def drawn(page: Page) -> tuple[dict[str, str], set[tuple[str, str]], list[str]]:
    """(module id -> type, cables as (from port, to port), module ids by their place in the order)
    as the page's graph shows them."""
    modules = await page.locator("#patch-graph g.module").evaluate_all(
        "gs => gs.map(g => [g.dataset.moduleId, g.dataset.type, Number(g.dataset.order)])"
    )
    ends = await page.locator("#patch-graph path.cable").evaluate_all(
        "ps => ps.map(p => [p.dataset.from, p.dataset.to])"
    )
    order = [module_id for module_id, _, _ in sorted(modules, key=lambda m: m[2])]
    return {m: t for m, t, _ in modules}, {(a, b) for a, b in ends}, order


async def shown_equals_held(page: Page, mesh: StudioMesh) -> pt.PatchGraph:
    """The page's graph is the detector's: the same modules, cables and evaluation order."""
    held = await detector_patch(mesh, PATCH)
    modules, cables, order = await drawn(page)
    assert modules == {m.module_id: m.type for m in held.modules}
    assert cables == {(f"{c.from_module}.{c.from_port}", f"{c.to_module}.{c.to_port}") for c in held.cables}
    assert order == list(held.evaluation_order)
    return held


async def add_module(page: Page, module_id: str, type_: str, params: dict[str, str]) -> None:
    await page.select_option("#add-module-type", type_)
    await page.fill("#add-module-id", module_id)
    for name, value in params.items():
        field = page.locator(f'#add-module-params [name="new.{name}"]')
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.click("#add-module")
    await expect(page.locator(f'#patch-graph g.module[data-module-id="{module_id}"]')).to_have_attribute(
        "data-type", type_
    )


async def pick(page: Page, port: str, direction: str) -> None:
    await page.locator(f'#patch-graph g.port[data-direction="{direction}"][data-port="{port}"]').click()


async def connect(page: Page, source: str, target: str) -> None:
    """Picks the output, then the input: the cable as the detector answers it."""
    await pick(page, source, "out")
    await expect(page.locator(f'#patch-graph g.port.picked[data-port="{source}"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    await pick(page, target, "in")


async def test_a_patch_built_by_clicking_is_the_detectors_refusals_show_where_the_cable_was(
    page: Page, mesh: StudioMesh, api_key: str, patch_removed: str
) -> None:
    await open_strategies(page, mesh, api_key)
    await page.fill("#new-patch-id", patch_removed)
    await page.fill("#new-patch-venue", "sim")
    await page.fill("#new-patch-symbol", "BTC/USDT")
    await page.click("#new-patch-create")
    view = page.locator("#patch-view")
    await expect(view).to_have_attribute("data-patch-id", PATCH)
    await expect(page.locator("#patch-state")).to_have_attribute("data-state", "draft")
    await expect(page.locator("#patch-editor")).to_have_attribute("data-editable", "true")

    for module_id, type_, params in MODULES:
        await add_module(page, module_id, type_, params)
    for source, target in sorted(CABLES):
        await connect(page, source, target)
        await expect(
            page.locator(f'#patch-graph path.cable[data-from="{source}"][data-to="{target}"]')
        ).to_be_attached()
    await expect(page.locator("#editor-message")).to_have_text("connected score.signal → emit.signal")
    held = await shown_equals_held(page, mesh)
    set_here = {m.module_id: m.params for m in held.modules}  # the add form's fields, as held
    assert set_here["cond"]["op"].text_value == "<" and set_here["atr"]["period"].int_value == 5
    assert set_here["bars"]["timeframe"].text_value == "1s"

    # A cable closing a cycle (score after cond, feeding cond): the detector's refusal at the input
    # it would have fed, nothing drawn, the detector's patch unchanged.
    version = held.version
    await connect(page, "score.score", "cond.b")
    note = page.locator('#patch-refusals .refusal[data-anchor="in:cond.b"]')
    await expect(note).to_contain_text("would close a cycle")
    await expect(note).to_have_attribute("data-field", "cable")
    await expect(page.locator('#patch-graph g.port.refused[data-port="cond.b"]')).to_be_attached()
    await expect(page.locator("#editor-message")).to_contain_text("invalid argument")
    await page.locator("#patch-graph").screenshot(path=artifact("patch-editor-cycle-refused"))
    assert await page.locator('#patch-graph path.cable[data-to="cond.b"]').count() == 0
    assert (await shown_equals_held(page, mesh)).version == version
    # Another type: a boolean into a number, refused on the input.
    await connect(page, "score.triggered", "cond.b")
    await expect(note).to_contain_text("is boolean but cond.b is number")
    await expect(note).to_have_attribute("data-field", "cable.to_port")
    assert (await shown_equals_held(page, mesh)).version == version

    # Activated from the editor: warmed from the sim's 1s candles. The editor is shut while active.
    await page.click("#patch-activate")
    await expect(page.locator("#patch-state")).to_have_attribute("data-state", "active", timeout=WAIT_MS)
    await expect(page.locator("#patch-refusals .refusal")).to_have_count(0)
    await expect(page.locator("#add-module")).to_be_disabled()
    await expect(page.locator("#editor-hint")).to_contain_text("pause it")
    await expect(page.locator("#patch-graph")).to_have_attribute("data-editing", "false")
    await page.click("#patch-pause")
    await expect(page.locator("#patch-state")).to_have_attribute("data-state", "paused", timeout=WAIT_MS)
    await expect(page.locator("#patch-graph")).to_have_attribute("data-editing", "true")

    # The condition removed: its two cables go with it, on the page as in the detector.
    await page.locator('#patch-graph g.remove-module[data-module-id="cond"]').click()
    await expect(page.locator('#patch-graph g.module[data-module-id="cond"]')).to_have_count(0)
    await expect(page.locator("#editor-message")).to_have_text("removed cond and its cables")
    modules, cables, _ = await drawn(page)
    assert cables == CABLES - {("atr.value", "cond.a"), ("cond.out", "score.rule_1")}
    assert "cond" not in modules
    await shown_equals_held(page, mesh)
    await page.locator("#patch-view").screenshot(path=artifact("patch-editor-removed"))


async def test_a_key_without_the_trade_scope_is_refused_and_the_form_says_why(
    page: Page, mesh: StudioMesh
) -> None:
    key = await asyncio.to_thread(new_key, mesh.database_url, "e2e-reader", ["read"])

    async def taken() -> bool | None:
        # A key newer than the gateway's last read is looked up again at most once a second.
        answer = await page.request.post(f"{mesh.url}/api/login", data={"key": key})
        return True if answer.ok else None

    await until(taken, 30, 0.2, "the gateway taking the read-only key")
    await open_strategies(page, mesh, key)
    await page.fill("#new-patch-id", "read_only")
    await page.fill("#new-patch-venue", "sim")
    await page.fill("#new-patch-symbol", "BTC/USDT")
    await page.click("#new-patch-create")
    message = page.locator("#new-patch-message")
    await expect(message).to_contain_text("needs the 'trade' scope")
    await expect(message).to_have_attribute("data-tone", "error")
    await expect(page.locator("#new-patch-create")).to_be_disabled()
    why = "creating patches is refused: " + await message.inner_text()
    await expect(page.locator("#new-patch fieldset")).to_have_attribute("title", why)
    assert await page.locator('#patches tr[data-patch-id="read_only"]').count() == 0
