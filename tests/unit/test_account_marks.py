"""StreamAccount and the marks (trademesh.venues.runtime.account, issue 60): a venue whose margin figures move
with the market (the sim's engine) is read again every account_mark_interval_s while it holds an
open margined position, so a leveraged position's mark and margin ratio reach a subscriber
without an execution; a spot-only or flat account costs no read and sends nothing however the
market moves. The sim here is the real engine and market, stepped by the test instead of its own
loop."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from trademesh.core.domain.model import MarginMode, OrderRequest, OrderType, Side, TimeInForce
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.account import AccountHub, AccountState
from trademesh.venues.sim.config import SimConfig, SymbolConfig
from trademesh.venues.sim.venue import SimVenue

D = Decimal
INTERVAL_S = 0.05
INTERVALS = 20  # watched for this many intervals


def falling(symbol: str) -> SymbolConfig:
    """A market falling 2 % a second without noise: its mark moves at every step."""
    return SymbolConfig(
        symbol=symbol,
        start_price=D("100"),
        tick_size=D("0.1"),
        lot_size=D("0.001"),
        volatility_per_sqrt_s=0.0,
        drift_per_s=-0.02,
    )


PERP = falling("BTC/USDT:USDT")
SPOT = falling("ETH/USDT")


class CountingHub(AccountHub):
    """The hub, counting its reads of the account."""

    reads = 0

    async def read(self) -> AccountState:
        self.reads += 1
        return await super().read()


def sim(symbol: SymbolConfig) -> SimVenue:
    venue = SimVenue(SimConfig(balances=(("USDT", D(10_000)),), symbols=(symbol,)))
    venue.account_mark_interval_s = INTERVAL_S
    venue.market.prime()
    return venue


async def buy(venue: SimVenue, symbol: str) -> None:
    order, _ = await venue.place_order(
        OrderRequest(symbol, Side.BUY, OrderType.MARKET, D("0.1"), None, TimeInForce.IOC)
    )
    assert order.filled_size == D("0.1"), order


async def stream_while_the_market_moves(
    venue: SimVenue, seconds: float
) -> tuple[CountingHub, list[tf.StreamAccountResponse]]:
    """Subscribe, step the market for `seconds`, and take every response queued meanwhile."""
    hub = CountingHub(venue)
    subscriber, _snapshot = await hub.subscribe()
    got: list[tf.StreamAccountResponse] = []

    async def take() -> None:
        async for response in subscriber.responses():
            got.append(response)

    taker = asyncio.create_task(take())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        venue.market.step()
        await asyncio.sleep(0.005)
    hub.unsubscribe(subscriber)
    subscriber.outbox.end()
    await asyncio.wait_for(taker, 5)
    await hub.stop()
    return hub, got


async def test_a_leveraged_positions_mark_is_streamed_at_most_once_an_interval() -> None:
    venue = sim(PERP)
    assert venue.margin_moves_with_market
    await venue.set_leverage(PERP.symbol, D(10), MarginMode.ISOLATED)
    await buy(venue, PERP.symbol)
    hub, got = await stream_while_the_market_moves(venue, INTERVALS * INTERVAL_S)
    marks = [D(p.mark_price) for r in got for p in r.positions if p.symbol == PERP.symbol]
    assert len(marks) >= 3, got
    assert len(set(marks)) >= 3 and marks[-1] < marks[0], "the falling mark"
    ratios = [D(p.margin_ratio) for r in got for p in r.positions if p.margin_ratio]
    assert len(ratios) >= 3 and ratios[-1] > ratios[0], "the margin ratio rising as the long loses"
    assert hub.reads <= 1 + INTERVALS + 1, "one read an interval at most (and the snapshot's)"


async def test_a_spot_only_account_is_not_read_nor_streamed_as_the_market_moves() -> None:
    venue = sim(SPOT)
    await buy(venue, SPOT.symbol)
    hub, got = await stream_while_the_market_moves(venue, INTERVALS * INTERVAL_S)
    assert got == []
    assert hub.reads == 1, "the snapshot's only"


async def test_a_flat_account_of_a_margined_venue_is_not_read_as_the_market_moves() -> None:
    venue = sim(PERP)
    hub, got = await stream_while_the_market_moves(venue, INTERVALS * INTERVAL_S)
    assert venue.margin_moves_with_market and got == []
    assert hub.reads == 1, "the snapshot's only"
