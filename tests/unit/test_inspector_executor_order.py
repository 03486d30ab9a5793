"""The executor carries out a fill's re-plan while the plan before is still being placed: a
cancel must never overtake its order's placement. Here the placement of an emulated stop waits
on the venue's first answer (what it can do); the cancel, issued meanwhile, ends the held stop
instead of asking a venue that never had it and leaving the stop armed."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from core.inspector.engine.actions import CancelOrder, OrderRole, PlaceOrder
from core.inspector.executor import Executor
from core.model import OrderType, Side, TimeInForce
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


class SlowLinks:
    """Venue links whose first question to the venue is answered only when `answer` is set;
    stops are emulated, and any call to a venue desk is recorded (there should be none)."""

    metadata = ()

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.desks: list[str] = []

    def native_stops(self, venue: str) -> bool:
        return False

    async def learn(self, venue: str, timeout_s: float) -> None:
        await self.answer.wait()

    def desk(self, venue: str) -> Any:
        self.desks.append(venue)
        raise LookupError(venue)


def stop_loss() -> PlaceOrder:
    return PlaceOrder(
        client_order_id="stop-1", venue="sim", symbol="BTC/USDT", side=Side.SELL,
        type=OrderType.MARKET, size=Decimal("0.01"), price=None, time_in_force=TimeInForce.GTC,
        reduce_only=True, role=OrderRole.STOP_LOSS, trigger_price=Decimal("60000"),
    )  # fmt: skip


async def test_a_cancel_issued_while_its_stop_is_being_placed_ends_the_held_stop() -> None:
    links = SlowLinks()
    fed: list[jr.JournalEntry] = []

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append(entry)

    executor = Executor(links, feed, lambda: 1)  # type: ignore[arg-type]
    placing = asyncio.create_task(executor.carry_out([stop_loss()]))
    await asyncio.sleep(0)
    cancel = CancelOrder("stop-1", "sim", "BTC/USDT", "resized")
    cancelling = asyncio.create_task(executor.carry_out([cancel]))
    await asyncio.sleep(0.01)
    assert not cancelling.done()  # it waits for the placement
    links.answer.set()
    await asyncio.wait_for(asyncio.gather(placing, cancelling), 5)
    assert not executor.stops.holds("stop-1")
    assert [e.order_update.status for e in fed] == [tf.ORDER_STATUS_CANCELED]
    assert links.desks == []
