"""Studio's Ledger page and trace view in a real browser against a real mesh trading on its own
(see studio_mesh): the detector's signals, decided by the advisor (its LLM the stand-in, good),
become intents the inspector checks and places at the sim, and the ledger posts every fill.

The page shows the balances (filtered by strategy and ledger) and the PnL of each strategy that
traded (rounded to the cent, the exact figure on hover), with its equity curve and the total's on
the chart, and the Overview page each strategy's realised PnL and fees as the ledger's books; the
live transfers list opens the trace of a transfer, signal to transfer. The trace opens as well
from a decision on the advisor page, from a signal on the strategies page, and (the advisor
stopped) from a fill and an order on the trading page (the order ticket's own orders). What the
page shows is checked against what the ledger itself answers (its gRPC API, not through the
gateway).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import grpc
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Page, expect
from redis.exceptions import ResponseError

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import TICK, WAIT_MS, best_prices, log_in, open_market, shown_amount, sign_in
from tests.integration.mesh import ADVISOR_TEST_CONFIG
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as av
from trademesh.advisor.v1 import service_pb2_grpc as av_grpc
from trademesh.core.platform.bus.names import INTENTS
from trademesh.core.platform.logs.setup import chain_trace_id
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SYMBOL = "BTC/USDT"
INSPECTOR_GROUP = "inspector"  # the inspectors' consumer group (InspectorServiceConfig.group)
CHAIN = ["signal", "decision", "intent", "risk_check", "order", "fill", "transfer"]
# The examples signal within a minute or two of a start; the advisor decides each at once, and
# the inspector places what it allows.
CHAIN_S = 240
# The advisor's intents are sized small (the sim's account is worth about a million in USDT, and
# a quarter of it, the shipped cap, is past every shipped limit): at most 0.2% of the equity.
ADVISOR_CONFIG = ADVISOR_TEST_CONFIG + '[sizing]\nmax_notional_share = "0.002"\n'
# The shipped policies, but for the exposure and the losses: the advisor's trades add up and may
# lose many in a row, and the module's own orders must still be allowed after them.
POLICIES = """
[position]
max_notional = "1000000"
[exposure]
max_gross = "1000000"
max_net = "1000000"
[loss]
max_daily_drawdown = "0.5"
max_drawdown = "0.5"
max_loss_streak = 1000
cooldown_after_loss_ms = 0
[orders]
max_notional = "10000"
max_open = 50
price_band = "0.05"
[rate]
window_ms = 1000
max_per_venue = 50
max_per_strategy = 20
"""


async def _ledger_call(ledger: ServiceProcess, method: str, request: object) -> object:
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        stub: lg_grpc.LedgerAsyncStub = lg_grpc.LedgerStub(channel)
        return await getattr(stub, method)(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)


async def transfers(ledger: ServiceProcess) -> list[lg.Transfer]:
    reply = await _ledger_call(
        ledger, "ListTransfers", lg.ListTransfersRequest(page_size=1000, newest_first=True)
    )
    assert isinstance(reply, lg.ListTransfersResponse)
    return list(reply.transfers)


async def ledger_pnl(ledger: ServiceProcess) -> lg.GetPnlResponse:
    reply = await _ledger_call(ledger, "GetPnl", lg.GetPnlRequest())
    assert isinstance(reply, lg.GetPnlResponse)
    return reply


async def ledger_trace(ledger: ServiceProcess, wanted: str) -> lg.TraceResponse:
    reply = await _ledger_call(ledger, "Trace", lg.TraceRequest(id=wanted))
    assert isinstance(reply, lg.TraceResponse)
    return reply


async def skip_old_intents(redis_url: str) -> None:
    """The inspectors' consumer group moved past the intents already on the bus: those the
    modules before published while no inspector ran (the advisor module's, sized for no policy)
    are not this module's to trade."""
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        await client.xgroup_setid(INTENTS, INSPECTOR_GROUP, "$")
    except ResponseError:
        pass  # no inspector ran yet: its group starts at new intents anyway
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
async def ledger(mesh: StudioMesh) -> AsyncIterator[ServiceProcess]:
    """The ledger, the inspector and the advisor (its LLM good) for this module; everything the
    inspector holds is closed when the module ends (the later modules find the sim flat).
    The ledger and the advisor start together; the inspector, which places orders (flattening the
    sim first), once the ledger has opened its books: it posts every fill from then on."""
    await skip_old_intents(mesh.redis_url)
    started, _ = await asyncio.gather(
        asyncio.to_thread(mesh.start_ledger),
        asyncio.to_thread(mesh.start_advisor, "good", ADVISOR_CONFIG),
    )
    await asyncio.to_thread(mesh.start_inspector, POLICIES)
    try:
        yield started
    finally:
        try:
            await mesh.close_all("e2e: the ledger module ends")
        finally:
            await asyncio.to_thread(mesh.stop_advisor)
            await asyncio.to_thread(mesh.stop_inspector)
            await asyncio.to_thread(mesh.stop_ledger)


@pytest.fixture(scope="module")
async def chained(mesh: StudioMesh, ledger: ServiceProcess) -> lg.Transfer:
    """A transfer the whole chain led to: a signal the advisor decided on, its intent allowed
    and placed, the order filled and posted; its fill recorded too (the trace's order and fill
    steps are the recorder's, written apart from the ledger's transfer)."""

    async def whole() -> lg.Transfer | None:
        for transfer in await transfers(ledger):
            links = transfer.links
            if links.signal_id and links.decision_id and links.intent_id and links.fill_id:
                trace = await ledger_trace(ledger, transfer.id)
                if "fill" in {step.kind for step in trace.steps}:
                    return transfer
        return None

    try:
        found: lg.Transfer = await until(whole, CHAIN_S, 1.0, "a transfer posted from a signal's whole chain")
    except BaseException:
        print(await _what_happened(mesh, ledger))
        raise
    return found


async def _what_happened(mesh: StudioMesh, ledger: ServiceProcess) -> str:
    """The decisions, the inspector's verdicts and the transfers so far: why no chain came."""
    assert mesh.advisor is not None and mesh.inspector is not None
    async with grpc.aio.insecure_channel(mesh.advisor.address) as channel:
        stub: av_grpc.AdvisorAsyncStub = av_grpc.AdvisorStub(channel)
        decided = await stub.ListDecisions(av.ListDecisionsRequest(page_size=500), metadata=AUTH, timeout=10)
    async with grpc.aio.insecure_channel(mesh.inspector.address) as channel:
        risk: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)
        events = await risk.ListRiskEvents(rk.ListRiskEventsRequest(page_size=50), metadata=AUTH, timeout=10)
    outcomes = Counter(am.Outcome.Name(d.outcome) for d in decided.decisions)
    blocked = Counter(d.block_reason for d in decided.decisions if d.block_reason).most_common(5)
    verdicts = [f"{rk.RiskAction.Name(e.action)} {e.policy} {e.reason}" for e in events.events][:10]
    posted = await transfers(ledger)
    links = [str(t.links).replace("\n", " ") for t in posted[:5]]
    return (
        f"decisions {dict(outcomes)} blocked {blocked}\nverdicts {verdicts}\n{len(posted)} transfers: {links}"
    )


async def _active(mesh: StudioMesh) -> None:
    """The inspector active, for the module's own orders: the advisor's trades may have made it
    stand down (why is printed); an operator's resume, as the Risk page's button sends."""
    assert mesh.inspector is not None
    async with grpc.aio.insecure_channel(mesh.inspector.address) as channel:
        risk: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)
        state = await risk.GetRiskState(rk.GetRiskStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        if state.state == rk.RISK_STATE_ACTIVE:
            return
        events = await risk.ListRiskEvents(rk.ListRiskEventsRequest(page_size=100), metadata=AUTH, timeout=10)
    why = [f"{rk.RiskAction.Name(e.action)} {e.policy}: {e.reason}" for e in events.events]
    print("the inspector was", rk.RiskState.Name(state.state), [w for w in why if "ALLOW" not in w][:10])
    print("transitions", [t.reason for t in state.transitions])
    await mesh.set_mode(rk.MODE_RESUME, "e2e: the ledger module's own orders")


async def ticket(page: Page, size: str, price: str = "") -> str:
    """A buy through the ticket: at the market, or a limit at `price`; the verdict's action."""
    await page.select_option("#ticket-type", "limit" if price else "market")
    if price:
        await page.fill("#ticket-price", price)
    await page.fill("#ticket-size", size)
    message = page.locator("#ticket-message")
    before = await message.get_attribute("data-intent-id")
    await page.click("#ticket-buy")

    async def answered() -> str | None:  # this intent's verdict, not the one before it
        intent = await message.get_attribute("data-intent-id")
        return await message.get_attribute("data-action") if intent and intent != before else None

    action: str = await until(answered, WAIT_MS / 1000, 0.1, "the inspector's verdict on the ticket")
    return action


async def allowed(page: Page, mesh: StudioMesh, size: str, price: str = "") -> None:
    """A ticket order the inspector allows: sent again while it stands down (the advisor's trades
    may make it, the venue refusing their protective orders), until a deadline."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await _active(mesh)
        if await ticket(page, size, price) == "allow":
            return
        if "standing_down" not in await page.locator("#ticket-reasons").inner_text():
            break
    pytest.fail(f"the ticket's order was refused: {await page.locator('#ticket-reasons').inner_text()}")


async def open_ledger(page: Page) -> None:
    await page.click("#nav-ledger")
    await expect(page.locator("#ledger-page")).to_be_visible()
    await expect(page.locator("#trading-page")).to_be_hidden()
    await expect(page.locator("#nav-ledger")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#ledger .status")).to_have_text("live", timeout=WAIT_MS)


async def trace_shown(page: Page, kind: str, wanted: str) -> list[str]:
    """Waits for the trace view of `wanted` (an id of `kind`); the kinds of its steps."""
    view = page.locator("#trace-view")
    await expect(view).to_be_visible(timeout=WAIT_MS)
    await expect(view).to_have_attribute("data-traced", wanted)
    try:
        await expect(view).to_have_attribute("data-kind", kind, timeout=WAIT_MS)
    except AssertionError as exc:  # slow or refused: the view's status line says which
        status = await page.locator("#trace-status").text_content()
        raise AssertionError(f"the trace of {kind} {wanted} not shown; its status: {status!r}") from exc
    await expect(page.locator("#trace-status")).to_have_attribute("data-tone", "ok")
    signals: list[str] = await page.locator('#trace-steps > li[data-kind="signal"]').evaluate_all(
        "ls => ls.map(l => l.dataset.stepId)"
    )
    await expect(page.locator("#trace-logs")).to_have_attribute("href", logs_link(signals, wanted))
    kinds: list[str] = await page.locator("#trace-steps > li").evaluate_all(
        "ls => ls.map(l => l.dataset.kind)"
    )
    assert kinds == sorted(kinds, key=CHAIN.index), kinds
    await expect(page.locator(f'#trace-steps > li[data-step-id="{wanted}"]').first).to_be_visible()
    return kinds


def logs_link(signals: list[str], wanted: str) -> str:
    """The trace view's link to the log lines (the Logs page: tests/e2e/test_studio_logs.py): a
    chain with a detector's signal (a UUID), to its trace (trademesh.core.platform.logs.setup.chain_trace_id);
    else to the lines naming the id asked about."""
    try:
        return f"#/logs?{urlencode({'trace': chain_trace_id(str(uuid.UUID(signals[0])))})}"
    except (IndexError, ValueError):
        return f"#/logs?{urlencode({'text': wanted})}"


async def close_trace(page: Page) -> None:
    await page.click("#trace-close")
    await expect(page.locator("#trace-view")).to_be_hidden()


async def _check_overview_pnl(page: Page, ledger: ServiceProcess, strategy: str) -> None:
    """The Overview page's row of `strategy`: its realised PnL and fees as the ledger's GetPnl
    has them (the overview stream reads the same books each second; a fill may come between the
    two reads, so they are read until they agree), rounded, the exact figures on hover. The row
    is read in one go (its figures, their titles and texts): a strategy that trades on changes it
    between two reads of the page."""
    row = page.locator(f'#overview-strategies tr[data-strategy="{strategy}"]')
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    read_row = """r => ["realised", "fees"].map(col => {
        const e = r.querySelector(`td[data-col="${col}"] [data-exact]`);
        return [r.dataset[col], e ? e.title : null, e ? e.textContent : null];
    })"""

    async def agree() -> list[list[str]] | None:
        books = {s.strategy_id: s for s in (await ledger_pnl(ledger)).strategies}[strategy]
        shown = await row.evaluate(read_row)
        return shown if [s[0] for s in shown] == [books.realised, books.fees] else None

    shown = await until(agree, WAIT_MS / 1000, 0.5, f"the overview's PnL of {strategy} as the ledger's")
    for exact, title, text in shown:
        assert title == exact, (exact, title)
        assert text == shown_amount(exact), (exact, text)


async def test_the_ledger_page_shows_balances_and_pnl_by_strategy(
    page: Page, mesh: StudioMesh, api_key: str, ledger: ServiceProcess, chained: lg.Transfer
) -> None:
    await sign_in(page, mesh, api_key)
    strategy = chained.links.strategy_id
    await _check_overview_pnl(page, ledger, strategy)
    await open_ledger(page)
    # Its PnL row, with the fills the ledger counts for it (more may come while the page polls).
    counted = {s.strategy_id: s for s in (await ledger_pnl(ledger)).strategies}
    assert counted[strategy].fills >= 1
    row = page.locator(f'#ledger-pnl tr[data-strategy="{strategy}"]')
    await expect(row).to_have_count(1, timeout=WAIT_MS)

    async def caught_up() -> list[str] | None:  # the page polls: it shows those fills soon
        cells = await row.locator("td").all_inner_texts()
        return cells if int(cells[1]) >= counted[strategy].fills else None

    await until(caught_up, WAIT_MS / 1000, 0.2, f"the page's fill count of {strategy}")
    # Realised, fees, funding, unrealised, total: each rounded to the cent in its asset, its
    # exact decimal string on hover (title) and in data-exact.
    shown = await row.locator("td [data-exact]").evaluate_all(
        "es => es.map(e => [e.dataset.exact, e.title, e.textContent])"
    )
    assert len(shown) >= 3, shown  # realised, fees and total at least (funding on perpetuals)
    for exact, title, text in shown:
        Decimal(exact)  # the wire's decimal string
        expected = f"{shown_amount(exact)} {counted[strategy].asset}".strip()
        assert title == exact and text == expected, (exact, text)
    total = page.locator('#ledger-pnl tr.total[data-strategy=""]')
    await expect(total).to_have_count(1)
    for other in {s for s in counted if s}:  # every strategy with fills has its row
        await expect(page.locator(f'#ledger-pnl tr[data-strategy="{other}"]')).to_have_count(1)

    # Balances: every account with a balance; by strategy, then by ledger.
    balances = page.locator("#ledger-balances tr[data-account-id]")
    await expect(balances.first).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#ledger .status")).to_have_text("live")
    await page.select_option("#ledger-strategy", strategy)
    await expect(page.locator(f'#ledger-balances tr[data-strategy="{strategy}"]').first).to_be_visible()
    await page.wait_for_function(
        "s => [...document.querySelectorAll('#ledger-balances tr[data-account-id]')]"
        ".every(r => r.dataset.strategy === s)",
        arg=strategy,
        timeout=WAIT_MS,
    )
    await page.select_option("#ledger-kind", label="position")
    await page.wait_for_function(
        "() => { const rs = [...document.querySelectorAll('#ledger-balances tr[data-account-id]')];"
        " return rs.length > 0 && rs.every(r => r.dataset.ledger === 'position'); }",
        timeout=WAIT_MS,
    )
    codes = await balances.evaluate_all("rs => rs.map(r => r.dataset.code)")
    assert set(codes) & {"spot_quantity", "perp_quantity", "position_cost"}, codes
    await page.screenshot(path=artifact("ledger-page"), full_page=True)


async def test_the_equity_chart_draws_each_strategys_curve_and_the_total(
    page: Page, mesh: StudioMesh, api_key: str, ledger: ServiceProcess, chained: lg.Transfer
) -> None:
    await log_in(page, mesh, api_key)
    await open_ledger(page)
    chart = page.locator("#equity-chart")
    await page.wait_for_function(
        "() => Number(document.querySelector('#equity-chart').dataset.points) > 0", timeout=WAIT_MS
    )
    reply = await ledger_pnl(ledger)
    series = int(await chart.get_attribute("data-series") or "0")
    # A line per strategy and the total's (a strategy may start trading between the two reads).
    assert series >= len(reply.strategies) + 1
    legend = page.locator("#equity-legend li")
    await expect(page.locator('#equity-legend li[data-line="total"]')).to_have_count(1)
    assert await legend.count() == series
    strategy = chained.links.strategy_id
    line = page.locator(f'#equity-legend li[data-strategy="{strategy}"]')
    await expect(line).to_have_count(1)
    assert int(await line.get_attribute("data-points") or "0") >= 1
    # Drawn: the chart's canvases have pixels of the lines' colours, not only the background.
    painted = await chart.evaluate(
        """e => [...e.querySelectorAll('canvas')].some(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) {
                if (d[i + 3] > 0 && (d[i] > 150 || d[i + 2] > 150)) return true;
            }
            return false;
        })"""
    )
    assert painted, "the equity chart drew nothing"
    await chart.screenshot(path=artifact("ledger-equity-chart"))


async def test_a_transfer_opens_its_trace_from_signal_to_transfer(
    page: Page, mesh: StudioMesh, api_key: str, ledger: ServiceProcess, chained: lg.Transfer
) -> None:
    await log_in(page, mesh, api_key)
    await open_ledger(page)
    # The strategy's transfers only (a busy book posts many a second), the newest of a whole
    # chain among them.
    strategy = chained.links.strategy_id
    await page.select_option("#ledger-strategy", strategy)
    await expect(page.locator("#ledger-transfers-panel .status")).to_have_text("live", timeout=WAIT_MS)
    await page.wait_for_function(
        "s => { const rs = [...document.querySelectorAll('#ledger-transfers tr[data-transfer-id]')];"
        " return rs.length > 0 && rs.every(r => r.dataset.strategy === s); }",
        arg=strategy,
        timeout=WAIT_MS,
    )
    listed = set(await page.locator("#ledger-transfers tr[data-transfer-id]").evaluate_all(
        "rs => rs.map(r => r.dataset.transferId)"))  # fmt: skip
    newest = [t for t in await transfers(ledger) if t.id in listed and t.links.signal_id and t.links.fill_id]
    assert newest, f"no transfer of a whole chain among the {len(listed)} shown"

    async def recorded() -> lg.Transfer | None:
        """The newest whose fill the recorder has written too (the trace's fill step is its)."""
        for transfer in newest:
            if "fill" in {step.kind for step in (await ledger_trace(ledger, transfer.id)).steps}:
                return transfer
        return None

    chained = await until(recorded, 30, 0.5, "a transfer shown whose fill is recorded")
    row = page.locator(f'#ledger-transfers tr[data-transfer-id="{chained.id}"]')
    # The chain may still grow while the page opens it (its order filling on: a fill and its
    # transfer more), so the trace shown is the ledger's at some moment between a read before
    # the click and one after it: it holds the first's steps, and the second holds its.
    before = await ledger_trace(ledger, chained.id)
    await row.click()
    kinds = await trace_shown(page, "transfer", chained.id)
    expected = await ledger_trace(ledger, chained.id)
    assert _within([step.kind for step in before.steps], kinds), (kinds, before.steps)
    assert _within(kinds, [step.kind for step in expected.steps]), (kinds, expected.steps)
    assert {"signal", "decision", "intent", "risk_check", "order", "fill", "transfer"} <= set(kinds)
    for kind in CHAIN:
        await expect(page.locator(f'#trace-chain li[data-kind="{kind}"]')).to_have_class("present")
    signal = page.locator('#trace-steps > li[data-kind="signal"]')
    await expect(signal).to_have_attribute("data-step-id", chained.links.signal_id)
    await expect(signal.locator('[data-col="time"]')).to_contain_text("UTC")
    # The order's fills (it may fill in parts), the transfer's among them.
    fill = page.locator(f'#trace-steps > li[data-kind="fill"][data-step-id="{chained.links.fill_id}"]').first
    await expect(fill).to_be_visible()
    await expect(fill.locator("tr[data-field]").first).to_be_visible()
    await page.screenshot(path=artifact("ledger-trace-transfer"))
    await close_trace(page)


async def test_a_decision_and_a_signal_open_their_traces(
    page: Page, mesh: StudioMesh, api_key: str, ledger: ServiceProcess, chained: lg.Transfer
) -> None:
    await log_in(page, mesh, api_key)
    decision_id = chained.links.decision_id
    await page.goto(f"{mesh.url}/#/advisor/{quote(decision_id, safe='')}")
    await expect(page.locator("#advisor-page")).to_be_visible()
    await expect(page.locator("#decision-view")).to_have_attribute(
        "data-decision-id", decision_id, timeout=WAIT_MS
    )
    await page.locator("#decision-view button.trace-link").click()
    kinds = await trace_shown(page, "decision", decision_id)
    assert kinds[:2] == ["signal", "decision"] and "transfer" in kinds, kinds
    await close_trace(page)
    # The decision log's rows: each its own trace.
    row = page.locator("#decisions-body tr[data-decision-id]").first
    await expect(row).to_be_visible(timeout=WAIT_MS)
    first = await row.get_attribute("data-decision-id")
    assert first
    # That row by its id: a newer decision may come first by the time of the click.
    await page.locator(f"#decisions-body tr[data-decision-id='{first}'] button.trace-link").click()
    kinds = await trace_shown(page, "decision", first)
    assert kinds[:2] == ["signal", "decision"], kinds
    await close_trace(page)

    # The strategies page: the patch of the chain's signal, its newest signals listed.
    step = (await ledger_trace(ledger, chained.links.signal_id)).steps[0]
    fields = {f.name: f.value for f in step.fields}
    patch_id = f"{fields['strategy_id']}/{fields['venue']}/{fields['symbol']}"
    await page.goto(f"{mesh.url}/#/strategies/{quote(patch_id, safe='')}")
    await expect(page.locator("#patch-view")).to_have_attribute("data-patch-id", patch_id, timeout=WAIT_MS)
    listed = page.locator("#recent-signals li[data-signal-id]").first
    await expect(listed).to_be_visible(timeout=WAIT_MS)
    signal_id = await listed.get_attribute("data-signal-id")
    assert signal_id
    await page.locator(f"#recent-signals li[data-signal-id='{signal_id}'] button.trace-link").click()
    kinds = await trace_shown(page, "signal", signal_id)
    assert kinds[0] == "signal", kinds
    # And from the timeline's own marks.
    await close_trace(page)
    mark = page.locator("#signal-timeline .fire[data-trace-id]").first
    mark_id = await mark.get_attribute("data-trace-id")
    assert mark_id
    await page.locator(f"#signal-timeline .fire[data-trace-id='{mark_id}']").first.click()
    await trace_shown(page, "signal", mark_id)
    await page.screenshot(path=artifact("ledger-trace-signal"))
    await close_trace(page)


async def test_a_fill_and_an_order_of_the_trading_page_open_their_traces(
    page: Page, mesh: StudioMesh, api_key: str, ledger: ServiceProcess, chained: lg.Transfer
) -> None:
    # The advisor's part is done (the tests before read its decisions): stopped, its trades no
    # longer make the inspector stand down (which cancels resting entries) under the ticket's.
    await asyncio.to_thread(mesh.stop_advisor)
    await log_in(page, mesh, api_key)
    await open_market(page, "1m")
    await expect(page.locator("#trading .status")).to_have_text("live", timeout=WAIT_MS)
    await allowed(page, mesh, "0.01")
    order_id = await page.locator("#ticket-message").get_attribute("data-order-id")
    fill_row = page.locator(f'#fills tr[data-order-id="{order_id}"]').first
    await expect(fill_row).to_be_visible(timeout=WAIT_MS)
    fill_id = await fill_row.get_attribute("data-fill-id")
    assert fill_id

    async def posted() -> bool | None:
        """The fill in the books (its trace reaches a transfer) and recorded (the trace's order
        and fill steps are the recorder's executions, written apart from the ledger's transfers:
        on a loaded machine the transfer can come first)."""
        try:
            trace = await ledger_trace(ledger, fill_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return None  # the ledger has not heard of the fill yet (a loaded machine)
            raise
        return True if {"fill", "transfer"} <= {s.kind for s in trace.steps} else None

    await until(posted, 30, 0.5, "the ledger's transfers and the recorder's row of the ticket's fill")
    await fill_row.locator("button.trace-link").click()
    kinds = await trace_shown(page, "fill", fill_id)
    # An order of the ticket: a manual intent (never on the bus, so its chain starts at the
    # inspector's verdict on it), checked, placed, filled, posted; no signal.
    assert {"risk_check", "order", "fill", "transfer"} <= set(kinds) and "signal" not in kinds, kinds
    await close_trace(page)

    # A limit buy 3% under the bid rests at the venue: its row in the open orders.
    bid, _ = await best_prices(page)
    await allowed(page, mesh, "0.01", str((bid * Decimal("0.97")) // TICK * TICK))
    message = page.locator("#ticket-message")
    client_order_id = await message.get_attribute("data-client-order-id")
    assert client_order_id
    order_row = page.locator(f'#open-orders tr[data-client-order-id="{client_order_id}"]')
    await expect(order_row).to_be_visible(timeout=WAIT_MS)

    async def recorded() -> bool | None:
        """The order in the recorder's executions (the trace's order step is its row, written
        apart from what the page shows: opened first, the trace had no order step)."""
        try:
            trace = await ledger_trace(ledger, client_order_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return True if "order" in {s.kind for s in trace.steps} else None

    await until(recorded, 30, 0.5, "the recorder's row of the resting order")
    await order_row.locator("button.trace-link").click()
    view = page.locator("#trace-view")
    await expect(view).to_have_attribute("data-traced", client_order_id, timeout=WAIT_MS)
    await expect(page.locator('#trace-steps > li[data-kind="order"]')).to_have_count(1, timeout=WAIT_MS)
    kinds = await page.locator("#trace-steps > li").evaluate_all("ls => ls.map(l => l.dataset.kind)")
    assert {"risk_check", "order"} <= set(kinds) and "fill" not in kinds, kinds
    await page.screenshot(path=artifact("ledger-trace-order"))
    await close_trace(page)


def _within(inner: list[str], outer: list[str]) -> bool:
    """Whether `inner` is `outer` with some steps left out (in order)."""
    rest = iter(outer)
    return all(kind in rest for kind in inner)
