"""The executor carries out a fill's re-plan while the plan before is still being placed: a
cancel must never overtake its order's placement. Here the placement of an emulated stop waits
on the venue's first answer (what it can do); the cancel, issued meanwhile, ends the held stop
instead of asking a venue that never had it and leaving the stop armed. And the other way
round: a cancel asked for by the placement's own answer goes at once, after the placement; a
cancel of an order its plan has yet to begin withdraws it (never sent)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import grpc
import pytest

from trademesh.core.domain.model import OrderType, Side, TimeInForce
from trademesh.core.inspector.engine.actions import Amend, CancelAll, CancelOrder, OrderRole, PlaceOrder
from trademesh.core.inspector.executor import Executor
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


class Executors:
    """The executors a test made; each is closed after it (a venue it still asks in the
    background would ask on in the session's loop for the rest of the run)."""

    def __init__(self) -> None:
        self.made: list[Executor] = []

    def make(self, links: Any, feed: Any, **options: Any) -> Executor:
        executor = Executor(links, feed, lambda: 1, **options)
        self.made.append(executor)
        return executor


@pytest.fixture
async def executors() -> AsyncIterator[Executors]:
    made = Executors()
    yield made
    for executor in made.made:
        await executor.close()


class SlowLinks:
    """Venue links whose first question to the venue is answered only when `answer` is set;
    stops are emulated, and any call to a venue desk is recorded (there should be none)."""

    metadata = ()

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.desks: list[str] = []

    def native_stops(self, venue: str) -> bool:
        return False

    def amends(self, venue: str) -> bool:
        return False

    async def learn(self, venue: str, timeout_s: float) -> None:
        await self.answer.wait()

    def knows(self, venue: str) -> bool:
        return self.answer.is_set()

    def desk(self, venue: str) -> Any:
        self.desks.append(venue)
        raise LookupError(venue)


def stop_loss() -> PlaceOrder:
    return PlaceOrder(
        client_order_id="stop-1", venue="sim", symbol="BTC/USDT", side=Side.SELL,
        type=OrderType.MARKET, size=Decimal("0.01"), price=None, time_in_force=TimeInForce.GTC,
        reduce_only=True, role=OrderRole.STOP_LOSS, trigger_price=Decimal("60000"),
    )  # fmt: skip


async def test_a_cancel_issued_while_its_stop_is_being_placed_ends_the_held_stop(
    executors: Executors,
) -> None:
    links = SlowLinks()
    fed: list[jr.JournalEntry] = []

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append(entry)

    executor = executors.make(links, feed)
    placing = asyncio.create_task(executor.carry_out([stop_loss()]))
    await asyncio.sleep(0)
    cancel = CancelOrder("stop-1", "sim", "BTC/USDT", "resized")
    cancelling = asyncio.create_task(executor.carry_out([cancel]))
    await asyncio.sleep(0.01)
    assert not cancelling.done()  # it waits for the placement
    links.answer.set()
    await asyncio.wait_for(asyncio.gather(placing, cancelling), 5)
    assert not executor.stops.holds("stop-1")
    # Held (the core hears it is taken: OPEN), then ended here.
    assert [e.order_update.status for e in fed] == [tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_CANCELED]
    assert links.desks == []


class Desk:
    """A venue desk whose TradeFlow answers every PlaceOrder OPEN and every CancelOrder
    CANCELED, recording the calls in order."""

    metadata = ()  # the trading credential the executor sends this venue (none here)

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

    async def CancelAllOrders(
        self, request: tf.CancelAllOrdersRequest, **_: Any
    ) -> tf.CancelAllOrdersResponse:
        self.calls.append("cancel all")
        return tf.CancelAllOrdersResponse()

    async def AmendOrder(self, request: tf.AmendOrderRequest, **_: Any) -> tf.AmendOrderResponse:
        self.calls.append(f"amend {request.client_order_id} {request.new_client_order_id} {request.size}")
        if request.client_order_id == "filled-meanwhile":
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.FAILED_PRECONDITION, grpc.aio.Metadata(), grpc.aio.Metadata(), "filled"
            )
        order = tf.Order(
            order_id="7", client_order_id=request.new_client_order_id, status=tf.ORDER_STATUS_OPEN,
            size=request.size, trigger_price=request.trigger_price,
        )  # fmt: skip
        return tf.AmendOrderResponse(order=order)


class DeskLinks(SlowLinks):
    def __init__(self) -> None:
        super().__init__()
        self.venue = Desk()

    def desk(self, venue: str) -> Any:
        return self.venue


async def test_a_cancel_the_placements_own_answer_asks_for_goes_after_it(executors: Executors) -> None:
    """After CLOSE_ALL the core cancels an order the venue reports open: the cancel is carried
    out while the placement's answer is being handed to the core, and must not wait for it."""
    links = DeskLinks()
    fed: list[int] = []
    executor: Executor

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append(entry.order_update.status)
        if entry.order_update.status == tf.ORDER_STATUS_OPEN:
            await executor.carry_out([CancelOrder("exit-1", "sim", "BTC/USDT", "closing all")])

    executor = executors.make(links, feed)
    exit_ = replace(stop_loss(), client_order_id="exit-1", trigger_price=None, role=OrderRole.EXIT)
    await asyncio.wait_for(executor.carry_out([exit_]), 5)
    assert links.venue.calls == ["place exit-1", "cancel exit-1"]
    assert fed == [tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_CANCELED]


async def _until(reached: Callable[[], bool]) -> None:
    """Until `reached()` (the tasks under test run meanwhile); fails after 5 s."""
    async with asyncio.timeout(5):
        while True:
            if reached():
                return
            await asyncio.sleep(0.001)


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


async def test_a_replan_withdraws_an_order_its_plan_before_has_yet_to_place(executors: Executors) -> None:
    """A fill re-plans while the plan before is still cancelling the old target: that plan's new
    target waits behind its cancel, and the second plan drops it already. The target is never
    sent (sent, then cancelled, it is two round trips for nothing; a cancel sent before it would
    find nothing, NOT_FOUND, and the target would stay open, the venue refusing every later
    reduce-only order as over the position): the core hears it CANCELED, and the second plan's
    target goes once the venue answered the first cancel (same market)."""
    links = DeskLinks()
    desk = links.venue = HeldCancelDesk()
    fed: list[tuple[str, int]] = []

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append((entry.order_update.client_order_id, entry.order_update.status))

    executor = executors.make(links, feed)
    target = replace(stop_loss(), trigger_price=None, type=OrderType.LIMIT, price=Decimal("70000"))
    target = replace(target, role=OrderRole.TAKE_PROFIT)
    first = asyncio.create_task(executor.carry_out([
        CancelOrder("target-1", "sim", "BTC/USDT", "resized"), replace(target, client_order_id="target-2"),
    ]))  # fmt: skip
    await _until(lambda: desk.calls == ["cancel target-1"])  # held at the venue
    second = asyncio.create_task(executor.carry_out([
        CancelOrder("target-2", "sim", "BTC/USDT", "resized"), replace(target, client_order_id="target-3"),
    ]))  # fmt: skip
    await _until(lambda: bool(fed))  # the second plan dropped target-2
    assert desk.calls == ["cancel target-1"]  # target-3 waits for the cancel at the venue
    assert fed == [("target-2", tf.ORDER_STATUS_CANCELED)]
    desk.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert desk.calls == ["cancel target-1", "place target-3"]


async def test_a_protective_order_waits_for_the_cancels_its_market_has_at_the_venue(
    executors: Executors,
) -> None:
    """Plans carried out side by side (a burst of fills re-planning the pair): one plan's cancel
    of the old target is at the venue when the next plan's new target is ready. The target waits
    for that cancel's answer: sent first, the venue would meet it beside the old one (refused as
    over the position, or its base asset still held) and the position would wait for a retry. A
    placement in another market does not wait."""
    links = DeskLinks()
    desk = links.venue = HeldCancelDesk()

    async def feed(entry: jr.JournalEntry) -> None:
        pass

    executor = executors.make(links, feed)
    target = replace(stop_loss(), trigger_price=None, type=OrderType.LIMIT, price=Decimal("70000"))
    target = replace(target, role=OrderRole.TAKE_PROFIT)
    cancelling = asyncio.create_task(
        executor.carry_out([CancelOrder("target-1", "sim", "BTC/USDT", "resized")])
    )
    await _until(lambda: desk.calls == ["cancel target-1"])  # held at the venue
    placing = asyncio.create_task(executor.carry_out([replace(target, client_order_id="target-2")]))
    elsewhere = replace(target, client_order_id="eth-target", symbol="ETH/USDT")
    await asyncio.wait_for(executor.carry_out([elsewhere]), 5)
    assert desk.calls == ["cancel target-1", "place eth-target"]  # the BTC target waits
    desk.release.set()
    await asyncio.wait_for(asyncio.gather(cancelling, placing), 5)
    assert desk.calls == ["cancel target-1", "place eth-target", "place target-2"]


async def test_an_amendment_is_carried_out_as_the_old_orders_cancel_then_the_new_ones_placement(
    executors: Executors,
) -> None:
    """At a venue that does not amend in place (AMEND_MODE_CANCEL_REPLACE): an Amend goes as
    CancelOrder of the old order, then PlaceOrder of the new one, each answer handed to the core."""
    links = DeskLinks()
    links.native_stops = lambda venue: True  # type: ignore[method-assign]
    fed: list[tuple[str, int]] = []

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append((entry.order_update.client_order_id, entry.order_update.status))

    async def learned(venue: str, timeout_s: float) -> None:
        return None

    links.learn = learned  # type: ignore[method-assign]
    executor = executors.make(links, feed)
    executor.ticks.tick = lambda venue, symbol: _no_tick()  # type: ignore[method-assign]
    new = replace(stop_loss(), client_order_id="stop-2", size=Decimal("0.02"))
    await asyncio.wait_for(executor.carry_out([Amend("stop-1", new, "stop_loss amended")]), 5)
    assert links.venue.calls == ["cancel stop-1", "place stop-2"]
    assert fed == [("stop-1", tf.ORDER_STATUS_CANCELED), ("stop-2", tf.ORDER_STATUS_OPEN)]


async def _no_tick() -> None:
    return None


def amending_executor(
    executors: Executors, filled: Decimal | None
) -> tuple[DeskLinks, Executor, list[tuple[str, int]]]:
    links = DeskLinks()
    links.native_stops = lambda venue: True  # type: ignore[method-assign]
    links.amends = lambda venue: True  # type: ignore[method-assign]
    fed: list[tuple[str, int]] = []

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append((entry.order_update.client_order_id, entry.order_update.status))

    async def learned(venue: str, timeout_s: float) -> None:
        return None

    links.learn = learned  # type: ignore[method-assign]
    executor = executors.make(links, feed)
    executor.ticks.tick = lambda venue, symbol: _no_tick()  # type: ignore[method-assign]
    executor.venue_filled = lambda client_order_id: filled
    return links, executor, fed


async def test_an_amendment_at_a_venue_that_amends_natively_moves_the_stop_in_place(
    executors: Executors,
) -> None:
    """One AmendOrder renaming the order to the new client id: the core hears the old one
    CANCELED (amended away) and the new one OPEN, with no moment without a stop at the venue."""
    links, executor, fed = amending_executor(executors, Decimal(0))
    new = replace(stop_loss(), client_order_id="stop-2", size=Decimal("0.02"), trigger_price=Decimal("59000"))
    await asyncio.wait_for(executor.carry_out([Amend("stop-1", new, "stop_loss amended")]), 5)
    assert links.venue.calls == ["amend stop-1 stop-2 0.02"]
    assert fed == [("stop-1", tf.ORDER_STATUS_CANCELED), ("stop-2", tf.ORDER_STATUS_OPEN)]


async def test_a_partly_filled_order_or_a_refused_amendment_is_cancelled_and_placed_instead(
    executors: Executors,
) -> None:
    links, executor, fed = amending_executor(executors, Decimal("0.005"))
    new = replace(stop_loss(), client_order_id="stop-2")
    await asyncio.wait_for(executor.carry_out([Amend("stop-1", new, "stop_loss amended")]), 5)
    assert links.venue.calls == ["cancel stop-1", "place stop-2"]
    links, executor, fed = amending_executor(executors, Decimal(0))
    await asyncio.wait_for(executor.carry_out([Amend("filled-meanwhile", new, "stop_loss amended")]), 5)
    assert links.venue.calls == [
        "amend filled-meanwhile stop-2 0.01",
        "cancel filled-meanwhile",
        "place stop-2",
    ]
    assert fed == [("filled-meanwhile", tf.ORDER_STATUS_CANCELED), ("stop-2", tf.ORDER_STATUS_OPEN)]


async def test_a_cancel_of_an_order_its_plan_has_yet_to_send_withdraws_it(executors: Executors) -> None:
    """A plan places the stop, then the target; the stop's answer (a refusal: the position
    closed at the venue first) re-plans while the target is still waiting its turn, and the
    re-plan cancels it. The cancel cannot wait for the target's placement, which comes only once
    the answer is through: the target is withdrawn instead (never sent, CANCELED to the core)
    and the plan goes on (one full-suite chaos run: the inspector deaf to its fills for 80 s)."""
    links = DeskLinks()
    fed: list[tuple[str, int]] = []
    executor: Executor

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append((entry.order_update.client_order_id, entry.order_update.status))
        if entry.order_update.client_order_id == "exit-1":
            await executor.carry_out([CancelOrder("target-1", "sim", "BTC/USDT", "flat")])

    executor = executors.make(links, feed)
    exit_ = replace(stop_loss(), client_order_id="exit-1", trigger_price=None, role=OrderRole.EXIT)
    target = replace(exit_, client_order_id="target-1", type=OrderType.LIMIT, price=Decimal("70000"))
    await asyncio.wait_for(executor.carry_out([exit_, replace(target, role=OrderRole.TAKE_PROFIT)]), 5)
    assert links.venue.calls == ["place exit-1"]
    assert fed == [("exit-1", tf.ORDER_STATUS_OPEN), ("target-1", tf.ORDER_STATUS_CANCELED)]


async def test_amendments_for_the_price_alone_go_together(executors: Executors) -> None:
    """A position's layers moved to new levels: each amendment's cancel goes at once, not one
    round trip after the other (eight of them held the next fill for 250 ms); each new order
    still goes only once the cancels at the venue for its market are answered."""
    links = DeskLinks()
    desk = links.venue = HeldCancelDesk()
    links.native_stops = lambda venue: True  # type: ignore[method-assign]

    async def learned(venue: str, timeout_s: float) -> None:
        return None

    async def feed(entry: jr.JournalEntry) -> None:
        pass

    links.learn = learned  # type: ignore[method-assign]
    executor = executors.make(links, feed)
    executor.ticks.tick = lambda venue, symbol: _no_tick()  # type: ignore[method-assign]
    target = replace(stop_loss(), client_order_id="target-2", trigger_price=None, type=OrderType.LIMIT)
    target = replace(target, price=Decimal("70000"), role=OrderRole.TAKE_PROFIT)
    stop = replace(stop_loss(), client_order_id="stop-2")
    amends = [Amend("target-1", target, "take_profit amended"), Amend("stop-1", stop, "stop_loss amended")]
    together = asyncio.create_task(executor.carry_out_together(amends))
    await _until(lambda: len(desk.calls) >= 2)
    assert desk.calls == ["cancel target-1", "cancel stop-1"]  # both out; the places wait
    desk.release.set()
    await asyncio.wait_for(together, 5)
    assert sorted(desk.calls[2:]) == ["place stop-2", "place target-2"]


async def test_a_cancel_all_withdraws_the_placements_a_plan_has_yet_to_begin(executors: Executors) -> None:
    links = DeskLinks()
    links.venue = HeldCancelDesk()
    fed: list[tuple[str, int]] = []

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append((entry.order_update.client_order_id, entry.order_update.status))

    executor = executors.make(links, feed)
    target = replace(stop_loss(), client_order_id="target-2", trigger_price=None, type=OrderType.LIMIT)
    target = replace(target, price=Decimal("70000"), role=OrderRole.TAKE_PROFIT)
    plan = asyncio.create_task(executor.carry_out([CancelOrder("target-1", "sim", "BTC/USDT", "x"), target]))
    await _until(lambda: links.venue.calls == ["cancel target-1"])  # held; target-2 waits its turn
    await asyncio.wait_for(executor.carry_out([CancelAll("sim", "closing all")]), 5)
    links.venue.release.set()
    await asyncio.wait_for(plan, 5)
    assert ("target-2", tf.ORDER_STATUS_CANCELED) in fed
    assert "place target-2" not in links.venue.calls


class DeadlineDesk(Desk):
    """A venue whose CancelOrder never answers in time (the inspector frozen past its deadline,
    as in a chaos run's freeze): the order may still stand there."""

    async def CancelOrder(self, request: tf.CancelOrderRequest, **_: Any) -> tf.CancelOrderResponse:
        self.calls.append(f"cancel {request.client_order_id}")
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(), "deadline"
        )


async def test_a_cancel_the_venue_did_not_answer_has_its_orders_state_asked_again(
    executors: Executors,
) -> None:
    """Before, such a layer stayed `cancelling` in the core for good while it stood at the
    venue: every new stop the core placed beside it was refused ("reduce-only orders already
    cover the position"), and after three refusals the core gave the position up. Now, after a
    pause, the order's state is asked (`placement_unknown`: the core queries it, cancels it
    again while it stands)."""
    links = DeskLinks()
    links.venue = DeadlineDesk()
    fed: list[jr.JournalEntry] = []
    asked = asyncio.Event()

    async def feed(entry: jr.JournalEntry) -> None:
        fed.append(entry)
        asked.set()

    executor = executors.make(links, feed, retry_s=0.01)
    await executor.carry_out([CancelOrder("stop-7", "sim", "BTC/USDT", "no longer fits")])
    assert links.venue.calls == ["cancel stop-7"] and fed == []  # nothing said yet: it may stand
    await asyncio.wait_for(asked.wait(), 5)
    assert [e.WhichOneof("input") for e in fed] == ["placement_unknown"]
    assert fed[0].placement_unknown == "stop-7"


async def test_an_amendment_of_an_order_its_plan_has_yet_to_send_withdraws_it(executors: Executors) -> None:
    """A plan places the entry, then its stop; the entry's answer re-plans while the stop still
    waits its turn, and the re-plan amends the stop (the levels moved). The amendment cannot wait
    for the stop's placement, which comes only once the entry's answer is through (one e2e run:
    three amendments waited so, the inspector's executions stalled 30 s and it stopped): the stop
    is withdrawn (never sent, CANCELED to the core) and the amended one placed."""
    links = DeskLinks()
    links.native_stops = lambda venue: True  # type: ignore[method-assign]
    links.amends = lambda venue: True  # type: ignore[method-assign]
    links.answer.set()  # the venue's capabilities known
    fed: list[tuple[str, int]] = []
    executor: Executor
    moved = replace(stop_loss(), client_order_id="stop-2", trigger_price=Decimal("59000"))

    async def feed(entry: jr.JournalEntry) -> None:
        update = entry.order_update
        fed.append((update.client_order_id, update.status))
        if (update.client_order_id, update.status) == ("entry-1", tf.ORDER_STATUS_OPEN):
            await executor.carry_out([Amend("stop-1", moved, "stop_loss amended")])

    executor = executors.make(links, feed)
    executor.ticks.tick = lambda venue, symbol: _no_tick()  # type: ignore[method-assign]
    executor.venue_filled = lambda client_order_id: Decimal(0)
    entry = replace(stop_loss(), client_order_id="entry-1", trigger_price=None, role=OrderRole.ENTRY)
    entry = replace(entry, side=Side.BUY, reduce_only=False)
    await asyncio.wait_for(executor.carry_out([entry, stop_loss()]), 5)
    assert links.venue.calls == ["place entry-1", "place stop-2"]
    assert fed == [
        ("entry-1", tf.ORDER_STATUS_OPEN),
        ("stop-1", tf.ORDER_STATUS_CANCELED),
        ("stop-2", tf.ORDER_STATUS_OPEN),
    ]


async def test_a_stop_held_here_can_be_cancelled_by_the_answer_that_says_it_is_held(
    executors: Executors,
) -> None:
    """An emulated stop is held, and the core hears it OPEN; what the core does on hearing it
    (a re-plan cancelling the stop) is carried out then, and must not wait for the stop's own
    placement, which ends only once that answer is through."""
    links = DeskLinks()
    links.answer.set()  # known: stops are emulated here (SlowLinks.native_stops)
    fed: list[tuple[str, int]] = []
    executor: Executor

    async def feed(entry: jr.JournalEntry) -> None:
        update = entry.order_update
        fed.append((update.client_order_id, update.status))
        if update.status == tf.ORDER_STATUS_OPEN:
            await executor.carry_out([CancelOrder("stop-1", "sim", "BTC/USDT", "closed meanwhile")])

    executor = executors.make(links, feed)
    await asyncio.wait_for(executor.carry_out([stop_loss()]), 5)
    assert fed == [("stop-1", tf.ORDER_STATUS_OPEN), ("stop-1", tf.ORDER_STATUS_CANCELED)]
    assert not executor.stops.holds("stop-1") and links.venue.calls == []
