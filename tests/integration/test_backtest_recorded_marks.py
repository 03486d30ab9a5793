"""A backtest of a recorded session liquidates where the venue's recorded marks say (docs/
backtest.md, "Recorded marks"): the real recorder writes a perpetual's book, trades and mark prices
(its mark_prices table, migration 016) into PostgreSQL; RecordedSource gives the marks back among
the other events, in the documented order, the range opened by the last mark of the minute before
it; the replayed venue fed those events liquidates a 10x isolated long when the recorded mark
reaches its liquidation price, though the recorded book and trades never left 100."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.postgres_server import database_url, fresh_database
from tests.unit.test_backtest_recorded_marks import BANKRUPT, PERP, book, liquidated, mark, replayed, trade
from trademesh.core.backtest.source import Recorded, RecordedSource
from trademesh.core.domain.model import OrderRequest, OrderType, Side, TimeInForce
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL: not in the fast tier
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

D = Decimal
S = 10**9
MINUTE_NS = 60 * S
START = time.time_ns() // MINUTE_NS * MINUTE_NS  # a partition the recorder made
END = START + MINUTE_NS


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[Any]:
    opened = await open_pool(fresh_database)
    try:
        yield opened
    finally:
        await opened.close()


async def record(pool: Any, database: str, events: Sequence[md.MarketEvent]) -> None:
    """The events through the recorder's bus handler, as one bus entry."""
    options = RecorderConfig(database_url=database, redis_url="redis://unused")
    recorder = Recorder(pool, await prepare(pool, options), options)
    await recorder.handle("md.test", [("1-0", decode({FIELD: encode_market("test", list(events))}))])


def at(event: md.MarketEvent, ts_ns: int) -> md.MarketEvent:
    moved = md.MarketEvent()
    moved.CopyFrom(event)
    moved.ts_event_ns = moved.ts_recv_ns = ts_ns
    return moved


def indexed(event: md.MarketEvent, index: str) -> md.MarketEvent:
    event.mark_price.index_price = index
    return event


async def test_a_recorded_session_is_liquidated_at_its_recorded_marks(
    pool: Any, fresh_database: str, tmp_path: Path
) -> None:
    session = [
        at(mark(0, "100.2"), START - 70 * S),  # more than a minute before: not the range's
        indexed(at(mark(0, "100.05"), START - 10 * S), "100.04"),  # opens the range, at START
        at(book(0, "100", "100.1"), START + S),
        at(trade(0, "100"), START + 3 * S),
        at(mark(0, "95"), START + 3 * S),
        at(mark(0, "90.4"), START + 5 * S),  # past the liquidation price (90.45...)
        at(trade(0, "100"), START + 6 * S),
        at(mark(0, "90"), END),  # outside the range
    ]
    await record(pool, fresh_database, session)

    source = RecordedSource(pool, "sim", [PERP], START, END, ("book", "trade", "mark"))
    got: list[Recorded] = [event async for event in source]
    assert [(r.ts_ns - START, r.kind) for r in got] == [
        (0, "mark"), (S, "book"), (3 * S, "trade"), (3 * S, "mark"), (5 * S, "mark"), (6 * S, "trade"),
    ]  # fmt: skip
    marks = [r.message for r in got if r.kind == "mark" and isinstance(r.message, md.MarketEvent)]
    assert [(m.mark_price.mark_price, m.mark_price.index_price) for m in marks] == [
        ("100.05", "100.04"), ("95", ""), ("90.4", ""),
    ]  # fmt: skip
    assert await source.count() == {"book": 1, "trade": 2, "mark": 2}

    market = replayed(tmp_path)
    buy_at = START + 2 * S
    done, bought = [], False
    for recorded in got:
        if recorded.ts_ns > buy_at and not bought:
            bought = True
            request = OrderRequest(PERP, Side.BUY, OrderType.MARKET, D(5), None, TimeInForce.IOC)
            market.submit(request, buy_at)
            entry = [e.fill for _, e in market.advance(buy_at) if e.fill is not None]
            assert [(f.price, f.size) for f in entry] == [(D("100.1"), D(5))]
        assert isinstance(recorded.message, md.MarketEvent)
        market.on_market(recorded.message)
        done += liquidated(market, recorded.ts_ns)
    [fill] = [e.fill for e in done if e.fill is not None]
    assert (fill.price, fill.size, fill.ts_event_ns) == (BANKRUPT, D(5), START + 5 * S)
