"""A leveraged perpetual position in Studio (issue 60), in a real browser against the real mesh
(studio_mesh): a sim account of its own (`trademesh venue sim --account perp`, its config a linear
perpetual BTC/USDT:USDT beside spot BTC/USDT) holds a long at 10x isolated margin, opened at the
venue with the trading credential (the test stands in for the inspector), and a spot position.

The Accounts page's card of the account shows the perpetual's leverage, margin ratio, liquidation
price and the distance to liquidation, |mark - liquidation| / mark, coloured by its tone (docs/
gateway.md, "Margin and liquidation": safe above 20 %, near from 5 % to 20 %, danger below 5 %),
each figure the venue's; the spot row leaves those cells empty. The Risk page shows the same
position as the inspector sees it (legacy: found at the venue, never touched), with the same
figures coloured. The MCP tool `positions` and `buf curl` through the gateway answer the same
margin fields."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import grpc
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.async_api import Locator, Page, expect

from tests.e2e.studio_mesh import ROOT, StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, log_in
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ACCOUNT = "perp"
VENUE = f"sim.{ACCOUNT}"
PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"
LEVERAGE = Decimal(10)
PERP_SIZE = "0.5"  # 32,500 USDT of notional at 65,000: 3,250 of margin at 10x
SPOT_SIZE = "0.01"
TRADE = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
# The inspector's own position (Risk): 3,500 USDT of notional, within the shipped policies.
RUNTIME_PERP = "ETH/USDT:USDT"
RUNTIME_SIZE = "1"
BUF = ROOT / "node_modules" / ".bin" / "buf"
PROTO = ROOT / "proto"
# docs/studio.md, "Margin and liquidation" (trademesh/gateway/studio/src/lib/margin.ts).
SAFE_ABOVE = Decimal("0.2")
DANGER_BELOW = Decimal("0.05")
# The colours of the tones (trademesh/gateway/studio/src/styles.css: --buy, --warn, and white on red).
TONE_COLOURS = {"safe": "rgb(38, 166, 154)", "near": "rgb(210, 153, 34)", "danger": "rgb(255, 255, 255)"}
ANY_TONE = re.compile(r"^(safe|near|danger)$")
MARGIN_COLUMNS = ("leverage", "margin-ratio", "liquidation", "liquidation-distance")

# Isolated margin by default (a cross position backed by the whole balance has no liquidation
# price: the account's 100,000 USDT carry it below zero).
CONFIG = """
tick_interval_ms = 50
margin_mode = "isolated"
[balances]
USDT = "100000"
"""
SYMBOL = """
[[symbols]]
symbol = "{symbol}"
start_price = "{price}"
tick_size = "{tick}"
lot_size = "0.001"
trades_per_s = 5
book_updates_per_s = 10
level_spacing_ticks = 20
maker_size_lots = 3000
taker_size_lots = 1000
"""


@dataclass(frozen=True)
class Perp:
    venue: ServiceProcess


async def _place(stub: tf_grpc.TradeFlowAsyncStub, symbol: str, size: str) -> None:
    order = tf.PlaceOrderRequest(symbol=symbol, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size=size)
    placed = await stub.PlaceOrder(order, metadata=TRADE, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED, placed


async def venue_positions(venue: ServiceProcess) -> dict[str, tf.Position]:
    """The account's positions as the venue itself answers, by symbol."""
    async with grpc.aio.insecure_channel(venue.address) as channel:
        stub: tf_grpc.TradeFlowAsyncStub = tf_grpc.TradeFlowStub(channel)
        reply = await stub.GetPositions(tf.GetPositionsRequest(), metadata=TRADE, timeout=CALL_TIMEOUT_S)
    return {p.symbol: p for p in reply.positions if Decimal(p.size) != 0}


@pytest.fixture(scope="module")
async def perp(mesh: StudioMesh) -> AsyncIterator[Perp]:
    """The perp account's venue with its two positions open: the perpetual long at 10x isolated
    (its leverage set first, as the inspector sets it before an order), and spot BTC; stopped
    when the module ends."""
    path = mesh.directory / f"sim-{ACCOUNT}.toml"
    symbols = [
        SYMBOL.format(symbol=PERP, price="65000", tick="0.1"),
        SYMBOL.format(symbol=SPOT, price="65000", tick="0.01"),
        SYMBOL.format(symbol=RUNTIME_PERP, price="3500", tick="0.01"),
    ]
    path.write_text(CONFIG + "".join(symbols))
    venue = await asyncio.to_thread(
        mesh.processes.start, "venue", "sim", "--account", ACCOUNT, "--config", str(path)
    )
    try:
        async with grpc.aio.insecure_channel(venue.address) as channel:
            stub: tf_grpc.TradeFlowAsyncStub = tf_grpc.TradeFlowStub(channel)
            request = tf.SetLeverageRequest(
                symbol=PERP, leverage=str(LEVERAGE), margin_mode=tf.MARGIN_MODE_ISOLATED
            )
            setting = await stub.SetLeverage(request, metadata=TRADE, timeout=CALL_TIMEOUT_S)
            assert Decimal(setting.setting.leverage) == LEVERAGE, setting
            await _place(stub, PERP, PERP_SIZE)
            await _place(stub, SPOT, SPOT_SIZE)

        async def marked() -> bool | None:
            held = (await venue_positions(venue)).get(PERP)
            return True if held is not None and held.mark_price and held.liquidation_price else None

        await until(marked, WAIT_MS / 1000, 0.2, "the perpetual's mark and liquidation price at the venue")
        yield Perp(venue)
    finally:
        await asyncio.to_thread(venue.terminate)


def distance(mark: str, liquidation: str) -> Decimal:
    """|mark - liquidation| / mark to a millionth, half away from zero (lib/margin)."""
    exact = abs(Decimal(mark) - Decimal(liquidation)) / Decimal(mark)
    return exact.quantize(Decimal("0.000001"), ROUND_HALF_UP)


def tone(gap: Decimal) -> str:
    if gap > SAFE_ABOVE:
        return "safe"
    return "danger" if gap < DANGER_BELOW else "near"


def percent(fraction: str) -> str:
    """A fraction as Studio shows it: "0.0421" -> "4.2%"."""
    return f"{(Decimal(fraction) * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


# One read of a row's margin cells (a redraw between reads would mix two marks).
_READ_ROW = """(row) => {
    if (!row.isConnected) return null;  // redrawn meanwhile: its styles are gone, read it again
    const cell = (col) => row.querySelector(`td[data-col="${col}"]`);
    const out = {};
    for (const col of ["leverage", "margin-ratio", "liquidation", "liquidation-distance"]) {
        const td = cell(col);
        out[col] = td === null ? null : {
            text: td.textContent.trim(),
            data: {...td.dataset},
            exact: td.querySelector("[data-exact]")?.dataset.exact ?? "",
            color: getComputedStyle(td).color,
        };
    }
    out.mark = row.dataset.mark ?? "";
    out.markCell = cell("mark")?.querySelector("[data-exact]")?.dataset.exact ?? "";
    return out;
}"""  # its columns: MARGIN_COLUMNS


async def read_row(row: Locator) -> dict[str, Any]:
    """The row's cells in one go, from the row as drawn: the page redraws its rows as the
    account streams (a mark a second), and a row detached between the locator's resolving and
    the read has no computed style; it is read again (the locator finds the new one)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while (cells := await row.evaluate(_READ_ROW)) is None:
        if time.monotonic() > deadline:
            pytest.fail("the row was redrawn at every read")
        await asyncio.sleep(0.05)
    cells_read: dict[str, Any] = cells
    return cells_read


def assert_margin_row(
    cells: dict[str, Any],
    mark: str,
    venue_position: tf.Position,
    exact: bool = True,
    leverage: Decimal = LEVERAGE,
) -> str:
    """The row's margin cells as the venue's figures, the distance |mark - liquidation| / mark
    (Studio's to a millionth; `exact` False: the inspector's, to 1e-8, at a mark it held a moment
    apart from the row's) and coloured by its tone; answers the tone."""
    lever, ratio = cells["leverage"], cells["margin-ratio"]
    liquidation, gap = cells["liquidation"], cells["liquidation-distance"]
    assert Decimal(lever["data"]["leverage"]) == leverage, cells
    assert lever["text"] == f"{leverage}\u00d7 isolated" and lever["data"]["marginMode"] == "isolated", cells
    assert ratio["data"]["marginRatio"] and ratio["text"] == percent(ratio["data"]["marginRatio"]), cells
    price = liquidation["data"]["liquidationPrice"]
    assert price == venue_position.liquidation_price and liquidation["exact"] == price, cells
    shown = Decimal(gap["data"]["distance"])
    if exact:
        assert shown == distance(mark, price), (cells, mark)
    else:
        assert abs(shown - distance(mark, price)) < Decimal("0.001"), (cells, mark)
    assert gap["text"] == percent(str(shown)), cells
    shown_tone = gap["data"]["tone"]
    assert shown_tone == tone(shown), (cells, mark)
    assert gap["color"] == TONE_COLOURS[shown_tone], cells
    return str(shown_tone)


async def test_the_accounts_page_shows_a_leveraged_positions_margin_coloured_and_a_spot_ones_not(
    page: Page, mesh: StudioMesh, api_key: str, perp: Perp
) -> None:
    await log_in(page, mesh, api_key)
    await page.click("#nav-accounts")
    card = page.locator(f'#accounts-cards article[data-venue="{VENUE}"]')
    row = card.locator(f'.account-positions tr[data-symbol="{PERP}"]')
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    # Its market's tick arrived (the liquidation price at 0.1) and its figures are drawn.
    await expect(row.locator('td[data-col="liquidation-distance"]')).to_have_attribute(
        "data-tone", ANY_TONE, timeout=WAIT_MS
    )
    held = (await venue_positions(perp.venue))[PERP]
    cells = await read_row(row)
    assert cells["mark"] and cells["markCell"] == cells["mark"], cells
    shown = assert_margin_row(cells, cells["mark"], held)
    # At 10x isolated the liquidation price is about 9.6 % under the entry: near it, amber.
    assert shown == "near", cells

    spot = card.locator(f'.account-positions tr[data-symbol="{SPOT}"]')
    await expect(spot).to_have_count(1, timeout=WAIT_MS)
    plain = await read_row(spot)
    for col in MARGIN_COLUMNS:
        assert plain[col]["text"] == "" and "tone" not in plain[col]["data"], plain
    assert "NaN" not in await card.inner_text()
    await page.screenshot(path=artifact("margin-accounts"), full_page=True)


async def _entered(stub: rk_grpc.InspectorAsyncStub, intent: am.Intent) -> bool | None:
    """The intent allowed (retried whole, its id the same, while the inspector has yet to learn
    the venue from the gateway's registry: a retried intent never places two)."""
    answer = await stub.SubmitIntent(
        rk.SubmitIntentRequest(intent=intent), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    if answer.action == rk.RISK_ACTION_ALLOW:
        return True
    print("not allowed yet:", [(r.policy, r.reason) for r in answer.reasons])
    return None


async def _listed(stub: rk_grpc.InspectorAsyncStub) -> bool | None:
    """The inspector lists the runtime perpetual with its liquidation price."""
    answer = await stub.ListPositions(
        rk.ListPositionsRequest(venue=VENUE), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    found = [p for p in answer.positions if p.symbol == RUNTIME_PERP and not p.legacy and p.liquidation_price]
    if not found:
        print(
            "listed:",
            [(p.symbol, p.size, p.legacy, p.leverage, p.liquidation_price) for p in answer.positions],
        )
    return True if found else None


@pytest.fixture
async def inspector(mesh: StudioMesh, perp: Perp) -> AsyncIterator[ServiceProcess]:
    """The inspector on the shipped policies, for one test: named before the test's page, it stops
    after the page has closed (stopped under the open Risk page, it waited its 5 s of grace for
    the page's stream through the gateway to end)."""
    started = await asyncio.to_thread(mesh.start_inspector)
    try:
        yield started
    finally:
        await asyncio.to_thread(mesh.stop_inspector)


async def test_the_risk_page_shows_the_inspectors_leveraged_position_with_its_margin_coloured(
    inspector: ServiceProcess, page: Page, mesh: StudioMesh, api_key: str, perp: Perp
) -> None:
    # The inspector follows every venue registered with the gateway. Its own position (an intent
    # at 10x, which it sets at the venue before the order) makes the account one it watches the
    # margin of; the BTC positions opened before it started are legacy to it (never touched).
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        stub: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)
        intent = am.Intent(
            intent_id=str(uuid.uuid4()), venue=VENUE, symbol=RUNTIME_PERP, side=common.SIDE_BUY,
            size=RUNTIME_SIZE, entry_type=tf.ORDER_TYPE_MARKET, leverage=str(LEVERAGE),
            stop_loss="2800", take_profit="4500", strategy_id="manual",
        )  # fmt: skip
        await until(lambda: _entered(stub, intent), WAIT_MS / 1000, 0.5, "the leveraged intent allowed")
        await until(lambda: _listed(stub), WAIT_MS / 1000, 0.2, "the inspector's margin figures")
    held = await venue_positions(perp.venue)
    assert Decimal(held[RUNTIME_PERP].leverage) == LEVERAGE, held  # set before its order

    await log_in(page, mesh, api_key)
    await page.click("#nav-risk")
    rows = f'#risk-positions tr[data-venue="{VENUE}"]'
    for symbol, legacy in ((RUNTIME_PERP, "false"), (PERP, "true")):
        row = page.locator(f'{rows}[data-symbol="{symbol}"][data-legacy="{legacy}"]')
        await expect(row).to_have_count(1, timeout=WAIT_MS)
        await expect(row.locator('td[data-col="liquidation-distance"]')).to_have_attribute(
            "data-tone", ANY_TONE, timeout=WAIT_MS
        )
        cells = await read_row(row)
        # The inspector's distance, at the mark it holds (the row's mark column; a legacy
        # position's is the venue's, which the row does not show).
        mark = cells["markCell"] or (await venue_positions(perp.venue))[symbol].mark_price
        assert assert_margin_row(cells, mark, held[symbol], exact=False) == "near", cells
    spot = page.locator(f'{rows}[data-symbol="{SPOT}"]')
    await expect(spot).to_have_count(1, timeout=WAIT_MS)
    plain = await read_row(spot)
    for col in MARGIN_COLUMNS:
        assert plain[col]["text"] == "" and "tone" not in plain[col]["data"], plain
    await page.screenshot(path=artifact("margin-risk"), full_page=True)


@contextlib.asynccontextmanager
async def mcp_client(url: str, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_the_mcp_positions_tool_and_buf_curl_answer_the_margin_fields(
    mesh: StudioMesh, api_key: str, perp: Perp
) -> None:
    async with mcp_client(mesh.url, api_key) as client:
        result = await client.call_tool("positions", {"venue": VENUE})
        setting = await client.call_tool("leverage", {"venue": VENUE, "symbol": PERP})
        spot_setting = await client.call_tool("leverage", {"venue": VENUE, "symbol": SPOT})
    assert not setting.is_error and setting.structured_content is not None, setting.content
    assert setting.structured_content["margin_mode"] == "isolated", setting.structured_content
    assert Decimal(setting.structured_content["leverage"]) == LEVERAGE, setting.structured_content
    assert Decimal(setting.structured_content["max_leverage"]) >= LEVERAGE, setting.structured_content
    assert spot_setting.is_error and f"{SPOT}" in str(spot_setting.content), spot_setting.content
    assert not result.is_error, result.content
    answer = result.structured_content
    assert answer is not None
    by_symbol = {p["symbol"]: p for p in answer["positions"]}
    leveraged, plain = by_symbol[PERP], by_symbol[SPOT]
    assert Decimal(leveraged["leverage"]) == LEVERAGE and leveraged["margin_mode"] == "isolated", leveraged
    assert leveraged["settle_asset"] == "USDT", leveraged
    for key in ("mark_price", "initial_margin", "maintenance_margin", "margin_ratio", "liquidation_price"):
        assert isinstance(leveraged[key], str) and Decimal(leveraged[key]) > 0, (key, leveraged)
    assert isinstance(leveraged["unrealized_pnl"], str) and Decimal(leveraged["unrealized_pnl"]).is_finite()
    # Initial margin: the notional at entry over the leverage.
    notional = Decimal(leveraged["size"]) * Decimal(leveraged["entry_price"])
    assert Decimal(leveraged["initial_margin"]) == notional / LEVERAGE, leveraged
    assert all(plain[key] is None for key in ("leverage", "margin_mode", "liquidation_price")), plain

    # buf curl over gRPC-web through the gateway: the gateway passes the venue's message whole.
    command = [
        str(BUF), "curl", "--protocol", "grpcweb", "--schema", str(PROTO), "-d", "{}",
        "-H", f"Authorization: Bearer {api_key}", "-H", f"x-trademesh-target: {VENUE}",
        f"{mesh.url}/trademesh.tradeflow.v1.TradeFlow/GetPositions",
    ]  # fmt: skip
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    curled = {p["symbol"]: p for p in json.loads(done.stdout)["positions"]}
    assert Decimal(curled[PERP]["leverage"]) == LEVERAGE, curled
    assert curled[PERP]["marginMode"] == "MARGIN_MODE_ISOLATED", curled
    assert curled[PERP]["liquidationPrice"] == leveraged["liquidation_price"], curled
    assert "leverage" not in curled[SPOT] and "liquidationPrice" not in curled[SPOT], curled


# A perpetual falling 0.6 % a second with little noise (tests/integration/test_inspector_leverage.py's
# market, three times as steep): a 20x isolated long opened at 65,000 is liquidated near 62,000,
# 4.6 % below (Binance's first bracket keeps 0.4 %), about 8 s later; from its opening it is in
# danger (under 5 %), which the page shows within a second or two of it. (At 0.2 % a second the
# test waited 23 s for the liquidation, a third of the module; at 0.4 %, 11 s.)
FALLING_ACCOUNT = "falling"
FALLING_VENUE = f"sim.{FALLING_ACCOUNT}"
FALLING = """
tick_interval_ms = 50
margin_mode = "isolated"
[balances]
USDT = "100000"
[[symbols]]
symbol = "BTC/USDT:USDT"
start_price = "65000"
tick_size = "0.1"
lot_size = "0.001"
min_size = "0.001"
level_spacing_ticks = 5
maker_size_lots = 5000
taker_size_lots = 100
volatility_per_sqrt_s = 0.0001
drift_per_s = -0.006
"""
FALLING_LEVERAGE = Decimal(20)
LIQUIDATED_WITHIN_MS = 120_000


async def _open_long(venue: ServiceProcess, leverage: Decimal, size: str) -> None:
    async with grpc.aio.insecure_channel(venue.address) as channel:
        stub: tf_grpc.TradeFlowAsyncStub = tf_grpc.TradeFlowStub(channel)
        request = tf.SetLeverageRequest(
            symbol=PERP, leverage=str(leverage), margin_mode=tf.MARGIN_MODE_ISOLATED
        )
        await stub.SetLeverage(request, metadata=TRADE, timeout=CALL_TIMEOUT_S)
        await _place(stub, PERP, size)


async def test_trading_shows_a_position_in_danger_then_its_liquidation_in_the_fills_and_the_trace(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    path = mesh.directory / f"sim-{FALLING_ACCOUNT}.toml"
    path.write_text(FALLING)
    # The ledger books the account's fills (the trace is its); it follows the venues registered.
    # Both start at once, while the page logs in (one after the other, 3-6 s of the test).
    ledger = asyncio.create_task(asyncio.to_thread(mesh.start_ledger))
    args = ("venue", "sim", "--account", FALLING_ACCOUNT, "--config", str(path))
    starting = asyncio.create_task(asyncio.to_thread(mesh.processes.start, *args))
    try:
        await log_in(page, mesh, api_key)
        await ledger
        venue = await starting
        await expect(page.locator(f'#venue-select option[value="{FALLING_VENUE}"]')).to_have_count(
            1, timeout=WAIT_MS
        )
        await page.select_option("#venue-select", FALLING_VENUE)
        await expect(page.locator("#trading .status")).to_have_text("live", timeout=WAIT_MS)
        await _open_long(venue, FALLING_LEVERAGE, "0.1")

        # The position: 20x, its liquidation price 4.6 % under the mark: in danger, red.
        row = page.locator(f'#positions tr[data-symbol="{PERP}"]')
        await expect(row.locator('td[data-col="liquidation-distance"]')).to_have_attribute(
            "data-tone", ANY_TONE, timeout=WAIT_MS
        )
        held = (await venue_positions(venue))[PERP]
        cells = await read_row(row)
        assert cells["mark"], cells
        shown = assert_margin_row(cells, cells["mark"], held, leverage=FALLING_LEVERAGE)
        assert shown == "danger", cells
        await page.screenshot(path=artifact("margin-trading-danger"))

        # The market falls to its liquidation price: the venue closes it, a fill of its own kind.
        liquidation = page.locator('#fills tr[data-liquidation="true"]')
        await expect(liquidation.first).to_be_visible(timeout=LIQUIDATED_WITHIN_MS)
        await expect(liquidation.first.locator(".badge.liquidation")).to_have_text("liquidation")
        # Flat: the venue lists the symbol at size 0 (its realised PnL) or not at all, and a flat
        # row has no margin to show.
        flat = f'#positions tr[data-symbol="{PERP}"]:not([data-size="0"])'
        await expect(page.locator(flat)).to_have_count(0, timeout=WAIT_MS)
        assert PERP not in await venue_positions(venue)
        await expect(page.locator("#positions td[data-tone]")).to_have_count(0, timeout=WAIT_MS)
        await expect(
            page.locator('#positions td[data-col="leverage"]:not([data-leverage=""])')
        ).to_have_count(0)
        await page.screenshot(path=artifact("margin-trading-liquidated"))

        # Its trace, from its badge: the venue's liquidation order (its client order id, "liq-...",
        # which names it at this venue alone: the sims' fill ids repeat across accounts) and its
        # fill, each marked; opened again until the recorder holds them.
        fill_id = await liquidation.first.get_attribute("data-fill-id")
        badge = liquidation.first.locator(".badge.liquidation")
        client_order_id = await badge.get_attribute("data-trace-id")
        assert fill_id and client_order_id and client_order_id.startswith("liq-"), client_order_id
        trace = page.locator("#trace-view")

        async def traced() -> bool | None:
            await badge.click()
            await expect(trace).to_have_attribute("data-traced", client_order_id)
            await expect(trace.locator("#trace-status")).not_to_have_text("loading…")
            if await trace.get_attribute("data-liquidation") == "true":
                return True
            print("trace:", await trace.locator("#trace-status").inner_text())
            await page.click("#trace-close")
            return None

        await until(traced, WAIT_MS / 1000, 1, "the liquidation's trace (the recorder's order and fill)")
        order = trace.locator('.trace-step[data-kind="order"][data-liquidation="true"]')
        await expect(order).to_have_count(1)
        await expect(order.locator(".badge.liquidation")).to_have_text("liquidation")
        step = trace.locator(f'.trace-step[data-kind="fill"][data-step-id="{fill_id}"]')
        await expect(step).to_have_attribute("data-liquidation", "true")
        await page.screenshot(path=artifact("margin-trace-liquidation"))
        await page.click("#trace-close")
    finally:
        await asyncio.wait([ledger, starting])  # each start ended, whether the other failed
        if starting.exception() is None:
            await asyncio.to_thread(starting.result().terminate)
        await asyncio.to_thread(mesh.stop_ledger)
