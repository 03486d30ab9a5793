"""A paper venue's StreamAccount sends a margined position's moves with its mark (docs/derivatives.md,
"Margin and liquidation"; trademesh/venues/runtime/account.py): paper OKX swaps on its recorded session,
played at its recorded pace (20 s), holds a long of one contract (0.01 BTC) at 20x isolated. With
no execution after the entry, the stream keeps sending the position as the venue's book moves its
mark (the book's mid in the sim's engine), at most once a second (Venue.account_mark_interval_s),
each update's unrealised PnL and margin ratio reckoned at the mark it carries."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.integration.paper_support import Market
from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, listening_executions, stop_venue, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

pytestmark = pytest.mark.integration

D = Decimal
SYMBOL = "BTC/USDT:USDT"
CONTRACT = D("0.01")  # BTC a contract
MARKS_WANTED = 3
SESSION_S = 40  # the recorded 20 s at its pace, and the venue's start


class AccountUpdates:
    """StreamAccount's responses after its snapshot: every position of SYMBOL sent, with when."""

    def __init__(self, stub: tf_grpc.TradeFlowAsyncStub) -> None:
        self.call = stub.StreamAccount(tf.StreamAccountRequest())
        self.snapshot: tf.StreamAccountResponse | None = None
        self.positions: list[tuple[float, tf.Position]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for response in self.call:
            if response.snapshot:
                self.snapshot = response
                continue
            for position in response.positions:
                if position.symbol == SYMBOL:
                    self.positions.append((loop.time(), position))

    def marks(self) -> list[Decimal]:
        return [D(p.mark_price) for _, p in self.positions if p.mark_price]

    async def enough(self) -> bool | None:
        if self._task.done():
            self._task.result()
        return True if len(set(self.marks())) >= MARKS_WANTED else None

    async def close(self) -> None:
        self.call.cancel()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task


async def test_a_paper_positions_mark_moves_are_streamed_without_executions(tmp_path: Path) -> None:
    config = tmp_path / "paper.toml"
    config.write_text("latency_ms = 0\n")
    extra = ["--paper", "--paper-config", str(config)]
    venue, log = start_replay_venue(tmp_path, "okx-swap", capture_files("OKX_SWAP"), speed=1.0, extra=extra)
    try:
        stubs = venue.stubs()
        await stubs.tf.SetLeverage(
            tf.SetLeverageRequest(symbol=SYMBOL, leverage="20", margin_mode=tf.MARGIN_MODE_ISOLATED),
            timeout=CALL_TIMEOUT_S,
        )
        executions = await listening_executions(stubs)
        market = Market(stubs, SYMBOL)
        try:
            await until(market.quoted, SESSION_S, what="the venue's book")
            placed = await stubs.tf.PlaceOrder(
                tf.PlaceOrderRequest(
                    symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="1"
                ),
                timeout=CALL_TIMEOUT_S,
            )
            await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
            heard = len(executions.seen)
            updates = AccountUpdates(stubs.tf)
            try:
                await until(updates.enough, SESSION_S, 0.1, "three marks of the position streamed")
            finally:
                await updates.close()
            assert len(executions.seen) == heard, "no execution after the entry: the marks moved alone"
            snapshot = updates.snapshot
            assert snapshot is not None
            [held] = [p for p in snapshot.positions if p.symbol == SYMBOL]
            for _, position in updates.positions:
                _assert_at_its_mark(position, D(held.entry_price))
            times = [t for t, _ in updates.positions]
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert all(gap > 0.5 for gap in gaps), f"at most one update a second: {gaps}"
            low = min(b for _, b, _ in market.tops if b is not None)
            high = max(a for _, _, a in market.tops if a is not None)
            assert all(low <= mark <= high for mark in updates.marks()), "marks within the venue's book"
        finally:
            await market.close()
    finally:
        await stop_venue(venue, log)


def _assert_at_its_mark(position: tf.Position, entry: Decimal) -> None:
    """The figures the update carries are the engine's at the mark it carries."""
    mark, size = D(position.mark_price), D(position.size)
    assert size == 1 and D(position.entry_price) == entry, position
    assert D(position.unrealized_pnl) == (mark - entry) * size * CONTRACT, position
    margin_balance = D(position.initial_margin) + D(position.unrealized_pnl)
    expected = D(position.maintenance_margin) / margin_balance  # the venue's has 18 decimals
    assert abs(D(position.margin_ratio) - expected) < D("1e-17"), position
