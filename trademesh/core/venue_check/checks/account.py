"""TradeFlow's account: GetBalances, GetPositions and StreamAccount (a snapshot, then changes)."""

from __future__ import annotations

import asyncio
import time

import grpc

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.market import decimal_of
from trademesh.core.venue_check.orders import cancel, leave_flat, place_resting
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail, skip
from trademesh.core.venue_check.wire import answer, describe, field_violations, refusal
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

_UNKNOWN = "VENUECHECK/NOSUCH"
_SHOWN = 3
# How long the kit reads the changes after its order: a pushing venue sends them at once.
_CHANGES_S = 1.0


def _balance_problems(balances: list[tf.Balance]) -> list[str]:
    found = []
    assets = [b.asset for b in balances]
    if len(set(assets)) != len(assets):
        found.append("an asset listed twice")
    for b in balances:
        free, locked, total = decimal_of(b.free), decimal_of(b.locked), decimal_of(b.total)
        if not b.asset or free is None or locked is None or total is None:
            found.append(
                f"{b.asset!r}: free {b.free!r}, locked {b.locked!r}, total {b.total!r} are not all decimals"
            )
        elif locked < 0 or total != free + locked:
            found.append(
                f"{b.asset}: free {b.free} + locked {b.locked} is not total {b.total} (or locked is negative)"
            )
    return found


@check(
    "account.balances", "GetBalances: each asset once, decimals, total = free + locked, locked not negative"
)
async def account_balances(kit: Kit) -> str:
    answered = await answer("GetBalances", kit.mesh.tf.GetBalances(tf.GetBalancesRequest()))
    problems = _balance_problems(list(answered.balances))
    if answered.as_of_ns < 0 or answered.as_of_ns > time.time_ns() + 60_000_000_000:
        problems.append(f"as_of_ns {answered.as_of_ns} is neither 0 nor the venue's time")
    if problems:
        fail("GetBalances: " + "; ".join(problems[:_SHOWN]))
    return f"{len(answered.balances)} balances, each total = free + locked"


@check(
    "account.positions",
    "GetPositions: listed symbols with decimal sizes; a symbol filter; an unknown symbol INVALID_ARGUMENT",
)
async def account_positions(kit: Kit) -> str:
    answered = await answer("GetPositions", kit.mesh.tf.GetPositions(tf.GetPositionsRequest()))
    listed = {i.symbol for i in kit.instruments}
    for position in answered.positions:
        if position.symbol not in listed or decimal_of(position.size) is None:
            fail(
                f"GetPositions: a position of {position.symbol!r} of size {position.size!r} (a "
                "listed symbol and a decimal size)"
            )
        if position.entry_price and decimal_of(position.entry_price) is None:
            fail(f"GetPositions: {position.symbol}'s entry_price {position.entry_price!r} is not a decimal")
    one = await answer(
        f"GetPositions of {kit.symbol}", kit.mesh.tf.GetPositions(tf.GetPositionsRequest(symbol=kit.symbol))
    )
    others = {p.symbol for p in one.positions} - {kit.symbol}
    if others:
        fail(f"GetPositions of {kit.symbol} answered positions of {', '.join(sorted(others))}")
    error = await refusal(
        f"GetPositions of {_UNKNOWN}",
        kit.mesh.tf.GetPositions(tf.GetPositionsRequest(symbol=_UNKNOWN)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    if not any(f == "symbol" for f, _ in field_violations(error)):
        fail(f"GetPositions of {_UNKNOWN} was refused without a field violation on symbol")
    return (
        f"{len(answered.positions)} positions well formed; the filter and an unknown "
        "symbol as the contract says"
    )


@check(
    "account.stream",
    "StreamAccount: a first response with every balance (snapshot), later ones changes only",
    timeout_s=30.0,
)
async def account_stream(kit: Kit) -> str:
    capabilities = kit.status.capabilities
    if capabilities.account_feed == admin.ACCOUNT_FEED_UNSPECIFIED:
        skip("GetStatus capabilities.account_feed is ACCOUNT_FEED_UNSPECIFIED: the venue streams no account")
    call = kit.mesh.tf.StreamAccount(tf.StreamAccountRequest())
    try:
        first = await _next(call, kit.options.call_timeout_s, "StreamAccount's first response")
        if not first.snapshot:
            fail("StreamAccount's first response is not a snapshot")
        balances = await answer("GetBalances", kit.mesh.tf.GetBalances(tf.GetBalancesRequest()))
        if {b.asset for b in first.balances} != {b.asset for b in balances.balances}:
            fail("StreamAccount's snapshot does not hold the assets GetBalances lists")
        problems = _balance_problems(list(first.balances))
        if problems:
            fail("StreamAccount's snapshot: " + "; ".join(problems[:_SHOWN]))
        later = await _changes_after_an_order(kit, call)
    finally:
        call.cancel()
        await leave_flat(kit)
    return f"a snapshot of {len(first.balances)} balances, then {later} change(s), none a snapshot"


async def _changes_after_an_order(kit: Kit, call: object) -> int:
    """Places and cancels a resting order (which locks funds on most venues); every later response
    must be a change, not a snapshot. The number of changes seen."""
    order = await place_resting(kit)
    await cancel(kit, order.order_id)
    seen = 0
    deadline = time.monotonic() + _CHANGES_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            response = await asyncio.wait_for(call.read(), left)  # type: ignore[attr-defined]
        except TimeoutError:
            break
        except grpc.aio.AioRpcError as error:
            fail(f"StreamAccount ended with {describe(error)}")
        if response is grpc.aio.EOF:
            fail("the venue ended StreamAccount")
        seen += 1
        if response.snapshot:
            fail("a StreamAccount response after the first is a snapshot")
        problems = _balance_problems(list(response.balances))
        if problems:
            fail("a StreamAccount change: " + "; ".join(problems[:_SHOWN]))
    return seen


async def _next(call: object, timeout_s: float, what: str) -> tf.StreamAccountResponse:
    try:
        response = await asyncio.wait_for(call.read(), timeout_s)  # type: ignore[attr-defined]
    except TimeoutError:
        fail(f"{what} did not come within {timeout_s:g} s")
    except grpc.aio.AioRpcError as error:
        fail(f"{what}: StreamAccount answered {describe(error)}")
    if response is grpc.aio.EOF:
        fail(f"{what}: the venue ended the stream")
    assert isinstance(response, tf.StreamAccountResponse)
    return response
