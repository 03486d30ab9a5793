"""The executor carries out a fill's re-plan while the plan before is still being placed: a
cancel must never overtake its order's placement. Here the placement of an emulated stop waits
on the venue's first answer (what it can do); the cancel, issued meanwhile, ends the held stop
instead of asking a venue that never had it and leaving the stop armed. And the other way
round: a cancel asked for by the placement's own answer goes at once, after the placement."""

from __future__ import annotations

import asyncio
from dataclasses import replace
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


class Desk:
    """A venue desk whose TradeFlow answers every PlaceOrder OPEN and every CancelOrder
    CANCELED, recording the calls in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.tradeflow = self

    async def PlaceOrder(self, request: tf.PlaceOrderRequest, **_: Any) -> tf.PlaceOrderResponse:
        self.calls.append(f"place {request.client_order_id}")
        order = tf.Order(client_order_id=request.client_order_id, status=tf.ORDER_STATUS_OPEN)
        return tf.PlaceOrderResponse(order=order)

    async def CancelOrder(self, request: tf.CancelOrderRequest, **_: Any) -> tf.CancelOrderResponse:
        self.calls.append(f"cancel {request.client_order_id}")
        order = tf.Order(client_order_id=request.client_order_id, status=tf.ORDER_STATUS_CANCELED)
        return tf.CancelOrderResponse(order=order)


class DeskLinks(SlowLinks):
    def __init__(self) -> None:
        super().__init__()
        self.venue = Desk()

    def desk(self, venue: str) -> Any:
        return self.venue


async def test_a_cancel_the_placements_own_answer_asks_for_goes_after_it() -> None:
    """After CLOSE_ALL the core cancels an order the venue reports open: the cancel is carried
    out while the placement's answer is being handed to the core, and must not wait for it."""
    links = DeskLinks()
    fed: list[int] = []
    executor: Executor

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append(entry.order_update.status)
        if entry.order_update.status == tf.ORDER_STATUS_OPEN:
            await executor.carry_out([CancelOrder("exit-1", "sim", "BTC/USDT", "closing all")])

    executor = Executor(links, feed, lambda: 1)  # type: ignore[arg-type]
    exit_ = replace(stop_loss(), client_order_id="exit-1", trigger_price=None, role=OrderRole.EXIT)
    await asyncio.wait_for(executor.carry_out([exit_]), 5)
    assert links.venue.calls == ["place exit-1", "cancel exit-1"]
    assert fed == [tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_CANCELED]


class HeldCancelDesk(Desk):
    """A desk that answers the CancelOrder of target-1 only when `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def CancelOrder(self, request: tf.CancelOrderRequest, **kw: Any) -> tf.CancelOrderResponse:
        answer = await super().CancelOrder(request, **kw)  # recorded on arrival
        if request.client_order_id == "target-1":
            await self.release.wait()
        return answer


async def test_a_replan_cancels_an_order_its_plan_before_has_yet_to_place_only_after_the_placement() -> None:
    """A fill re-plans while the plan before is still cancelling the old target: that plan's new
    target waits behind its cancel, and the second plan drops it already. Its cancel must wait
    for the placement: sent first, it finds nothing (NOT_FOUND), the target is then placed and
    stays open, and the venue refuses every later reduce-only order as over the position."""
    links = DeskLinks()
    desk = links.venue = HeldCancelDesk()

    async def feed(entry: jr.JournalEntry) -> None:
        pass

    executor = Executor(links, feed, lambda: 1)  # type: ignore[arg-type]
    target = replace(stop_loss(), trigger_price=None, type=OrderType.LIMIT, price=Decimal("70000"))
    target = replace(target, role=OrderRole.TAKE_PROFIT)
    first = asyncio.create_task(executor.carry_out([
        CancelOrder("target-1", "sim", "BTC/USDT", "resized"), replace(target, client_order_id="target-2"),
    ]))  # fmt: skip
    second = asyncio.create_task(executor.carry_out([
        CancelOrder("target-2", "sim", "BTC/USDT", "resized"), replace(target, client_order_id="target-3"),
    ]))  # fmt: skip
    await asyncio.sleep(0.01)
    assert desk.calls == ["cancel target-1"]  # the second plan's cancel waits
    desk.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert desk.calls == ["cancel target-1", "place target-2", "cancel target-2", "place target-3"]
