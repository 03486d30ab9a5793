"""The executor sets an entry's leverage at its venue before placing it, and only when the
setting in force differs (docs/inspector-orders.md, "Leverage, margin and liquidation"): GetLeverage,
then SetLeverage when needed, then PlaceOrder; a refused SetLeverage refuses the order. The
venue here is a stand-in desk answering TradeFlow's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest

from trademesh.core.domain.model import OrderType, Side, TimeInForce
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.executor import Executor
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


class Refused(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class TradeFlow:
    """The calls a venue got, in order; its leverage in force."""

    def __init__(self, leverage: str, refuse: bool = False) -> None:
        self.leverage = leverage
        self.refuse = refuse
        self.calls: list[str] = []

    async def GetLeverage(self, request: tf.GetLeverageRequest, **_: Any) -> tf.GetLeverageResponse:
        self.calls.append(f"get {request.symbol}")
        return tf.GetLeverageResponse(
            setting=tf.LeverageSetting(symbol=request.symbol, leverage=self.leverage)
        )

    async def SetLeverage(self, request: tf.SetLeverageRequest, **_: Any) -> tf.SetLeverageResponse:
        self.calls.append(f"set {request.symbol} {request.leverage}")
        if self.refuse:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "leverage: 60 is above the symbol's maximum 50")
        self.leverage = request.leverage
        return tf.SetLeverageResponse(
            setting=tf.LeverageSetting(symbol=request.symbol, leverage=request.leverage)
        )

    async def PlaceOrder(self, request: tf.PlaceOrderRequest, **_: Any) -> tf.PlaceOrderResponse:
        self.calls.append(f"place {request.client_order_id}")
        order = tf.Order(
            client_order_id=request.client_order_id, symbol=request.symbol, status=tf.ORDER_STATUS_OPEN
        )
        return tf.PlaceOrderResponse(order=order)


class Desk:
    metadata = ()

    def __init__(self, tradeflow: TradeFlow) -> None:
        self.tradeflow = tradeflow


class Links:
    def __init__(self, tradeflow: TradeFlow) -> None:
        self._desk = Desk(tradeflow)

    def desk(self, venue: str) -> Desk:
        return self._desk

    def native_stops(self, venue: str) -> bool:
        return True


def entry(leverage: str | None) -> PlaceOrder:
    return PlaceOrder(
        client_order_id="entry-1", venue="sim", symbol="BTC/USDT:USDT", side=Side.BUY,
        type=OrderType.MARKET, size=Decimal("0.1"), price=None, time_in_force=TimeInForce.IOC,
        reduce_only=False, role=OrderRole.ENTRY,
        leverage=None if leverage is None else Decimal(leverage),
    )  # fmt: skip


@pytest.fixture
async def fed() -> AsyncIterator[list[jr.JournalEntry]]:
    yield []


async def _send(tradeflow: TradeFlow, order: PlaceOrder, fed: list[jr.JournalEntry]) -> tf.Order | None:
    async def feed(entry: jr.JournalEntry) -> None:
        fed.append(entry)

    executor = Executor(Links(tradeflow), feed, lambda: 1)  # type: ignore[arg-type]
    try:
        return await executor.send(order)
    finally:
        await executor.close()


async def test_a_leverage_that_differs_is_set_before_the_order(fed: list[jr.JournalEntry]) -> None:
    venue = TradeFlow("1")
    await _send(venue, entry("20"), fed)
    assert venue.calls == ["get BTC/USDT:USDT", "set BTC/USDT:USDT 20", "place entry-1"]


async def test_a_leverage_in_force_already_is_not_set_again(fed: list[jr.JournalEntry]) -> None:
    venue = TradeFlow("20")
    await _send(venue, entry("20.0"), fed)
    assert venue.calls == ["get BTC/USDT:USDT", "place entry-1"]


async def test_an_order_without_a_leverage_asks_nothing_of_it(fed: list[jr.JournalEntry]) -> None:
    venue = TradeFlow("3")
    await _send(venue, entry(None), fed)
    assert venue.calls == ["place entry-1"]


async def test_a_refused_leverage_refuses_the_order_with_the_venues_reason(
    fed: list[jr.JournalEntry],
) -> None:
    venue = TradeFlow("1", refuse=True)
    answer = await _send(venue, entry("60"), fed)
    assert venue.calls == ["get BTC/USDT:USDT", "set BTC/USDT:USDT 60"]  # never placed
    assert answer is not None and answer.status == tf.ORDER_STATUS_REJECTED
    assert "above the symbol's maximum" in answer.status_reason
    assert [e.order_update.status for e in fed] == [tf.ORDER_STATUS_REJECTED]
