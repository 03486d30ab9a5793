"""Contract size, value and currency of spot, linear and inverse instruments, and the notional check.

(Issue 12, item 19: `contract_size` held an inverse contract's USD value although documented as
base units, and the notional check multiplied it by the price: an inverse order's notional came
out too large by a factor of the price.) The OKX markets are parsed by ccxt's own okx parser
from the instrument rows of the project's OKX_SWAP capture; the inverse row is that capture's
row turned into OKX's UNI-USD-SWAP as OKX's docs list it (inverse, ctVal 10 USD, lot 1).
Deribit's markets (whose ccxt parser needs the exchange) are checked against the real capture
in tests/integration/test_replay_inverse.py.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import instrument_to_pb
from trademesh.core.domain.model import Instrument, InstrumentKind
from trademesh.core.platform.errors import InvalidArgument
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.deribit.spec import SPEC as DERIBIT
from trademesh.venues.live.markets import instrument_of
from trademesh.venues.okx_swap.spec import SPEC as OKX_SWAP
from trademesh.venues.runtime.validate import place_order

D = Decimal


OKX_SWAP_CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "exchange-captures" / "OKX_SWAP.0"


def okx_rows() -> list[dict[str, Any]]:
    for line in OKX_SWAP_CAPTURE.read_text().splitlines():
        url, _, rest = line.partition(" -> ")
        if "/api/v5/public/instruments" in url:
            rows: list[dict[str, Any]] = json.loads(rest.split(": ", 1)[1])["data"]
            return rows
    raise LookupError(f"no instruments answer in {OKX_SWAP_CAPTURE}")


def okx_instrument(row: dict[str, Any]) -> Instrument:
    return instrument_of(OKX_SWAP, ccxt.okx().parse_market(row))


LINEAR_ROW = next(row for row in okx_rows() if row["instId"] == "BTC-USDT-SWAP")
INVERSE_ROW = dict(
    LINEAR_ROW, instId="UNI-USD-SWAP", instFamily="UNI-USD", uly="UNI-USD", ctType="inverse", ctVal="10",
    ctValCcy="USD", settleCcy="UNI", tickSz="0.001", lotSz="1", minSz="1",
)  # fmt: skip


def test_a_linear_swap_counts_its_contract_in_the_base_asset() -> None:
    btc = okx_instrument(LINEAR_ROW)
    assert (btc.symbol, btc.contract_size, btc.contract_value, btc.value_asset) == (
        "BTC/USDT:USDT",
        D("0.01"),
        D("0.01"),
        "BTC",
    )
    assert not btc.inverse
    assert btc.notional(D(2), D(60000)) == D(1200)  # 2 contracts of 0.01 BTC at 60,000 USDT


def test_an_inverse_swap_counts_its_contract_in_usd() -> None:
    uni = okx_instrument(INVERSE_ROW)
    assert (uni.symbol, uni.base_asset, uni.quote_asset, uni.settle_asset) == (
        "UNI/USD:UNI",
        "UNI",
        "USD",
        "UNI",
    )
    assert (uni.contract_size, uni.contract_value, uni.value_asset) == (D(0), D(10), "USD")
    assert (uni.lot_size, uni.min_size) == (D(1), D(1))
    assert uni.inverse
    assert uni.notional(D(3), D("20.5")) == D(30)  # 3 contracts of 10 USD, whatever the price


def test_the_wire_carries_the_contract_value_and_its_asset() -> None:
    wire = instrument_to_pb(okx_instrument(INVERSE_ROW))
    assert (wire.contract_size, wire.contract_value, wire.contract_value_asset) == ("0", "10", "USD")
    spot = Instrument(
        "sim", "BTC/USDT", "BTCUSDT", InstrumentKind.SPOT, "BTC", "USDT", "USDT", D("0.01"), D(1)
    )
    wire = instrument_to_pb(spot)
    assert (wire.contract_size, wire.contract_value, wire.contract_value_asset) == ("1", "1", "BTC")


def test_a_venue_sizing_inverse_contracts_in_usd_counts_one_usd_per_unit() -> None:
    # ccxt's deribit market for BTC-PERPETUAL (the capture's row: contract_size 10,
    # min_trade_amount 10): amounts are USD, so one unit of size is worth 1 USD.
    market = {
        "symbol": "BTC/USD:BTC", "id": "BTC-PERPETUAL", "base": "BTC", "quote": "USD", "settle": "BTC",
        "inverse": True, "option": False, "contractSize": 10.0,
        "precision": {"amount": 10.0, "price": 0.5}, "limits": {"amount": {"min": 10.0}},
    }  # fmt: skip
    perpetual = instrument_of(DERIBIT, market)
    assert (perpetual.contract_size, perpetual.contract_value, perpetual.value_asset) == (D(0), D(1), "USD")
    assert perpetual.notional(D(50), D(65000)) == D(50)


def order(symbol: str, size: str, price: str) -> tf.PlaceOrderRequest:
    return tf.PlaceOrderRequest(
        symbol=symbol, side=common.SIDE_BUY, type=tf.ORDER_TYPE_LIMIT, size=size, price=price
    )


def test_the_notional_check_of_an_inverse_contract_ignores_the_price() -> None:
    uni = dataclasses.replace(okx_instrument(INVERSE_ROW), min_notional=D(100))
    instruments = {uni.symbol: uni}
    # 1 contract is 10 USD: below 100 USD whatever the price (price * 10 would be 205).
    with pytest.raises(InvalidArgument) as error:
        place_order(order("UNI/USD:UNI", "1", "20.5"), instruments)
    assert [(v.field, v.description) for v in error.value.violations] == [
        ("size", "notional 10 is below the minimum 100")
    ]
    assert place_order(order("UNI/USD:UNI", "10", "20.5"), instruments).size == D(10)


def test_the_notional_check_of_a_linear_contract_counts_its_base_amount() -> None:
    btc = dataclasses.replace(okx_instrument(LINEAR_ROW), min_notional=D(100))
    instruments = {btc.symbol: btc}
    with pytest.raises(InvalidArgument, match="notional 60 is below the minimum 100"):
        place_order(order("BTC/USDT:USDT", "0.1", "60000"), instruments)  # 0.1 x 0.01 BTC x 60,000
    assert place_order(order("BTC/USDT:USDT", "0.2", "60000"), instruments).size == D("0.2")
