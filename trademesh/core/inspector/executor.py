"""Carry out the core's order actions at the venues, and hand each venue's answer back to the
core as a journal entry (the shell's `feed`): an amendment in place where the venue amends
natively (its old client order id answered CANCELED, the amended order under the new one), else
as a cancel then a placement, an acknowledged order as an order update, a
refusal as a REJECTED update with the venue's reason, a placement whose result is unknown
(deadline, broken connection) as `placement_unknown` (the core then asks to query it before any
retry), a query's answer as `query_result`. A cancel the venue did not answer has its order's
state asked again after a pause (`placement_unknown`): it may still stand there.

A cancel never overtakes its order's placement: it waits for a placement on its way, and
withdraws one its plan has yet to begin (never sent; CANCELED to the core).

A protective order's limit price goes on the venue's tick grid first (trademesh.core.inspector.grid).

A stop-loss at a venue without native stop orders is emulated here (trademesh.core.inspector.stops): held
until the last trade crosses its trigger, which goes to the core as an input (`stop_triggered`):
the core cancels the rest of the pair, then has the stop placed as a reduce-only market order
under its own client order id. A venue that has not said what it can do (it did not answer, or
this process was frozen past the question's deadline) has its stops emulated only until it says:
it is asked again in the background, and once it says it holds stops itself, the stops held for
it go to it (`_learn_later`), so a question that failed once does not leave a position's stop
off the venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from decimal import Decimal
from typing import Any

import grpc

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.inspector.convert import (
    amended_away,
    order_snapshot,
    place_request,
    refusal_reason,
    venue_reason,
)
from trademesh.core.inspector.engine.actions import (
    Amend,
    CancelAll,
    CancelOrder,
    OrderAction,
    PlaceOrder,
    QueryOrder,
    placed_by,
)
from trademesh.core.inspector.grid import gridded_price, put_on_grid
from trademesh.core.inspector.lease_guard import Fence, unfenced
from trademesh.core.inspector.metrics import VENUE_CALLS
from trademesh.core.inspector.stops import EmulatedStops
from trademesh.core.inspector.ticks import TickSizes
from trademesh.core.inspector.venues import VenueDesk, VenueLinks
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.replicas.leader import LeadershipLost
from trademesh.core.platform.rpc.client import trace_metadata
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["Executor", "Feed"]

log = logging.getLogger(__name__)

# Hands one input to the core (journal, apply, publish, carry out): the shell's Runtime.feed.
Feed = Callable[[jr.JournalEntry], Awaitable[Any]]
# Answers that say nothing about whether the order reached the venue's book.
_UNKNOWN = (
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
)
_QUERY_RETRY_S = 1.0
# A venue that did not say what it can do is asked again after this, doubling up to the max.
_LEARN_RETRY_S = (0.2, 5.0)


class Executor:
    def __init__(
        self,
        links: VenueLinks,
        feed: Feed,
        clock: Callable[[], int],
        *,
        timeout_s: float = 2.0,
        retry_s: float = _QUERY_RETRY_S,
        on_covered: Callable[[str], None] | None = None,
        fence: Fence = unfenced,
    ) -> None:
        self.links = links
        # Awaited just before each order sent, amended or cancelled at a venue: a leader that
        # lost its lease does nothing there (trademesh.core.inspector.lease_guard).
        self.fence = fence
        self.feed = feed
        self.clock = clock
        self.timeout_s = timeout_s
        self.retry_s = retry_s  # the pause before a query, or a cancel's order, is asked again
        # Told a venue's name when it refuses a reduce-only order as beyond what its open orders
        # leave of the position: it holds orders the core does not count (the reconciliation looks).
        self.on_covered = on_covered
        self.stops = EmulatedStops()
        self.ticks = TickSizes(links, timeout_s)
        self._retries: set[asyncio.Task[None]] = set()
        # Orders whose PlaceOrder is on its way, set once answered: inputs are carried out
        # concurrently (a fill's re-plan while the pair of the fill before is being placed), and
        # a cancel that overtook its order's placement would leave the order open at the venue.
        self._placing: dict[str, asyncio.Event] = {}
        # Cancels on their way to the venue, per market (None: a whole venue's cancel-all): a
        # protective placement waits for those sent before it, so the venue never meets the new
        # stop beside the old one it replaces (a venue refuses reduce-only orders that together
        # exceed the position; a spot venue's base asset is still held by the old order).
        self._cancelling: dict[tuple[str, str | None], set[asyncio.Event]] = {}
        # Placements a plan has announced and not begun (an earlier action of the plan still
        # going): a cancel of one withdraws it, never to be sent. It cannot wait for it: the
        # cancel may come from an answer the plan is handing to the core, and the plan goes on
        # only once that answer is through.
        self._queued: dict[str, PlaceOrder] = {}
        self._withdrawn: set[str] = set()
        self._learning: set[str] = set()  # venues asked again in the background (`_learn_later`)
        # What the venue has filled of a working order as the core knows it (None: not known);
        # an order is amended in place only with nothing filled. The runtime sets it.
        self.venue_filled: Callable[[str], Decimal | None] = lambda client_order_id: None

    async def carry_out(self, actions: Sequence[OrderAction]) -> None:
        """In order: a resize's cancel goes before its new order. The list's placements are
        announced before anything is sent: the next input's re-plan, carried out meanwhile, may
        cancel an order this list has yet to place (behind its own cancel); that cancel
        withdraws it, or waits for its placement once on its way (sent first, it would find
        nothing at the venue and the order would stay open)."""
        queued = self._queue(actions)
        try:
            for action in actions:
                await self._carry_out(action)
        finally:
            self._unqueue(queued)

    async def carry_out_together(self, actions: Sequence[OrderAction]) -> None:
        """Actions that do not depend on one another (amendments of different orders for their
        price alone), all at once: one round trip for them all instead of one each."""
        if not actions:
            return
        queued = self._queue(actions)
        try:
            await asyncio.gather(*(self._carry_out(action) for action in actions))
        finally:
            self._unqueue(queued)

    def _queue(self, actions: Sequence[OrderAction]) -> list[tuple[PlaceOrder, asyncio.Event]]:
        placements = [o for a in actions if (o := placed_by(a)) is not None]
        self._queued.update((o.client_order_id, o) for o in placements)
        return [(o, self._announce(o.client_order_id)[1]) for o in placements]

    def _unqueue(self, queued: list[tuple[PlaceOrder, asyncio.Event]]) -> None:
        for order, event in queued:
            self._queued.pop(order.client_order_id, None)
            self._withdrawn.discard(order.client_order_id)
            self._settle(order.client_order_id, event)

    async def _carry_out(self, action: OrderAction) -> None:
        if isinstance(action, PlaceOrder):
            await self.place(action)
        elif isinstance(action, CancelOrder):
            await self.cancel(action)
        elif isinstance(action, CancelAll):
            await self.cancel_all(action)
        elif isinstance(action, QueryOrder):
            await self.query(action)
        elif isinstance(action, Amend):
            await self.amend(action)

    async def amend(self, action: Amend) -> None:
        """An order changed in place where the venue amends natively (TradeFlow.AmendOrder,
        renamed to the new order's client id: no moment without it); else, or when the venue
        refuses the amendment, the old order is cancelled, then the new one placed (the core
        counts them so already)."""
        if await self._amended_in_place(action):
            return
        await self.cancel(CancelOrder(action.client_order_id, action.venue, action.symbol, action.reason))
        await self.place(action.order)

    async def _amended_in_place(self, action: Amend) -> bool:
        old, new = action.client_order_id, action.order
        # An order its plan has yet to send is withdrawn, not waited for: its placement comes
        # only once the action this amendment came from (an answer being fed) is through.
        if old in self._queued or not await self._amendable(action):
            return False
        placing = self._placing.get(old)
        if placing is not None:  # the old order's placement still on its way: after it
            await placing.wait()
        if new.client_order_id in self._withdrawn or old in self._queued or self.stops.holds(old):
            return False
        self._queued.pop(new.client_order_id, None)
        _, placed = self._announce(new.client_order_id)
        try:
            if new.role.protective:  # as a placement: never beside the orders being cancelled
                await self._after_cancels(action.venue, action.symbol)
            answer = await self._amend_request(action)
        except LeadershipLost:
            raise
        except Exception as exc:  # refused, unknown or no channel: cancel and place instead
            code = exc.code().name.lower() if isinstance(exc, grpc.aio.AioRpcError) else "error"
            VENUE_CALLS.labels(action.venue, "amend", code).inc()
            log.info("inspector: amending %s at %s in place: %s; cancel and place", old, action.venue, exc)
            return False
        finally:
            self._settle(new.client_order_id, placed)
        VENUE_CALLS.labels(action.venue, "amend", "ok").inc()
        await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=amended_away(answer, old)))
        await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=answer))
        return True

    async def _amendable(self, action: Amend) -> bool:
        """In place only at a venue that amends natively, an order that is at the venue with
        nothing filled (the new order's size is then its whole size), into one it holds."""
        await self.learn(action.venue)
        new = action.order
        if not self.links.amends(action.venue) or self.venue_filled(action.client_order_id) != 0:
            return False
        return new.trigger_price is None or self.native_stops(action.venue)

    async def _amend_request(self, action: Amend) -> tf.Order:
        new = action.order
        native = new.trigger_price is not None
        placement = place_request(new, native)
        await self._on_grid(new, placement, native)
        request = tf.AmendOrderRequest(
            client_order_id=action.client_order_id,
            size=placement.size,
            price=placement.price,
            trigger_price=placement.trigger_price,
            new_client_order_id=new.client_order_id,
            reason=venue_reason(action.reason),
            # The new order's size is its whole: an order that filled since the core last heard
            # (a restart catching up) is refused at the venue, and cancelled and placed instead.
            unfilled_only=True,
        )
        desk = self.links.desk(action.venue)
        await self.fence()
        response: tf.AmendOrderResponse = await desk.tradeflow.AmendOrder(
            request, timeout=self.timeout_s, metadata=desk.metadata + trace_metadata()
        )
        return response.order

    def _announce(self, client_order_id: str) -> tuple[str, asyncio.Event]:
        return client_order_id, self._placing.setdefault(client_order_id, asyncio.Event())

    def _settle(self, client_order_id: str, event: asyncio.Event) -> None:
        event.set()
        if self._placing.get(client_order_id) is event:
            del self._placing[client_order_id]

    # ---- place

    def native_stops(self, venue: str) -> bool:
        return self.links.native_stops(venue)

    async def place(self, order: PlaceOrder) -> tf.Order | None:
        """The order held here (an emulated stop) or sent; a cancel of it waits until then.
        Nothing when a cancel withdrew it before its turn."""
        if order.client_order_id in self._withdrawn:
            self._withdrawn.discard(order.client_order_id)
            return None
        self._queued.pop(order.client_order_id, None)
        _, placed = self._announce(order.client_order_id)
        try:
            if order.trigger_price is not None:
                await self.learn(order.venue)
            if order.trigger_price is not None and not self.native_stops(order.venue):
                self.stops.hold(order)
                # Placed (held) before the core hears it: what it does on hearing it (a cancel
                # of this stop) goes at once, as after a venue's answer (`send`).
                self._settle(order.client_order_id, placed)
                held = order_snapshot(
                    order, tf.ORDER_STATUS_OPEN, "emulated: held by the inspector", self.clock()
                )
                await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=held))
                return None
            if order.role.protective:
                await self._after_cancels(order.venue, order.symbol)
            return await self.send(order, placed)
        finally:
            self._settle(order.client_order_id, placed)

    async def _after_cancels(self, venue: str, symbol: str) -> None:
        """Once the cancels already sent for this market (or this venue's cancel-all) are
        answered. A cancel still waiting for its own order's placement is not sent yet, and
        its order is not at the venue: nothing to wait for (nor a wait that could close a
        circle)."""
        sent = [*self._cancelling.get((venue, symbol), ()), *self._cancelling.get((venue, None), ())]
        if sent:
            await asyncio.gather(*(event.wait() for event in sent))

    @contextlib.contextmanager
    def _sending_cancel(self, venue: str, symbol: str | None) -> Iterator[None]:
        key, answered = (venue, symbol), asyncio.Event()
        self._cancelling.setdefault(key, set()).add(answered)
        try:
            yield
        finally:
            answered.set()
            waiting = self._cancelling[key]
            waiting.discard(answered)
            if not waiting:
                del self._cancelling[key]

    async def send(self, order: PlaceOrder, answered: asyncio.Event | None = None) -> tf.Order | None:
        """PlaceOrder at the venue; the answer goes to the core (and is returned). `answered` is
        set once the venue has answered, before the core hears it: a cancel of the order may go
        from then on, even one the answer itself makes the core ask for."""
        answer: tf.PlaceOrderResponse | Exception
        try:
            answer = await self._request(order)
        except LeadershipLost:
            raise
        except Exception as exc:
            answer = exc
        if answered is not None:
            answered.set()
        if isinstance(answer, grpc.aio.AioRpcError):
            return await self._place_failed(order, answer)
        if isinstance(answer, Exception):  # no such venue (NotFound), or no channel
            return await self._refused(order, str(answer))
        VENUE_CALLS.labels(order.venue, "place", "ok").inc()
        await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=answer.order))
        return answer.order

    async def _request(self, order: PlaceOrder) -> tf.PlaceOrderResponse:
        native = order.trigger_price is not None and self.native_stops(order.venue)
        request = place_request(order, native)
        await self._on_grid(order, request, native)
        desk = self.links.desk(order.venue)
        if order.leverage is not None:
            await self._leverage_for(order, desk)
        await self.fence()
        response: tf.PlaceOrderResponse = await desk.tradeflow.PlaceOrder(
            request, timeout=self.timeout_s, metadata=desk.metadata + trace_metadata()
        )
        return response

    async def _leverage_for(self, order: PlaceOrder, desk: VenueDesk) -> None:
        """The entry's leverage in force at the venue before it is placed: read (GetLeverage),
        and set (SetLeverage) only when it differs. A venue's refusal refuses the order (its
        code and reason are the order's: a leverage above the symbol's maximum is
        INVALID_ARGUMENT), one that does not answer leaves it unknown (queried, as a placement)."""
        assert order.leverage is not None
        metadata = desk.metadata + trace_metadata()
        held = await desk.tradeflow.GetLeverage(
            tf.GetLeverageRequest(symbol=order.symbol), timeout=self.timeout_s, metadata=metadata
        )
        if held.setting.leverage and Decimal(held.setting.leverage) == order.leverage:
            return
        request = tf.SetLeverageRequest(symbol=order.symbol, leverage=format_decimal(order.leverage))
        await self.fence()
        await desk.tradeflow.SetLeverage(request, timeout=self.timeout_s, metadata=metadata)
        VENUE_CALLS.labels(order.venue, "set_leverage", "ok").inc()
        log.info(
            "inspector: %s leverage of %s set to %s for %s (was %s)", order.venue, order.symbol,
            format_decimal(order.leverage), order.client_order_id, held.setting.leverage or "not said",
        )  # fmt: skip

    async def place_outside_core(self, order: PlaceOrder) -> tf.Order:
        """An order that is not the core's (a takeover's interim protection, before the core is
        rebuilt: trademesh.core.inspector.takeover): on the grid and fenced as any, its answer returned,
        not fed to the core."""
        await self.learn(order.venue)
        response = await self._request(order)
        VENUE_CALLS.labels(order.venue, "place", "ok").inc()
        return response.order

    async def cancel_outside_core(self, venue: str, client_order_id: str, reason: str) -> None:
        """Cancel an order that is not the core's (fenced); its answer is not fed to the core."""
        desk = self.links.desk(venue)
        request = tf.CancelOrderRequest(client_order_id=client_order_id, reason=venue_reason(reason))
        await self.fence()
        await desk.tradeflow.CancelOrder(request, timeout=self.timeout_s, metadata=desk.metadata)
        VENUE_CALLS.labels(venue, "cancel", "ok").inc()

    async def _on_grid(self, order: PlaceOrder, request: tf.PlaceOrderRequest, native: bool) -> None:
        """A protective price on the venue's tick grid (trademesh.core.inspector.grid.put_on_grid)."""
        if gridded_price(order, native) is None:
            return
        tick = await self.ticks.tick(order.venue, order.symbol)
        if tick is not None:
            put_on_grid(order, request, native, tick)

    async def _place_failed(self, order: PlaceOrder, exc: grpc.aio.AioRpcError) -> tf.Order | None:
        code = exc.code()
        VENUE_CALLS.labels(order.venue, "place", code.name.lower()).inc()
        if code in _UNKNOWN:
            log.warning(
                "inspector: placing %s at %s: %s; querying it before any retry",
                order.client_order_id, order.venue, code.name,
            )  # fmt: skip
            await self.feed(jr.JournalEntry(now_ns=self.clock(), placement_unknown=order.client_order_id))
            return None
        if code is grpc.StatusCode.FAILED_PRECONDITION and order.reduce_only and self.on_covered:
            self.on_covered(order.venue)
        return await self._refused(order, refusal_reason(code.name, exc.details() or ""))

    async def _refused(self, order: PlaceOrder, reason: str) -> tf.Order:
        log.warning("inspector: %s refused %s: %s", order.venue, order.client_order_id, reason)
        snapshot = order_snapshot(order, tf.ORDER_STATUS_REJECTED, reason, self.clock())
        await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=snapshot))
        return snapshot

    # ---- cancel

    async def cancel(self, action: CancelOrder) -> tf.Order | None:
        queued = self._queued.pop(action.client_order_id, None)
        if queued is not None:  # its plan has yet to send it: it never goes
            self._withdrawn.add(action.client_order_id)
            snapshot = order_snapshot(queued, tf.ORDER_STATUS_CANCELED, action.reason, self.clock())
            await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=snapshot))
            return snapshot
        placing = self._placing.get(action.client_order_id)
        if placing is not None:  # its placement still on its way: the cancel goes after it
            await placing.wait()
        held = self.stops.release(action.client_order_id)
        if held is not None:  # never at the venue: it ends here
            snapshot = order_snapshot(held, tf.ORDER_STATUS_CANCELED, action.reason, self.clock())
            await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=snapshot))
            return snapshot
        request = tf.CancelOrderRequest(
            client_order_id=action.client_order_id, reason=venue_reason(action.reason)
        )
        try:
            desk = self.links.desk(action.venue)
            with self._sending_cancel(action.venue, action.symbol):
                await self.fence()
                answer = await desk.tradeflow.CancelOrder(
                    request, timeout=self.timeout_s, metadata=desk.metadata
                )
        except grpc.aio.AioRpcError as exc:
            VENUE_CALLS.labels(action.venue, "cancel", exc.code().name.lower()).inc()
            log.warning("inspector: cancel %s at %s: %s; its state asked in %g s", action.client_order_id,
                        action.venue, exc.code().name, self.retry_s)  # fmt: skip
            self._ask_later(action.client_order_id)
            return None
        VENUE_CALLS.labels(action.venue, "cancel", "ok").inc()
        await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=answer.order))
        return answer.order

    async def cancel_all(self, action: CancelAll) -> int:
        queued = [o for o in self._queued.values() if o.venue == action.venue]
        for placement in queued:  # placements a plan has yet to begin: never sent
            self._queued.pop(placement.client_order_id, None)
            self._withdrawn.add(placement.client_order_id)
        for held in [*queued, *self.stops.release_venue(action.venue)]:
            snapshot = order_snapshot(held, tf.ORDER_STATUS_CANCELED, action.reason, self.clock())
            await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=snapshot))
        try:
            desk = self.links.desk(action.venue)
            with self._sending_cancel(action.venue, None):
                await self.fence()
                answer = await desk.tradeflow.CancelAllOrders(
                    tf.CancelAllOrdersRequest(reason=venue_reason(action.reason)),
                    timeout=self.timeout_s,
                    metadata=desk.metadata,
                )
        except grpc.aio.AioRpcError as exc:
            VENUE_CALLS.labels(action.venue, "cancel_all", exc.code().name.lower()).inc()
            log.warning("inspector: cancel all at %s: %s", action.venue, exc.code().name)
            return 0
        VENUE_CALLS.labels(action.venue, "cancel_all", "ok").inc()
        for order in answer.orders:
            await self.feed(jr.JournalEntry(now_ns=self.clock(), order_update=order))
        return len(answer.orders)

    # ---- query

    async def query(self, action: QueryOrder) -> None:
        if self.stops.holds(action.client_order_id):
            return  # an emulated stop is ours to hold: nothing to ask
        request = tf.GetOrderRequest(client_order_id=action.client_order_id)
        try:
            desk = self.links.desk(action.venue)
            answer = await desk.tradeflow.GetOrder(request, timeout=self.timeout_s, metadata=desk.metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                result = jr.JournalQueryResult(client_order_id=action.client_order_id)
                await self.feed(jr.JournalEntry(now_ns=self.clock(), query_result=result))
                return
            log.warning("inspector: query %s at %s: %s; again in %g s", action.client_order_id,
                        action.venue, exc.code().name, self.retry_s)  # fmt: skip
            self._later(action)
            return
        result = jr.JournalQueryResult(client_order_id=action.client_order_id, order=answer.order)
        await self.feed(jr.JournalEntry(now_ns=self.clock(), query_result=result))

    def _later(self, action: QueryOrder) -> None:
        async def again() -> None:
            await asyncio.sleep(self.retry_s)
            await self.query(action)

        self._in_background(again())

    def _ask_later(self, client_order_id: str) -> None:
        """A cancel without an answer (a deadline passed, as across a freeze; a connection
        broke; the venue did not know the order): the order may still stand at the venue, and
        the core, which counts it as going, would place beside it what the venue then refuses.
        After a pause its state is asked (`placement_unknown`): the core queries it and cancels
        it again while it stands, or ends it when the venue has it no more."""

        async def again() -> None:
            await asyncio.sleep(self.retry_s)
            await self.feed(jr.JournalEntry(now_ns=self.clock(), placement_unknown=client_order_id))

        self._in_background(again())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    # ---- what a venue can do

    async def learn(self, venue: str) -> None:
        """The venue's capabilities (stop orders, amends in place), asked while unknown; one that
        does not answer now is asked again in the background until it does."""
        await self.links.learn(venue, self.timeout_s)
        if not self.links.knows(venue) and venue not in self._learning:
            self._learning.add(venue)
            self._in_background(self._learn_later(venue))

    async def _learn_later(self, venue: str) -> None:
        """Until the venue says what it can do; then, where it holds stops itself, the stops
        emulated meanwhile go to it under their own ids (a cancel meanwhile waits for the
        placement, as for any order on its way)."""
        backoff = Backoff(*_LEARN_RETRY_S)
        try:
            while not self.links.knows(venue):
                await asyncio.sleep(backoff.next())
                await self.links.learn(venue, self.timeout_s)
        finally:
            self._learning.discard(venue)
        if not self.native_stops(venue):
            return
        for order in self.stops.release_venue(venue):
            log.info("inspector: %s holds stops itself: stop %s goes to it", venue, order.client_order_id)
            await self.place(order)

    # ---- emulated stops

    async def on_trade(self, venue: str, symbol: str, price: Any) -> None:
        """A public trade: the emulated stops it crosses are placed now."""
        for order in self.stops.triggered(venue, symbol, price):
            log.info("inspector: emulated stop %s triggered at %s", order.client_order_id, price)
            await self.feed(jr.JournalEntry(now_ns=self.clock(), stop_triggered=order.client_order_id))

    async def close(self) -> None:
        for task in list(self._retries):
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)
