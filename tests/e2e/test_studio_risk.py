"""Studio's Risk page and order ticket in a real browser against a real mesh with a real
inspector (see studio_mesh): the live state and KPIs against the policies' limits, a ticket order
checked by the inspector becoming a sim order whose position shows with its protective stop-loss
and take-profit (as orders, and as lines on the chart), a BLOCK verdict with its reasons, and the
operator's STAND_DOWN, RESUME and CLOSE_ALL buttons behind their confirmation.

The inspector runs a policy set of the test's own: a position of at most 0.02 BTC, a gross
exposure cap set from the sim's price when the module starts, so that the test's 0.01 BTC
position is near it (about 87%), and capital reserved for the ticket's orders (strategy
`manual`): twice that position's worth. What the page shows is checked against what the
inspector and the venue answer themselves (their gRPC APIs, not through the gateway); the
Overview page's risk governor, on the module's fresh (flat) inspector, against GetRiskState.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Locator, Page, expect

from tests.bus_signing import signed
from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import (
    MONEY,
    TICK,
    WAIT_MS,
    best_prices,
    far_below,
    log_in,
    open_market,
    shown_amount,
    sign_in,
)
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as cm
from trademesh.core.platform.bus.names import POSITION_REQUESTS
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SYMBOL = "BTC/USDT"
SIZE = Decimal("0.01")
MAX_SIZE = Decimal("0.02")
# The gross exposure cap: a position of SIZE at the module's starting price is this much of it.
GROSS_USE = Decimal("0.87")
# The ticket's strategy (trademesh/core/inspector/runtime.py MANUAL), and its reservation: a position of
# SIZE at the module's starting price is this much of it.
MANUAL = "manual"
CAPITAL_USE = Decimal("0.5")
# A resting entry of the capital test, far below the market: its capital in use is its size at
# the market's mark (which the inspector moves once a second at most).
RESTING = Decimal("0.001")


def policies(price: Decimal) -> str:
    cap = (SIZE * price / GROSS_USE).quantize(Decimal(1))
    reserved = (SIZE * price / CAPITAL_USE).quantize(Decimal(1))
    # Read over the shipped set: the shipped limits this module does not use are removed by name.
    return f"""
remove = ["position.max_notional", "exposure.max_net", "orders.price_band", "rate.max_per_strategy"]

[position]
max_size = "{MAX_SIZE}"

[exposure]
max_gross = "{cap}"

[loss]
max_drawdown = "0.10"
max_daily_drawdown = "0.05"
max_loss_streak = 6

[orders]
max_notional = "10000"
max_open = 20

[rate]
window_ms = 1000
max_per_venue = 20

[protect]
stop_loss = "0.02"
take_profit = "0.04"

[capital]
reserved = {{ {MANUAL} = "{reserved}" }}
"""


async def _last_price(mesh: StudioMesh) -> Decimal:
    """The sim's last 1 m close of BTC/USDT, asked of the venue itself."""
    assert mesh.venue is not None
    async with grpc.aio.insecure_channel(mesh.venue.address) as channel:
        reply = await md_grpc.MarketDataStub(channel).GetCandles(
            md.GetCandlesRequest(symbol=SYMBOL, timeframe=cm.TIMEFRAME_1_MINUTE, limit=5),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )
    assert reply.candles, "the sim has no candles"
    return Decimal(reply.candles[-1].close)


@pytest.fixture(scope="module")
async def inspector(mesh: StudioMesh) -> AsyncIterator[ServiceProcess]:
    """The inspector, for this module only, on the test's policies; everything it holds is closed
    when the module ends (the later modules find the sim flat)."""
    started = await asyncio.to_thread(mesh.start_inspector, policies(await _last_price(mesh)))
    yield started
    try:
        await mesh.close_all("e2e: the risk module ends")
    finally:
        await asyncio.to_thread(mesh.stop_inspector)


async def _risk_state(inspector: ServiceProcess) -> rk.GetRiskStateResponse:
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        stub: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)
        return await stub.GetRiskState(rk.GetRiskStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)


async def _runtime_positions(inspector: ServiceProcess) -> list[rk.PositionView]:
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        stub: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)
        reply = await stub.ListPositions(rk.ListPositionsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    return [p for p in reply.positions if not p.legacy and Decimal(p.size) != 0]


async def _venue_position(mesh: StudioMesh) -> Decimal:
    assert mesh.venue is not None
    async with grpc.aio.insecure_channel(mesh.venue.address) as channel:
        reply = await tf_grpc.TradeFlowStub(channel).GetPositions(
            tf.GetPositionsRequest(symbol=SYMBOL), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return sum((Decimal(p.size) for p in reply.positions if p.symbol == SYMBOL), Decimal(0))


def on_tick(price: Decimal) -> Decimal:
    return (price // TICK) * TICK


async def submit(
    page: Page, side: str, size: str, stop_loss: str = "", take_profit: str = "", price: str = ""
) -> str:
    """An order through the ticket (at the market, or a limit at `price`); returns the verdict's
    action once it is shown."""
    await page.select_option("#ticket-type", "limit" if price else "market")
    if price:
        await page.fill("#ticket-price", price)
    await page.fill("#ticket-size", size)
    await page.fill("#ticket-stop-loss", stop_loss)
    await page.fill("#ticket-take-profit", take_profit)
    message = page.locator("#ticket-message")
    before = await message.get_attribute("data-intent-id")
    await page.click(f"#ticket-{side}")

    async def answered() -> str | None:  # this intent's verdict, not the one before it
        intent = await message.get_attribute("data-intent-id")
        return await message.get_attribute("data-action") if intent and intent != before else None

    action: str = await until(answered, WAIT_MS / 1000, 0.1, "the inspector's verdict on the ticket")
    return action


async def open_risk(page: Page) -> None:
    await page.click("#nav-risk")
    await expect(page.locator("#risk-page")).to_be_visible()
    await expect(page.locator("#trading-page")).to_be_hidden()
    await expect(page.locator("#nav-risk")).to_have_attribute("aria-current", "page")


async def confirm_with_reason(page: Page, reason: str) -> None:
    """The confirmation asks for a reason: "yes" stays disabled until one is typed."""
    dialog = page.locator("#confirm")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#confirm-yes")).to_be_disabled()
    await page.fill("#confirm-reason", reason)
    await expect(page.locator("#confirm-yes")).to_be_enabled()
    await page.click("#confirm-yes")
    await expect(dialog).to_have_count(0)


def kpi(page: Page, key: str) -> Locator:
    return page.locator(f'#risk-kpis [data-kpi="{key}"]')


async def _check_overview_risk(page: Page, inspector: ServiceProcess) -> None:
    """The Overview page's risk governor (the overview stream's summary of GetRiskState) equal
    to the inspector's own answer: the module's inspector is flat and fresh, its figures still."""
    tiles = page.locator("#overview-risk")
    await expect(tiles).to_have_attribute("data-read", "true", timeout=WAIT_MS)
    await expect(page.locator("#overview-mesh .status")).to_have_text("live")
    state = await _risk_state(inspector)
    assert state.state == rk.RISK_STATE_ACTIVE, state
    expected = {
        "state": "active",
        "equity": state.equity,
        "realized-pnl": state.realized_pnl,
        "unrealized-pnl": state.unrealized_pnl,
        "drawdown": state.drawdown.value,
    }
    for key, value in expected.items():
        await expect(tiles.locator(f'[data-kpi="{key}"]')).to_have_attribute("data-value", value)
    # The equity to the cent, the exact figure on hover.
    equity = tiles.locator('[data-kpi="equity"] .value [data-exact]')
    await expect(equity).to_have_attribute("title", state.equity)
    await expect(equity).to_have_text(shown_amount(state.equity))
    # No ledger in this module: the strategies' PnL is named as not answering, not shown as 0.
    await expect(page.locator("#overview-unavailable")).to_have_attribute("data-parts", "ledger")
    await expect(page.locator("#overview-unavailable")).to_have_text("Not answering: ledger.")


async def test_the_risk_page_shows_the_live_state_and_kpis(
    page: Page, mesh: StudioMesh, api_key: str, inspector: ServiceProcess
) -> None:
    await sign_in(page, mesh, api_key)
    await _check_overview_risk(page, inspector)
    await open_risk(page)
    await expect(page.locator("#risk .status")).to_have_text("live", timeout=WAIT_MS)
    await expect(kpi(page, "state")).to_have_attribute("data-value", "active", timeout=WAIT_MS)
    state = await _risk_state(inspector)
    equity = kpi(page, "equity")
    # Rounded to the cent, the exact value (data-value) on hover.
    await expect(equity.locator(".value")).to_have_text(MONEY)
    exact = await equity.get_attribute("data-value") or "0"
    assert Decimal(exact) > 0
    await expect(equity.locator(".value [data-exact]")).to_have_attribute("title", exact)
    # Each limit as the policies set it: drawdown 10%, daily 5%, loss streak 6, gross exposure cap.
    await expect(kpi(page, "drawdown")).to_have_attribute("data-limit", "0.1")
    await expect(kpi(page, "drawdown").locator(".limit")).to_have_text("limit 10.0%")
    await expect(kpi(page, "daily-drawdown")).to_have_attribute("data-limit", "0.05")
    await expect(kpi(page, "loss-streak")).to_have_attribute("data-limit", "6")
    await expect(kpi(page, "gross-exposure")).to_have_attribute("data-limit", state.gross_exposure.limit)
    await expect(kpi(page, "open-orders")).to_have_attribute("data-limit", "20")
    await expect(kpi(page, "cooldown")).to_have_attribute("data-value", "none")
    await expect(page.locator('#risk-kpis [data-kpi^="rate"]').first).to_be_visible()
    # The policy status: each limited policy, and the policy file it came from.
    for key in ("loss.max_drawdown", "exposure.max_gross", "position.max_size", "orders.max_notional"):
        await expect(page.locator(f'#policy-status tr[data-policy="{key}"]')).to_have_count(1)
    await expect(page.locator("#policy-source")).to_contain_text("policies.toml")
    # Live: the timeline's stream is up, and the KPIs follow the inspector's equity as it moves.
    await expect(page.locator("#risk-timeline .status")).to_have_text("live", timeout=WAIT_MS)
    await page.screenshot(path=artifact("risk-page"), full_page=True)


def _capital(state: rk.GetRiskStateResponse, strategy: str) -> rk.CapitalUse:
    (use,) = [c for c in state.capital if c.strategy_id == strategy]
    return use


_READ_CAPITAL_ROW = """r => {
    const used = r.querySelector('[data-col="used"] [data-exact]');
    return {
        reserved: r.dataset.reserved, used: r.dataset.used, suppressed: r.dataset.suppressed,
        utilisation: r.dataset.utilisation,
        utilisationText: r.querySelector('[data-col="utilisation"]')?.textContent ?? null,
        usedTitle: used ? used.title : null, usedText: used ? used.textContent : null,
    };
}"""


async def _capital_shown(
    page: Page, inspector: ServiceProcess, what: str
) -> tuple[rk.CapitalUse, dict[str, str | None]]:
    """The inspector's capital row of the ticket's strategy once the page shows it alike, with
    the row as the page showed it then (its use moves with the mark, once a second at most: the
    page's sample and the inspector's answer are read until they agree, the row in one read)."""
    row = page.locator(f'#risk-capital tr[data-strategy="{MANUAL}"]')

    async def alike() -> tuple[rk.CapitalUse, dict[str, str | None]] | None:
        use = _capital(await _risk_state(inspector), MANUAL)
        shown: dict[str, str | None] = await row.evaluate(_READ_CAPITAL_ROW)
        same = [shown["reserved"], shown["used"], shown["suppressed"]]
        return (use, shown) if same == [use.reserved, use.used, use.suppressed] else None

    found: tuple[rk.CapitalUse, dict[str, str | None]] = await until(alike, WAIT_MS / 1000, 0.2, what)
    return found


async def test_capital_efficiency_shows_the_reservation_its_use_and_utilisation_over_time(
    page: Page, mesh: StudioMesh, api_key: str, inspector: ServiceProcess
) -> None:
    """A resting entry of the ticket's strategy uses some of the strategy's reservation: the
    page's row says so as GetRiskState does, with its utilisation, and the chart gains a sample
    a second; an entry past the reservation is refused and counted as suppressed; the entry
    cancelled, the use is back to zero."""
    await log_in(page, mesh, api_key)
    await open_market(page, "1m")
    bid, _ = await best_prices(page)
    price = far_below(bid)
    assert await submit(page, "buy", str(RESTING), price=price) == "allow"
    client_order_id = await page.locator("#ticket-message").get_attribute("data-client-order-id")
    assert client_order_id
    await open_risk(page)
    use, shown = await _capital_shown(page, inspector, "the resting entry's capital in use shown")
    # Its size at the mark: about the market's price, twice the entry's limit.
    assert use.reserved and RESTING * Decimal(price) < Decimal(use.used) < 3 * RESTING * Decimal(price), use
    row = page.locator(f'#risk-capital tr[data-strategy="{MANUAL}"]')
    fraction = float(shown["utilisation"] or "nan")
    assert abs(fraction - float(Decimal(use.used) / Decimal(use.reserved))) < 1e-9, shown
    assert re.fullmatch(r"\d+\.\d+%", shown["utilisationText"] or ""), shown
    assert shown["usedTitle"] == use.used and shown["usedText"] == shown_amount(use.used), shown
    # Over time: the selected strategy's chart gains the page's samples, one a second.
    chart = page.locator("#risk-capital-chart")
    await expect(chart).to_have_attribute("data-strategy", MANUAL)
    drawn = int(await chart.get_attribute("data-points") or "0")
    await page.wait_for_function(
        f"() => Number(document.querySelector('#risk-capital-chart').dataset.points) > {drawn}",
        timeout=WAIT_MS,
    )

    # Past the reservation (and the size limit): refused, its notional counted as suppressed.
    await page.click("#nav-trading")
    over = (Decimal(use.reserved) / Decimal(price)).quantize(Decimal("0.001")) + Decimal("0.001")
    assert await submit(page, "buy", str(over), price=price) == "block"
    await expect(page.locator('#ticket-reasons li[data-policy="capital.reserved"]')).to_be_visible()
    await open_risk(page)
    use, _ = await _capital_shown(page, inspector, "the refused entry counted as suppressed")
    assert Decimal(use.suppressed) > 0, use

    # The resting entry cancelled: nothing of the reservation in use.
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        stub: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)
        request = rk.CancelOrderRequest(
            venue="sim", client_order_id=client_order_id, reason="e2e: capital test"
        )
        await stub.CancelOrder(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
    await expect(row).to_have_attribute("data-used", re.compile(r"^0(\.0*)?$"), timeout=WAIT_MS)
    await page.locator("#risk-capital-panel").screenshot(path=artifact("risk-capital"))


async def test_a_ticket_order_through_the_inspector_becomes_a_sim_order_with_its_protective_orders(
    page: Page, mesh: StudioMesh, api_key: str, inspector: ServiceProcess
) -> None:
    await log_in(page, mesh, api_key)
    await open_market(page, "1m")
    await expect(page.locator("#trading .status")).to_have_text("live", timeout=WAIT_MS)
    _, ask = await best_prices(page)
    stop, target = on_tick(ask * Decimal("0.97")), on_tick(ask * Decimal("1.05"))
    action = await submit(page, "buy", str(SIZE), str(stop), str(target))
    message = page.locator("#ticket-message")
    why = await page.locator("#ticket-reasons").inner_text()
    assert action == "allow", f"{await message.inner_text()}: {why}"
    await expect(message).to_contain_text("allow: buy 0.01 BTC/USDT market: filled")
    order_id = await message.get_attribute("data-order-id")
    assert order_id
    # The venue filled it: the fill, the sim's position, and the take-profit resting at the venue
    # (a reduce-only limit sell at the target; the stop-loss the inspector emulates, or places).
    await expect(page.locator(f'#fills tr[data-order-id="{order_id}"]').first).to_be_visible(timeout=WAIT_MS)
    take_profit = page.locator("#open-orders tr", has_text="reduce-only").filter(has_text="sell")
    await expect(take_profit.first).to_be_visible(timeout=WAIT_MS)

    await open_risk(page)
    row = page.locator('#risk-positions tr[data-legacy="false"]')
    # The inspector's own view of the position (the sim's account is the e2e session's: a fill of
    # another module's order, seen on the bus, may move it by a lot or two).
    (shown,) = await _runtime_positions(inspector)
    size = Decimal(shown.size)
    assert abs(size - SIZE) <= Decimal("0.0005"), shown
    await expect(row).to_have_attribute("data-size", shown.size, timeout=WAIT_MS)
    await expect(row).to_have_attribute("aria-selected", "true")
    sl = row.locator('[data-role="stop_loss"] .protective')
    tp = row.locator('[data-role="take_profit"] .protective')
    await expect(sl).to_have_count(1, timeout=WAIT_MS)
    await expect(tp).to_have_count(1, timeout=WAIT_MS)
    assert Decimal(await sl.get_attribute("data-price") or "0") == stop
    assert Decimal(await tp.get_attribute("data-price") or "0") == target
    assert Decimal(await sl.get_attribute("data-size") or "0") == size
    # As the inspector itself tells, and the TP's order is the one open at the venue.
    (view,) = await _runtime_positions(inspector)
    roles = {o.role: o for o in view.protective}
    assert Decimal(roles["stop_loss"].price) == stop and Decimal(roles["take_profit"].price) == target
    venue_orders = {o.client_order_id for o in await mesh.open_orders()}
    assert roles["take_profit"].client_order_id in venue_orders
    assert await tp.get_attribute("data-client-order-id") == roles["take_profit"].client_order_id
    # The chart draws the selected position's levels, over its market's candles.
    chart = page.locator("#risk-chart")
    await expect(chart).to_have_attribute("data-position", f"sim {SYMBOL}")
    await page.wait_for_function(
        "() => Number(document.querySelector('#risk-chart')?.dataset.candles) > 0", timeout=WAIT_MS
    )
    assert Decimal(await chart.get_attribute("data-level-stop-loss") or "0") == stop
    assert Decimal(await chart.get_attribute("data-level-take-profit") or "0") == target
    assert Decimal(await chart.get_attribute("data-level-entry") or "0") == Decimal(view.average_price)
    await chart.screenshot(path=artifact("risk-chart-sl-tp"))
    # The gross exposure is now near its cap: its KPI and its policy are highlighted.
    await expect(kpi(page, "gross-exposure")).to_have_attribute("data-near", "", timeout=WAIT_MS)
    gross = page.locator('#policy-status tr[data-policy="exposure.max_gross"]')
    await expect(gross).to_have_attribute("data-near", "")
    await expect(gross).to_have_class("near-limit")
    drawdown = page.locator('#policy-status tr[data-policy="loss.max_drawdown"]')
    await expect(drawdown).not_to_have_attribute("data-near", "")
    # The ALLOW is on the timeline.
    allowed = page.locator('#risk-events tr[data-action="allow"]', has_text="every policy passed")
    await expect(allowed.first).to_be_visible(timeout=WAIT_MS)


async def test_a_blocked_ticket_order_shows_each_reason(
    page: Page, mesh: StudioMesh, api_key: str, inspector: ServiceProcess
) -> None:
    await log_in(page, mesh, api_key)
    await open_market(page, "1m")
    before = {o.order_id for o in await mesh.open_orders()}
    # Past the position size limit (0.02), and past the gross exposure cap.
    action = await submit(page, "buy", "0.05")
    assert action == "block"
    message = page.locator("#ticket-message")
    await expect(message).to_have_attribute("data-tone", "error")
    await expect(message).to_contain_text(" reasons")
    await expect(message).not_to_have_attribute("data-order-id", re.compile(".*"))
    size = page.locator('#ticket-reasons li[data-policy="position.max_size"]')
    await expect(size).to_be_visible()
    await expect(size).to_contain_text(f"limit={MAX_SIZE}")
    await expect(page.locator('#ticket-reasons li[data-policy="exposure.max_gross"]')).to_be_visible()
    await page.locator("#ticket").screenshot(path=artifact("ticket-blocked"))
    # Nothing reached the venue; the timeline has the BLOCK with its policy.
    assert {o.order_id for o in await mesh.open_orders()} == before
    await open_risk(page)
    blocked = page.locator('#risk-events tr[data-action="block"][data-policy="position.max_size"]')
    await expect(blocked.first).to_be_visible(timeout=WAIT_MS)
    await expect(blocked.first.locator('[data-col="values"]')).to_contain_text(f"limit={MAX_SIZE}")


async def test_a_strategys_own_close_refused_shows_on_the_timeline_with_why(
    page: Page, mesh: StudioMesh, api_key: str, inspector: ServiceProcess
) -> None:
    """Issue 41: a strategy's own position request goes through the inspector like any order, and
    Studio shows what became of it. A close for a strategy that holds nothing, published on the bus
    as the detector publishes it, is a BLOCK naming why (`request.no_position`) on the timeline,
    with its market and strategy; nothing reaches the venue."""
    await log_in(page, mesh, api_key)
    await open_risk(page)
    await expect(page.locator("#risk-timeline .status")).to_have_text("live", timeout=WAIT_MS)
    before = {o.order_id for o in await mesh.open_orders()}
    request = sig.PositionRequest(
        request_id=f"e2e-{uuid.uuid4().hex}", strategy_id="e2e-ghost", venue="sim", symbol=SYMBOL,
        action=sig.POSITION_ACTION_CLOSE, ts_request_ns=time.time_ns(),
    )  # fmt: skip
    envelope = bus.Envelope(source="e2e-detector", ts_publish_ns=time.time_ns())
    envelope.position_requests.requests.append(request)
    client: Any = aioredis.Redis.from_url(mesh.redis_url)
    try:
        await client.xadd(POSITION_REQUESTS, signed(POSITION_REQUESTS, envelope.SerializeToString()))
    finally:
        await client.aclose()
    refused = page.locator('#risk-events tr[data-action="block"][data-policy="request.no_position"]')
    await expect(refused.first).to_be_visible(timeout=WAIT_MS)
    await expect(refused.first.locator('[data-col="reason"]')).to_have_text(
        "close: strategy 'e2e-ghost' holds no position in 'BTC/USDT' at 'sim'"
    )
    await expect(refused.first.locator('[data-col="strategy"]')).to_have_text("e2e-ghost")
    await expect(refused.first.locator('[data-col="market"]')).to_have_text(f"sim {SYMBOL}")
    await page.locator("#risk-timeline").screenshot(path=artifact("risk-request-refused"))
    assert {o.order_id for o in await mesh.open_orders()} == before


async def test_stand_down_from_the_button_changes_the_state_and_shows_on_the_timeline(
    page: Page, mesh: StudioMesh, api_key: str, inspector: ServiceProcess
) -> None:
    await log_in(page, mesh, api_key)
    await open_risk(page)
    await expect(kpi(page, "state")).to_have_attribute("data-value", "active", timeout=WAIT_MS)
    # "Cancel" in the confirmation changes nothing.
    await page.click("#risk-stand-down")
    await expect(page.locator("#confirm")).to_contain_text("No new entries")
    await page.click("#confirm-no")
    await expect(page.locator("#confirm")).to_have_count(0)
    await asyncio.sleep(1.0)
    assert (await _risk_state(inspector)).state == rk.RISK_STATE_ACTIVE

    await page.click("#risk-stand-down")
    await page.screenshot(path=artifact("risk-stand-down-confirmation"))
    await confirm_with_reason(page, "e2e: standing down from Studio")  # the reason recorded
    await expect(page.locator("#risk-mode-message")).to_have_attribute("data-state", "standing down")
    await expect(kpi(page, "state")).to_have_attribute("data-value", "standing down", timeout=WAIT_MS)
    await expect(kpi(page, "state")).to_have_attribute("data-tone", "error")
    assert (await _risk_state(inspector)).state == rk.RISK_STATE_STANDING_DOWN
    reason = "e2e: standing down from Studio"
    event = page.locator('#risk-events tr[data-action="stand down"]', has_text=reason)
    await expect(event).to_have_count(1, timeout=WAIT_MS)
    await expect(event.locator('[data-col="policy"]')).to_have_text("operator")
    await expect(page.locator("#risk-transition")).to_have_attribute("data-after", "standing down")

    # Standing down, a new entry from the ticket is blocked by the state.
    await page.click("#nav-trading")
    await open_market(page, "1m")
    assert await submit(page, "buy", "0.001") == "block"
    await expect(page.locator('#ticket-reasons li[data-policy="state"]')).to_be_visible()

    await open_risk(page)
    await page.click("#risk-resume")
    await confirm_with_reason(page, "e2e: resuming")
    await expect(kpi(page, "state")).to_have_attribute("data-value", "active", timeout=WAIT_MS)
    resumed = page.locator('#risk-events tr[data-action="resume"]', has_text="e2e: resuming")
    await expect(resumed).to_have_count(1, timeout=WAIT_MS)


async def test_close_all_from_the_button_flattens_every_position(
    page: Page, mesh: StudioMesh, api_key: str, inspector: ServiceProcess
) -> None:
    await log_in(page, mesh, api_key)
    if not await _runtime_positions(inspector):  # this test alone: a position of its own first
        await open_market(page, "1m")
        assert await submit(page, "buy", str(SIZE)) == "allow"
    flat_at_start = await _venue_position(mesh) - sum(
        (Decimal(p.size) for p in await _runtime_positions(inspector)), Decimal(0)
    )
    protective = {o.client_order_id for p in await _runtime_positions(inspector) for o in p.protective}
    await open_risk(page)
    runtime = page.locator('#risk-positions tr[data-legacy="false"]')
    await expect(runtime).to_have_count(1, timeout=WAIT_MS)

    await page.click("#risk-close-all")
    await expect(page.locator("#confirm")).to_contain_text("CLOSE ALL?")
    await page.screenshot(path=artifact("risk-close-all-confirmation"))
    await confirm_with_reason(page, "e2e: emergency")
    await expect(kpi(page, "state")).to_have_attribute("data-value", "halted", timeout=WAIT_MS)
    await expect(runtime).to_have_count(0, timeout=WAIT_MS)
    closed = page.locator('#risk-events tr[data-action="close all"]', has_text="e2e: emergency")
    await expect(closed).to_have_count(1, timeout=WAIT_MS)

    # At the venue: the position flat (what was there before the inspector's start apart), and
    # none of the inspector's orders left open.
    async def flattened() -> bool | None:
        return True if await _venue_position(mesh) == flat_at_start else None

    await until(flattened, WAIT_MS / 1000, 0.2, "the sim's position flattened")
    assert not await _runtime_positions(inspector)
    assert protective and not protective & {o.client_order_id for o in await mesh.open_orders()}
    # Halted: resume, so the inspector is left as it started.
    await page.click("#risk-resume")
    await confirm_with_reason(page, "e2e: after the emergency")
    await expect(kpi(page, "state")).to_have_attribute("data-value", "active", timeout=WAIT_MS)
