"""A live session's orders sent again to the replayed venue at the times the live venue received
them: the "recorded" latency model of issue 18's fills parity (docs/backtest-parity.md, "Parity with
live").

The recorder keeps every execution the venue reported (table `executions`): each order's request
(symbol, side, type, time in force, price, trigger price, size, flags), the venue's time it arrived
(`created_ns`, the venue's clock when it took the order) and, when it was cancelled, the time the
cancel arrived (the CANCELED update's `updated_ns`). `load_recorded_orders` reads them back;
`send` hands them to a ReplayedMarket (trademesh.core.backtest.market) so that each reaches the replayed
venue at its recorded arrival: the recorded events before it apply first, those at or after it
later, so it meets the recorded book as the live order met the venue's. With the sim's matching
engine on both sides, its fills are the live ones (tests/integration/test_chain_parity.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import asyncpg

from trademesh.core.backtest.market import ReplayedMarket
from trademesh.core.backtest.source import RecordedSource
from trademesh.core.domain.model import (
    Execution,
    Liquidity,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "OrderOutcome",
    "RecordedFill",
    "RecordedOrder",
    "load_recorded_orders",
    "merged",
    "outcomes",
    "refill",
    "send",
]


@dataclass(frozen=True)
class RecordedFill:
    """A fill as the venue reported it (ids and times aside)."""

    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity


@dataclass(frozen=True)
class OrderOutcome:
    """How an order ended (or stands) and its fills in the venue's order, those in a row at one
    price and liquidity as one (`merged`): the sim fills a taker once per maker order it meets,
    and a recorded book (sizes per price level) does not tell the makers' orders apart, so the
    replayed venue's level is one synthetic order where the live one held several."""

    status: OrderStatus
    filled_size: Decimal
    fills: tuple[RecordedFill, ...]


@dataclass(frozen=True)
class RecordedOrder:
    """One live order: its request, when it reached the venue, when its cancel did (None: not
    cancelled), its outcome, and when it ended (its last update's time; None: still working)."""

    request: OrderRequest
    arrival_ns: int
    cancel_ns: int | None
    outcome: OrderOutcome
    ended_ns: int | None = None


_SQL = """
SELECT order_id, client_order_id, symbol, side, order_type, time_in_force, post_only, reduce_only,
       price, size, trigger_price, filled_size, status, created_ns, updated_ns, fill_price, fill_size,
       fee, fee_asset, liquidity
FROM executions WHERE venue = $1 AND created_ns >= $2 AND created_ns < $3
ORDER BY created_ns, order_id, ts_event_ns, epoch, sequence
"""


async def load_recorded_orders(
    database_url: str, venue: str, start_ns: int, end_ns: int
) -> list[RecordedOrder]:
    """The orders of `venue` that reached it in [start_ns, end_ns), by arrival, each with every
    update recorded of it so far."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(_SQL, venue, start_ns, end_ns)
    finally:
        await connection.close()
    updates: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        updates.setdefault(row["order_id"], []).append(row)
    return [_order(found) for found in updates.values()]


def _order(updates: Sequence[asyncpg.Record]) -> RecordedOrder:
    first, last = updates[0], updates[-1]
    price, trigger = first["price"], first["trigger_price"]
    request = OrderRequest(
        symbol=first["symbol"],
        side=Side(first["side"]),
        type=OrderType(first["order_type"]),
        size=Decimal(first["size"]),
        price=None if price is None else Decimal(price),
        time_in_force=TimeInForce(first["time_in_force"]),
        post_only=first["post_only"],
        reduce_only=first["reduce_only"],
        # An order placed without a client id is sent again under its venue id, to be found by it.
        client_order_id=first["client_order_id"] or first["order_id"],
        trigger_price=None if trigger is None else Decimal(trigger),
    )
    status = OrderStatus(last["status"])
    fills = merged(
        RecordedFill(
            Decimal(u["fill_price"]),
            Decimal(u["fill_size"]),
            Decimal(u["fee"]),
            u["fee_asset"],
            Liquidity(u["liquidity"]),
        )
        for u in updates
        if u["fill_size"] is not None
    )
    cancel = last["updated_ns"] if status is OrderStatus.CANCELED else None
    ended = None if status.is_open else last["updated_ns"]
    outcome = OrderOutcome(status, Decimal(last["filled_size"]), fills)
    return RecordedOrder(request, first["created_ns"], cancel, outcome, ended)


def send(market: ReplayedMarket, orders: Sequence[RecordedOrder]) -> None:
    """Each order to `market`, reaching it at its recorded arrival (and its cancel at the
    recorded cancel's), given the market's order latency of 0: before the first recorded event
    at or after that time is applied."""
    if market.latency.order_ns:
        raise FailedPrecondition("recorded arrivals need the market's order latency to be 0")
    for order in orders:
        market.submit(order.request, order.arrival_ns)
    for order in sorted((o for o in orders if o.cancel_ns is not None), key=lambda o: o.cancel_ns or 0):
        assert order.cancel_ns is not None
        market.cancel(order.request.client_order_id, order.cancel_ns)


def outcomes(executions: Sequence[Execution]) -> dict[str, OrderOutcome]:
    """Each order's outcome from the executions a venue reported of it, by client order id."""
    fills: dict[str, list[RecordedFill]] = {}
    last: dict[str, Execution] = {}
    for execution in executions:
        client_order_id = execution.order.client_order_id
        last[client_order_id] = execution
        found = fills.setdefault(client_order_id, [])
        fill = execution.fill
        if fill is not None:
            found.append(RecordedFill(fill.price, fill.size, fill.fee, fill.fee_asset, fill.liquidity))
    return {
        cid: OrderOutcome(e.order.status, e.order.filled_size, merged(fills[cid])) for cid, e in last.items()
    }


def merged(fills: Iterable[RecordedFill]) -> tuple[RecordedFill, ...]:
    """Fills in a row at one price and liquidity as one (their sizes and fees summed)."""
    out: list[RecordedFill] = []
    for fill in fills:
        previous = out[-1] if out else None
        if previous is not None and (previous.price, previous.liquidity, previous.fee_asset) == (
            fill.price,
            fill.liquidity,
            fill.fee_asset,
        ):
            out[-1] = replace(previous, size=previous.size + fill.size, fee=previous.fee + fill.fee)
        else:
            out.append(fill)
    return tuple(out)


async def refill(
    database_url: str,
    market: ReplayedMarket,
    symbols: Sequence[str],
    start_ns: int,
    end_ns: int,
    orders: Sequence[RecordedOrder],
) -> dict[str, OrderOutcome]:
    """The recorded market of [start_ns, end_ns) through `market` with `orders` sent at their
    recorded arrivals: each order's outcome at the end."""
    send(market, orders)
    source = RecordedSource(database_url, market.venue, symbols, start_ns, end_ns)
    async for recorded in source:
        if isinstance(recorded.message, md.MarketEvent):
            market.on_market(recorded.message)
    return outcomes([execution for _, execution in market.advance(end_ns)])
