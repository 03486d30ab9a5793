"""The leverage the ledger books a perpetual's fills at (docs/ledger.md, "Margin and
liquidation"): asked of the venue's TradeFlow.GetLeverage (a gRPC server answering as a venue
does); 1 where the venue trades no leverage (UNIMPLEMENTED, then not asked again) or has none for
the symbol; the last answer while the venue cannot answer. The execution's fill becomes an event
at that leverage, a liquidation fill's flag kept."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.ledger.contracts import Contract
from trademesh.core.ledger.convert import fill_event
from trademesh.core.ledger.venues import LedgerVenues
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

D = Decimal
SYMBOL = "BTC/USDT:USDT"
Answer = Callable[[int, str], tuple[grpc.StatusCode, str] | str]


class Venue(tf_grpc.TradeFlowServicer):
    """GetLeverage answers `answer(n, symbol)` at its n-th call (from 1): a leverage, or an error."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls = 0

    async def GetLeverage(self, request: tf.GetLeverageRequest, context: Any) -> tf.GetLeverageResponse:
        self.calls += 1
        answer = self.answer(self.calls, request.symbol)
        if isinstance(answer, tuple):
            await context.abort(*answer)
            raise AssertionError("abort returned")
        setting = tf.LeverageSetting(
            symbol=request.symbol, leverage=answer, margin_mode=tf.MARGIN_MODE_ISOLATED
        )
        return tf.GetLeverageResponse(setting=setting)


@contextlib.asynccontextmanager
async def venue(answer: Answer) -> AsyncIterator[tuple[LedgerVenues, Venue]]:
    server = grpc.aio.server()
    served = Venue(answer)  # type: ignore[abstract]  # GetLeverage alone: what this test asks
    tf_grpc.add_TradeFlowServicer_to_server(served, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    asked = LedgerVenues(MeshResolver(None, [Instance("sim", f"127.0.0.1:{port}", VENUE_SERVICES)]), 2.0)
    try:
        yield asked, served
    finally:
        await asked.close()
        await server.stop(None)


async def test_the_leverage_in_force_and_the_last_known_while_the_venue_cannot_answer() -> None:
    def answer(call: int, symbol: str) -> tuple[grpc.StatusCode, str] | str:
        if symbol == "ETH/USDT:USDT":
            return (grpc.StatusCode.INVALID_ARGUMENT, "symbol: not a derivative")
        return "20" if call == 1 else (grpc.StatusCode.UNAVAILABLE, "restarting")

    async with venue(answer) as (asked, served):
        assert await asked.leverage("sim", SYMBOL) == D(20)
        assert await asked.leverage("sim", SYMBOL) == D(20)  # the venue down: the last it said
        assert await asked.leverage("sim", "ETH/USDT:USDT") == D(1)  # none for the symbol
        assert served.calls == 3


async def test_a_venue_without_leverage_books_at_1_and_is_not_asked_again() -> None:
    async with venue(lambda _, __: (grpc.StatusCode.UNIMPLEMENTED, "no leverage")) as (asked, served):
        assert [await asked.leverage("sim", SYMBOL) for _ in range(3)] == [D(1)] * 3
        assert served.calls == 1


def test_an_execution_becomes_a_fill_event_at_the_leverage_with_its_liquidation_flag() -> None:
    fill = tf.Fill(
        fill_id="f1", order_id="o1", client_order_id="liq-1", symbol=SYMBOL, side=common.SIDE_SELL,
        price="27000", size="6", fee="8.1", fee_asset="USDT", ts_event_ns=5, liquidation=True,
    )  # fmt: skip
    contract = Contract.from_symbol(SYMBOL)
    event = fill_event("sim", tf.Execution(venue="sim", fill=fill), contract, None, D(10))
    assert (event.leverage, event.liquidation, event.links.strategy_id) == (D(10), True, "")
    assert fill_event("sim", tf.Execution(venue="sim", fill=fill), contract, None).leverage == D(1)
