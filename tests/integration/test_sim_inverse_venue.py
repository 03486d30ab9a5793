"""A sim venue process listing an inverse perpetual (BTC/USD:BTC, 10 USD contracts, settled in
BTC), over gRPC: ListInstruments says its face value as Deribit and OKX say theirs, a market order
fills with its fee in BTC, GetPositions shows the contracts at the harmonic entry, and the
position's funding is paid in BTC."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.support import CALL_TIMEOUT_S, VenueFactory, balances, listening_executions, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.inverse import coin_fee
from trademesh.core.ledger.contracts import Contract
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

D = Decimal
INV = "BTC/USD:BTC"
CONFIG = f"""
taker_fee_rate = "0.0005"
[balances]
BTC = "2"
[[symbols]]
symbol = "{INV}"
start_price = "65000"
tick_size = "0.5"
lot_size = "1"
contract_value = "10"
maker_size_lots = 2000
taker_size_lots = 100
funding_rate = "0.0003"
funding_interval_s = 2
"""


async def test_the_sim_lists_and_trades_an_inverse_perpetual_in_the_coin(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(CONFIG, "inverse").stubs()
    try:
        listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
        [item] = listed.instruments
        assert (item.symbol, item.native_symbol, item.settle_asset) == (INV, "BTCUSD-INV", "BTC")
        assert (D(item.contract_value), item.contract_value_asset, D(item.contract_size)) == (
            D(10),
            "USD",
            D(0),
        )
        contract = Contract.from_instrument(item)  # as the live ledger reads it
        assert (contract.inverse, contract.contract_size) == (True, D(10))

        executions = await listening_executions(stubs)
        placed = await stubs.tf.PlaceOrder(
            tf.PlaceOrderRequest(symbol=INV, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="50"),
            timeout=CALL_TIMEOUT_S,
        )
        assert placed.order.status == tf.ORDER_STATUS_FILLED
        done = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
        fills = [e.fill for e in done if e.HasField("fill")]
        assert fills and {f.fee_asset for f in fills} == {"BTC"}
        fee = sum((D(f.fee) for f in fills), D(0))
        # each fill's taker fee: 0.05% of its coin worth, contracts x 10 USD / price, to 1e-12
        assert fee == sum((coin_fee(D(f.size) * 10, D(f.price), D("0.0005")) for f in fills), D(0))
        [position] = (await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=INV))).positions
        assert D(position.size) == D(50)
        coin = sum((D(f.size) * 10 / D(f.price) for f in fills), D(0))
        assert abs(D(position.entry_price) - D(500) / coin) < D("1e-12")  # the harmonic mean by face
        assert D((await balances(stubs))["BTC"].total) == D(2) - fee, "no BTC bought: only its fee paid"

        async def paid() -> list[tf.FundingPayment] | None:
            answer = await stubs.tf.ListFundingPayments(
                tf.ListFundingPaymentsRequest(), timeout=CALL_TIMEOUT_S
            )
            return list(answer.payments) or None

        [first, *_] = await until(paid, timeout_s=15, what="a funding payment")
        assert (first.asset, D(first.rate), D(first.position_size)) == ("BTC", D("0.0003"), D(50))
        mark = D(500) * D("0.0003") / -D(first.amount)  # 500 USD x rate / mark, paid by the long
        assert (
            D(placed.order.average_fill_price) * D("0.9")
            < mark
            < D(placed.order.average_fill_price) * D("1.1")
        )
    finally:
        await stubs.close()
