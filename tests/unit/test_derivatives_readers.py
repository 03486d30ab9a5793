"""Each derivatives venue's readers of its own messages (issue 60): the exchange's strings as the
wire's, what the venue does not state left empty, nothing from a message that states nothing."""

from __future__ import annotations

from typing import Any

from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.binanceusdm import exchange as binance
from trademesh.venues.deribit import exchange as deribit
from trademesh.venues.okx_swap import exchange as okx


def test_binance_usdm_reads_its_mark_price_open_interest_and_force_orders() -> None:
    frame = {
        "e": "markPriceUpdate",
        "E": 1626992742003,
        "s": "SUSHIUSDT",
        "p": "7.61150000",
        "i": "7.60997770",
    }
    assert binance.mark_of({"info": frame}) == (
        1626992742003,
        md.MarkPrice(mark_price="7.6115", index_price="7.6099777"),
    )
    assert binance.mark_of({"info": {"E": 1}}) is None
    answer = {"info": {"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011}}
    assert binance.open_interest_of(answer) == (1589437530011, md.OpenInterest(size="10659.509"))
    order = {"s": "BTCUSDT", "S": "SELL", "q": "0.014", "p": "9910", "ap": "9910.50", "X": "FILLED",
             "l": "0.014", "z": "0.014", "T": 1568014460893}  # fmt: skip
    assert binance.liquidations_of({"info": order}) == [
        (1568014460893, md.Liquidation(side=common.SIDE_SELL, price="9910.5", size="0.014"))
    ]
    assert binance.liquidations_of({"info": {**order, "z": "0"}}) == [], "nothing filled: no liquidation"


def test_okx_reads_every_detail_of_a_liquidation_push_and_the_usd_value_of_a_coin_margined_swap() -> None:
    push: dict[str, Any] = {
        "instId": "BTC-USDT-SWAP",
        "details": [
            {"bkPx": "96780.1", "side": "buy", "sz": "22", "ts": "1740000052350"},
            {"bkPx": "96780.1", "side": "buy", "sz": "3", "ts": "1740000052349"},
            {"bkPx": "", "side": "buy", "sz": "3", "ts": "1"},  # no price: not a liquidation stated
        ],
    }
    assert okx.liquidations_of({"info": push}) == [
        (1740000052350, md.Liquidation(side=common.SIDE_BUY, price="96780.1", size="22")),
        (1740000052349, md.Liquidation(side=common.SIDE_BUY, price="96780.1", size="3")),
    ]
    assert okx.mark_of({"markPx": "96300.40", "ts": "1740000051200"}) == (
        1740000051200,
        md.MarkPrice(mark_price="96300.4"),
    )
    linear = {"instId": "BTC-USDT-SWAP", "oi": "2500000", "oiCcy": "25000", "oiUsd": "2407500000", "ts": "5"}
    assert okx.open_interest_of(linear) == (5, md.OpenInterest(size="2500000")), "USD is not USDT: no value"
    inverse = {"instId": "BTC-USD-SWAP", "oi": "5000", "oiCcy": "5.2", "oiUsd": "500000", "ts": "6"}
    assert okx.open_interest_of({"info": inverse}) == (6, md.OpenInterest(size="5000", value="500000"))


def test_deribit_reads_mark_index_and_open_interest_from_its_ticker() -> None:
    perpetual = {"instrument_name": "BTC-PERPETUAL", "timestamp": 7, "mark_price": 91250.0,
                 "index_price": 91249.5, "open_interest": 100000.0}  # fmt: skip
    assert deribit.mark_of({"info": perpetual}) == (
        7,
        md.MarkPrice(mark_price="91250", index_price="91249.5"),
    )
    assert deribit.open_interest_of({"info": perpetual}) == (
        7,
        md.OpenInterest(size="100000", value="100000"),
    )
    option = {
        "instrument_name": "ETH-30JUL21-2800-C",
        "timestamp": 8,
        "mark_price": 0.001972,
        "open_interest": 12685.0,
    }
    assert deribit.open_interest_of({"info": option}) == (8, md.OpenInterest(size="12685")), (
        "coins: no USD value"
    )
    assert deribit.mark_of({"info": {"timestamp": 9}}) is None
