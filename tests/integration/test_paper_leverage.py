"""A paper venue's perpetual is margined by the sim's engine (docs/derivatives.md, "Margin and
liquidation"): paper OKX swaps on its recorded session say leverage, cross and isolated and
liquidation in Admin's capabilities, take SetLeverage, and GetPositions reports the position's
margin at the leverage set (contracts of 0.01 BTC)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.paper_support import Market
from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, listening_executions, stop_venue, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

D = Decimal
SYMBOL = "BTC/USDT:USDT"


async def test_a_paper_swap_takes_leverage_and_reports_its_margin(tmp_path: Path) -> None:
    config = tmp_path / "paper.toml"
    config.write_text("latency_ms = 0\n")
    extra = ["--paper", "--paper-config", str(config)]
    venue, log = start_replay_venue(tmp_path, "okx-swap", capture_files("OKX_SWAP"), extra=extra)
    try:
        stubs = venue.stubs()
        status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        caps = status.capabilities
        assert (caps.leverage, caps.liquidates) == (True, True)
        assert list(caps.margin_modes) == [tf.MARGIN_MODE_CROSS, tf.MARGIN_MODE_ISOLATED]
        default = await stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
        assert (D(default.setting.leverage), default.setting.margin_mode) == (D(1), tf.MARGIN_MODE_CROSS)
        await stubs.tf.SetLeverage(
            tf.SetLeverageRequest(symbol=SYMBOL, leverage="20", margin_mode=tf.MARGIN_MODE_ISOLATED),
            timeout=CALL_TIMEOUT_S,
        )
        executions = await listening_executions(stubs)
        market = Market(stubs, SYMBOL)
        try:
            await until(market.quoted, 60, what="the venue's book")
            placed = await stubs.tf.PlaceOrder(
                tf.PlaceOrderRequest(
                    symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="1"
                ),
                timeout=CALL_TIMEOUT_S,
            )
            done = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
            fills = [e.fill for e in done if e.HasField("fill")]
            notional = sum((D(f.price) * D(f.size) * D("0.01") for f in fills), D(0))  # 0.01 BTC a contract
            [position] = (await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=SYMBOL))).positions
            assert (position.settle_asset, position.margin_mode, D(position.leverage)) == (
                "USDT",
                tf.MARGIN_MODE_ISOLATED,
                D(20),
            )
            assert D(position.initial_margin) == notional / 20
            assert D(position.mark_price) > 0 and D(position.maintenance_margin) > 0
            # LP = (notional - margin) / (0.01 x (1 - 0.4 %)): Binance's tier 1, the default brackets
            expected = (notional - notional / 20) / (D("0.01") * (1 - D("0.004")))
            assert abs(D(position.liquidation_price) - expected) < D("1e-12")
            usdt = {b.asset: b for b in (await stubs.tf.GetBalances(tf.GetBalancesRequest())).balances}[
                "USDT"
            ]
            assert D(usdt.position_margin) == notional / 20
        finally:
            await market.close()
    finally:
        await stop_venue(venue, log)
