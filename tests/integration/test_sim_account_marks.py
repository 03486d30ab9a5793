"""StreamAccount on a sim venue process carries a leveraged position's moves with the mark (issue
60): once the 10x long is open, the sim's market, trending down (`drift_per_s`), moves its mark,
and the stream sends the position again with the new mark price, unrealised PnL and margin ratio
without any new execution, at most once every account_mark_interval_s (1 s: trademesh.venues.runtime.venue,
docs/derivatives.md "Margin and liquidation")."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from decimal import Decimal

import grpc
import pytest

from tests.integration.support import CALL_TIMEOUT_S, Stubs, VenueFactory, listening_executions, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

D = Decimal
PERP = "BTC/USDT:USDT"
INTERVAL_S = 1.0  # Venue.account_mark_interval_s's default
# A market falling 0.5 % a second without noise: the 10x long's liquidation (about 9 % below its
# entry) is some 18 s away, well after the few seconds watched here.
CONFIG = f"""
taker_fee_rate = "0.001"
maker_fee_rate = "0"
[balances]
USDT = "1000"
[[symbols]]
symbol = "{PERP}"
start_price = "100"
tick_size = "0.1"
lot_size = "0.001"
volatility_per_sqrt_s = 0
drift_per_s = -0.005
trades_per_s = 5
level_spacing_ticks = 1
maker_size_lots = 50000
taker_size_lots = 100
funding_interval_s = 86400
"""


class Stream:
    """A StreamAccount read in the background, each response with the moment it came."""

    def __init__(self, stubs: Stubs) -> None:
        self.call = stubs.tf.StreamAccount(tf.StreamAccountRequest())
        self.came: list[tuple[float, tf.StreamAccountResponse]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for response in self.call:
            self.came.append((time.monotonic(), response))

    def moves(self) -> list[tuple[float, tf.Position]]:
        """The position as each change after the snapshot carried it."""
        return [(at, p) for at, r in self.came if not r.snapshot for p in r.positions if p.symbol == PERP]

    async def close(self) -> None:
        self.call.cancel()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task


async def test_a_leveraged_positions_mark_and_margin_ratio_stream_without_executions(
    fresh_venue: VenueFactory,
) -> None:
    stubs = fresh_venue(CONFIG, "account-marks").stubs()
    try:
        await stubs.tf.SetLeverage(
            tf.SetLeverageRequest(symbol=PERP, leverage="10", margin_mode=tf.MARGIN_MODE_ISOLATED),
            timeout=CALL_TIMEOUT_S,
        )
        executions = await listening_executions(stubs)
        placed = await stubs.tf.PlaceOrder(
            tf.PlaceOrderRequest(symbol=PERP, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="5"),
            timeout=CALL_TIMEOUT_S,
        )
        await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
        executed = len(executions.seen)

        stream = Stream(stubs)
        try:

            async def three_moves() -> list[tuple[float, tf.Position]] | None:
                moves = stream.moves()
                return moves if len(moves) >= 3 else None

            moves = await until(
                three_moves, timeout_s=6 * INTERVAL_S + 5, interval_s=0.1, what="3 mark moves"
            )
            ended_at = time.monotonic()
            snapshot_at, snapshot = stream.came[0]
            assert snapshot.snapshot
            [opened] = [p for p in snapshot.positions if p.symbol == PERP]
        finally:
            await stream.close()

        assert len(executions.seen) == executed, "no execution since the snapshot"
        positions = [opened] + [p for _, p in moves]
        marks = [D(p.mark_price) for p in positions]
        ratios = [D(p.margin_ratio) for p in positions]
        pnls = [D(p.unrealized_pnl) for p in positions]
        assert all(a != b for a, b in itertools.pairwise(marks)), "each change moved the mark"
        assert marks[-1] < marks[0] and ratios[-1] > ratios[0] and pnls[-1] < pnls[0], "the long losing"
        assert all(D(p.size) == 5 and p.liquidation_price == opened.liquidation_price for p in positions)
        # At most one change an interval (the hub reads again an interval after its last read).
        times = [snapshot_at] + [at for at, _ in moves]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) > 0.8 * INTERVAL_S, gaps
        assert len(stream.moves()) <= (ended_at - snapshot_at) / INTERVAL_S + 1
    finally:
        await stubs.close()
