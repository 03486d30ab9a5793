"""TradeFlow StreamExecutions: each order change once, numbered; resumed across a reconnect with
nothing lost or repeated, fills included; a point it cannot resume says `gap`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.orders import (
    ExecutionReader,
    cancel,
    leave_flat,
    place,
    place_resting,
    round_trip,
    status_name,
)
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

_WAIT_S = 8.0  # for an execution the venue owes


def _sequence_problems(executions: list[tf.Execution], after: int) -> str | None:
    """None when the sequences run after+1, after+2, ... without a hole or a repeat."""
    expected = after + 1
    for execution in executions:
        if execution.sequence != expected:
            return f"execution {execution.sequence} where {expected} was next (after {after})"
        expected += 1
    return None


@check(
    "executions.stream",
    (
        "StreamExecutions: an order's OPEN then CANCELED, each once, numbered one after "
        "another, with the cancel's reason"
    ),
    timeout_s=30.0,
)
async def executions_stream(kit: Kit) -> str:
    reader = ExecutionReader(kit)
    reason = "venue-check: executions"
    try:
        await reader.opened(_WAIT_S)
        order = await place_resting(kit)
        await reader.wait_for(
            lambda e: e.order.order_id == order.order_id and e.order.status == tf.ORDER_STATUS_OPEN,
            _WAIT_S,
            f"order {order.order_id} OPEN",
        )
        await cancel(kit, order.order_id, reason)
        await reader.wait_for(
            lambda e: e.order.order_id == order.order_id and e.order.status == tf.ORDER_STATUS_CANCELED,
            _WAIT_S,
            f"order {order.order_id} CANCELED",
        )
        executions = [e for _, e in reader.executions()]
        first = executions[0].sequence
        problem = _sequence_problems(executions, first - 1)
        if problem:
            fail(f"StreamExecutions: {problem}")
        mine = [e for e in executions if e.order.order_id == order.order_id]
        states = [status_name(e.order.status) for e in mine]
        if states != ["OPEN", "CANCELED"]:
            fail(
                f"order {order.order_id}'s executions were {', '.join(states)}, not OPEN then "
                "CANCELED, each once"
            )
        ended = mine[-1]
        if ended.order.status_reason != reason or ended.venue != kit.venue or ended.ts_event_ns <= 0:
            fail(
                f"the CANCELED execution has status_reason {ended.order.status_reason!r}, venue "
                f"{ended.venue!r}, ts_event_ns {ended.ts_event_ns}"
            )
        responses = [r for _, r in reader.responses if r.executions]
        if any(r.position != r.executions[-1].sequence or r.epoch == 0 for r in responses):
            fail(
                "a StreamExecutions response's position is not its last execution's sequence, or "
                "it has no epoch"
            )
    finally:
        await reader.close()
        await leave_flat(kit)
    return f"OPEN then CANCELED, each once, sequences {first}..{executions[-1].sequence} in a row"


def _filled(placed: tf.PlaceOrderResponse, side: str) -> tf.Order:
    """The order of an IOC meant to fill; fails when it ended with nothing filled."""
    order = placed.order
    ended = order.status in (tf.ORDER_STATUS_EXPIRED, tf.ORDER_STATUS_CANCELED, tf.ORDER_STATUS_REJECTED)
    if ended and not Decimal(order.filled_size or "0"):
        fail(
            f"an IOC {side} of {order.size} crossing the market by 5 % ended {status_name(order.status)} "
            f"with nothing filled ({order.status_reason or 'no reason given'}): no fill to resume"
        )
    return order


def _fill_of(order_id: str) -> Callable[[tf.Execution], bool]:
    return lambda e: e.order.order_id == order_id and e.HasField("fill")


@check(
    "executions.resume",
    (
        "StreamExecutions resumed after a reconnect: every execution since the point "
        "(fills included), in sequence, none repeated; another epoch's point says gap"
    ),
    timeout_s=40.0,
)
async def executions_resume(kit: Kit) -> str:
    reader = ExecutionReader(kit)
    try:
        await reader.opened(_WAIT_S)
        resting = await place_resting(kit)
        _, seen = await reader.wait_for(
            lambda e: e.order.order_id == resting.order_id, _WAIT_S, f"order {resting.order_id} OPEN"
        )
    finally:
        await reader.close()
    point = tf.StreamExecutionsRequest.Resume(epoch=reader.responses[-1][1].epoch, position=seen.sequence)
    buy, sell = await round_trip(kit)
    try:
        # While no stream is open: a fill each way at the smallest size (the venue left flat), and a cancel.
        bought = _filled(await place(kit, buy), "buy")
        sold = _filled(await place(kit, sell), "sell")
        await cancel(kit, resting.order_id)
        resumed = ExecutionReader(kit, point)
        try:
            await resumed.opened(_WAIT_S)
            for order, what in ((bought, "the buy"), (sold, "the sell")):
                await resumed.wait_for(
                    _fill_of(order.order_id),
                    _WAIT_S,
                    f"a fill of {what} ({order.order_id}) placed while disconnected",
                )
            await resumed.wait_for(
                lambda e: e.order.order_id == resting.order_id and e.order.status == tf.ORDER_STATUS_CANCELED,
                _WAIT_S,
                f"the cancel of {resting.order_id} made while disconnected",
            )
            header = resumed.responses[0][1]
            if header.gap:
                fail(f"resuming from execution {point.position} of its epoch said gap: {header.gap_reason}")
            problem = _sequence_problems([e for _, e in resumed.executions()], point.position)
            if problem:
                fail(f"the resumed stream: {problem}")
        finally:
            await resumed.close()
        await _expect_gap(kit, point)
    finally:
        await leave_flat(kit)
    count = len(resumed.executions())
    return (
        f"resumed after execution {point.position}: {count} executions in sequence, both "
        "fills and the cancel, none repeated; another epoch says gap"
    )


async def _expect_gap(kit: Kit, point: tf.StreamExecutionsRequest.Resume) -> None:
    other = tf.StreamExecutionsRequest.Resume(epoch=point.epoch + 1, position=1)
    reader = ExecutionReader(kit, other)
    try:
        await reader.opened(_WAIT_S)
        first = await reader.first(_WAIT_S)
    finally:
        await reader.close()
    if not first.gap or not first.gap_reason:
        fail(
            f"resuming from epoch {other.epoch}, not the venue's, the first response has gap "
            f"{first.gap} and gap_reason {first.gap_reason!r}"
        )
