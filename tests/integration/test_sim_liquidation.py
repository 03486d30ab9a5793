"""A sim venue process liquidating a leveraged position, over gRPC: SetLeverage makes the linear
perpetual 10x isolated, a market buy opens a long, and the sim's market, trending down
(`drift_per_s`), carries the mark to the liquidation price. GetPositions shows the margin figures
on the way (the mark falling, the margin ratio rising towards 1, the liquidation price fixed), and
the executions stream carries the engine's own order and fill (liquidation, "liq-..."), at the
bankruptcy price with the liquidation fee (docs/derivatives.md, "Margin and liquidation")."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal

import grpc
import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    Stubs,
    VenueFactory,
    balances,
    listening_executions,
    until,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.inverse import coin_fee, coin_value
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

D = Decimal
PERP = "BTC/USDT:USDT"
# A market falling 2 % a second, without noise: from 100 the 10x long's liquidation (about 9 %
# below its entry) comes in about 5 s. Deep makers: the buy fills at the best ask.
CONFIG = f"""
taker_fee_rate = "0.001"
maker_fee_rate = "0"
liquidation_fee_rate = "0.002"
[balances]
USDT = "1000"
[[symbols]]
symbol = "{PERP}"
start_price = "100"
tick_size = "0.1"
lot_size = "0.001"
volatility_per_sqrt_s = 0
drift_per_s = -0.02
trades_per_s = 5
level_spacing_ticks = 1
maker_size_lots = 50000
taker_size_lots = 100
funding_interval_s = 86400
"""
TICK = D("0.1")
MMR = D("0.004")  # tier 1 of the default brackets (Binance USD-M BTCUSDT's): notional < 50,000
FEE_RATE = D("0.002")


async def test_a_leveraged_long_is_liquidated_by_the_falling_market(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(CONFIG, "liquidation").stubs()
    try:
        status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        caps = status.capabilities
        assert (caps.leverage, caps.liquidates) == (True, True)
        assert list(caps.margin_modes) == [tf.MARGIN_MODE_CROSS, tf.MARGIN_MODE_ISOLATED]
        before = await stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=PERP), timeout=CALL_TIMEOUT_S)
        assert (D(before.setting.leverage), before.setting.margin_mode) == (D(1), tf.MARGIN_MODE_CROSS)
        set_to = await stubs.tf.SetLeverage(
            tf.SetLeverageRequest(symbol=PERP, leverage="10", margin_mode=tf.MARGIN_MODE_ISOLATED),
            timeout=CALL_TIMEOUT_S,
        )
        assert (D(set_to.setting.leverage), set_to.setting.margin_mode) == (D(10), tf.MARGIN_MODE_ISOLATED)
        assert D(set_to.setting.max_leverage) == D(125)

        executions = await listening_executions(stubs)
        placed = await stubs.tf.PlaceOrder(
            tf.PlaceOrderRequest(symbol=PERP, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="5"),
            timeout=CALL_TIMEOUT_S,
        )
        done = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
        await _refused(
            stubs, "126", tf.MARGIN_MODE_UNSPECIFIED, grpc.StatusCode.INVALID_ARGUMENT, "at most 125x"
        )
        await _refused(stubs, "10", tf.MARGIN_MODE_CROSS, grpc.StatusCode.FAILED_PRECONDITION, "margin mode")
        fills = [e.fill for e in done if e.HasField("fill")]
        value = sum((D(f.price) * D(f.size) for f in fills), D(0))  # the long's notional at entry
        entry_fees = sum((D(f.fee) for f in fills), D(0))
        margin = value / 10
        # Hand-worked as in tests/unit/test_margin_maths.py: LP = (value - margin) / (5 x (1 - MMR));
        # bankrupt where the loss and the fee spend the margin: (value - margin) / (5 x (1 - fee
        # rate)), a long's on the tick rounded up.
        liquidation = (value - margin) / (5 * (1 - MMR))
        bankrupt = (value - margin) / (5 * (1 - FEE_RATE))
        price = (bankrupt / TICK).to_integral_value(ROUND_CEILING) * TICK

        seen: list[tf.Position] = []

        async def liquidated() -> list[tf.Execution] | None:
            [position] = (await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=PERP))).positions
            if D(position.size) != 0:
                seen.append(position)
            found = [e for e in executions.seen if e.HasField("fill") and e.fill.liquidation]
            return found or None

        [execution] = await until(liquidated, timeout_s=30, interval_s=0.2, what="the liquidation fill")

        # Before it: the position's figures as the market fell to it.
        first, last = seen[0], seen[-1]
        assert (first.settle_asset, first.margin_mode, D(first.leverage)) == (
            "USDT",
            tf.MARGIN_MODE_ISOLATED,
            D(10),
        )
        assert (
            D(first.initial_margin) == margin and D(first.unrealized_pnl) == 5 * D(first.mark_price) - value
        )
        assert abs(D(first.liquidation_price) - liquidation) < D("1e-15")
        assert D(last.mark_price) < D(first.mark_price), "the mark fell"
        assert D(first.margin_ratio) < D(last.margin_ratio) < 1, "the margin ratio rose towards 1"
        assert D(last.maintenance_margin) == 5 * D(last.mark_price) * MMR
        assert D(last.mark_price) > liquidation, "the last seen before it was above the liquidation price"

        # The liquidation: the engine's own order, filled at the bankruptcy price with its fee.
        fill, order = execution.fill, execution.order
        assert (order.liquidation, order.side, order.status) == (
            True,
            common.SIDE_SELL,
            tf.ORDER_STATUS_FILLED,
        )
        assert order.client_order_id.startswith("liq-") and fill.client_order_id == order.client_order_id
        assert (D(fill.price), D(fill.size), fill.fee_asset) == (price, D(5), "USDT")
        assert D(fill.fee) == 5 * price * FEE_RATE
        opened = [e for e in executions.of(order.order_id) if e.order.status == tf.ORDER_STATUS_OPEN]
        assert opened and not opened[0].HasField("fill"), "it opens, then fills, as an order of the stream"

        [position] = (await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=PERP))).positions
        assert D(position.size) == 0 and D(position.realized_pnl) == 5 * price - value
        usdt = (await balances(stubs))["USDT"]
        assert D(usdt.total) == D(1000) - entry_fees + (5 * price - value) - D(fill.fee)
        assert D(usdt.position_margin) == 0 and D(usdt.locked) == 0
        assert D(usdt.total) >= D(1000) - entry_fees - margin, (
            "an isolated position loses no more than its margin"
        )
        assert math.isclose(float(price), float(bankrupt), abs_tol=0.1)
    finally:
        await stubs.close()


async def _refused(
    stubs: Stubs, leverage: str, mode: tf.MarginMode.ValueType, code: grpc.StatusCode, says: str
) -> None:
    """SetLeverage refused as the engine's rules say, naming why (the setting unchanged)."""
    request = tf.SetLeverageRequest(symbol=PERP, leverage=leverage, margin_mode=mode)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.SetLeverage(request, timeout=CALL_TIMEOUT_S)
    assert refused.value.code() == code and says in (refused.value.details() or "")
    setting = (await stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=PERP), timeout=CALL_TIMEOUT_S)).setting
    assert (D(setting.leverage), setting.margin_mode) == (D(10), tf.MARGIN_MODE_ISOLATED)


INVERSE = """
taker_fee_rate = "0.0005"
maker_fee_rate = "0"
liquidation_fee_rate = "0.002"
leverage = "10"
margin_mode = "isolated"
[balances]
BTC = "1"
[[symbols]]
symbol = "BTC/USD:BTC"
start_price = "65000"
tick_size = "0.5"
lot_size = "1"
contract_value = "10"
volatility_per_sqrt_s = 0
drift_per_s = -0.02
trades_per_s = 5
level_spacing_ticks = 1
maker_size_lots = 50000
taker_size_lots = 10
funding_interval_s = 86400
"""


async def test_an_inverse_long_is_liquidated_in_the_coin(fresh_venue: VenueFactory) -> None:
    """Deribit-style BTC/USD:BTC (10 USD contracts, settled in BTC) at the config's 10x isolated:
    100 contracts long, liquidated as the market falls, at the coin-margined bankruptcy price
    (face + face x fee rate) / (margin + the coin the face cost), its fee in BTC."""
    inv = "BTC/USD:BTC"
    stubs = fresh_venue(INVERSE, "inverse-liquidation").stubs()
    try:
        setting = (
            await stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=inv), timeout=CALL_TIMEOUT_S)
        ).setting
        assert (D(setting.leverage), setting.margin_mode) == (D(10), tf.MARGIN_MODE_ISOLATED)
        executions = await listening_executions(stubs)
        placed = await stubs.tf.PlaceOrder(
            tf.PlaceOrderRequest(symbol=inv, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="100"),
            timeout=CALL_TIMEOUT_S,
        )
        done = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
        fills = [e.fill for e in done if e.HasField("fill")]
        cost = sum((coin_value(D(f.size) * 10, D(f.price)) for f in fills), D(0))  # the coin the face cost
        margin = cost / 10
        [position] = (await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=inv))).positions
        assert (position.settle_asset, D(position.initial_margin)) == ("BTC", margin)
        # Binance COIN-M's LP = (face x MMR + face) / (WB + face / EP + cum), tier 1 (0.4 %, cum 0)
        assert abs(D(position.liquidation_price) - D(1004) / (margin + cost)) < D("1e-12")
        bankrupt = D("1002") / (margin + cost)
        price = (bankrupt / D("0.5")).to_integral_value(ROUND_CEILING) * D("0.5")

        async def liquidated() -> tf.Execution | None:
            found = [e for e in executions.seen if e.HasField("fill") and e.fill.liquidation]
            return found[0] if found else None

        execution = await until(liquidated, timeout_s=30, interval_s=0.2, what="the liquidation fill")
        fill = execution.fill
        assert (D(fill.price), D(fill.size), fill.fee_asset) == (price, D(100), "BTC")
        assert D(fill.fee) == coin_fee(D(1000), price, FEE_RATE)
        btc = (await balances(stubs))["BTC"]
        entry_fees = sum((D(f.fee) for f in fills), D(0))
        realized = cost - coin_value(D(1000), price)  # a long's: its cost less the face's worth now (< 0)
        assert D(btc.total) == D(1) - entry_fees + realized - D(fill.fee)
        assert D(btc.total) >= D(1) - entry_fees - margin, "no more than its margin lost"
    finally:
        await stubs.close()
