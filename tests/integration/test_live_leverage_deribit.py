"""Deribit's margin and liquidation against the replay stand-in, through ccxt.

Deribit keeps no leverage per instrument (its standard margin: the account's equity in the coin
backs every position): the venue's capabilities say so (leverage false, no margin modes,
liquidates), and SetLeverage and GetLeverage answer UNIMPLEMENTED, saying why. A session written
here in Deribit's JSON-RPC notification formats (https://docs.deribit.com/, subscriptions
book, ticker, trades) holds BTC-PERPETUAL at 50,000 for `_DROP_S` seconds, then the book and the
mark fall to 45,000. Played at its recorded pace, the venue (with the trading credential) buys
1,000,000 USD of the perpetual on 1.5 BTC: GetPositions carries what Deribit states of it (mark,
leverage, initial and maintenance margin at Deribit's futures rates, floating PnL, the estimated
liquidation price, cross, in BTC) and the margin ratio of the account's summary (maintenance
margin / margin balance); when the mark falls past it, Deribit's own order (is_liquidation)
closes the position, and its execution comes with order and fill flagged `liquidation`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.replay import start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, Stubs, listening_executions, stop_venue, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
SYMBOL, NATIVE = "BTC/USD:BTC", "BTC-PERPETUAL"
ENV = {
    "TRADEMESH_DERIBIT_API_KEY": "replay-key",
    "TRADEMESH_DERIBIT_API_SECRET": "deribit-margin-secret-5b1f",
}
_DROP_S = 20
_END_S = _DROP_S + 4


def _note(at_ms: int, channel: str, data: Any) -> str:
    message = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": f"{channel}.{NATIVE}.raw", "data": data},
    }
    return f"{at_ms / 1000:.6f}: " + json.dumps(message, separators=(",", ":"))


def _frames(start_ms: int) -> Iterator[str]:
    book = {"type": "snapshot", "change_id": 1, "instrument_name": NATIVE, "timestamp": start_ms,
            "bids": [["new", 50000.0, 5000000]], "asks": [["new", 50000.5, 5000000]]}  # fmt: skip
    yield _note(start_ms, "book", book)
    for second in range(_END_S):
        at_ms = start_ms + second * 1000 + 10
        if second == _DROP_S:
            change = {"type": "change", "prev_change_id": 1, "change_id": 2, "instrument_name": NATIVE,
                      "timestamp": at_ms, "bids": [["delete", 50000.0, 0], ["new", 45000.0, 5000000]],
                      "asks": [["delete", 50000.5, 0], ["new", 45000.5, 5000000]]}  # fmt: skip
            yield _note(at_ms, "book", change)
        price = 45000.0 if second >= _DROP_S else 50000.0
        ticker = {"timestamp": at_ms + 1, "instrument_name": NATIVE, "state": "open", "mark_price": price,
                  "index_price": price, "last_price": price, "best_bid_price": price,
                  "best_ask_price": price + 0.5,
                  "best_bid_amount": 5000000, "best_ask_amount": 5000000, "open_interest": 1000000,
                  "current_funding": 0.0, "funding_8h": 0.0, "settlement_price": price,
                  "stats": {"volume": 100.0, "price_change": 0.0, "low": price, "high": price}}  # fmt: skip
        yield _note(at_ms + 1, "ticker", ticker)
        trade = {"trade_seq": 1000 + second, "trade_id": f"{2000 + second}", "timestamp": at_ms + 2,
                 "tick_direction": 0, "price": price, "mark_price": price, "instrument_name": NATIVE,
                 "index_price": price, "direction": "sell", "amount": 10}  # fmt: skip
        yield _note(at_ms + 2, "trades", [trade])


def _write_session(directory: Path) -> list[Path]:
    start_ms = (int(time.time()) - 60) * 1000
    path = directory / "DERIBIT_MARGIN.ws.1.0"
    opened = f"wss://www.deribit.com/ws/api/v2 <-> {(start_ms - 500) / 1000:.6f}"
    path.write_text("\n".join([opened, *_frames(start_ms)]) + "\n")
    return [path]


# What Deribit's futures rules make of the position (its contract specification): initial margin
# 2 % and maintenance 1.5 % of the size in BTC at the mark, each plus 0.5 % per 100 BTC; the fee
# 0.05 % of the amount's worth in BTC; the estimated liquidation price where the equity (cash plus
# the floating PnL) equals the maintenance margin.
SIZE, ASK, MARK, DROPPED, CASH = D(1_000_000), D("50000.5"), D(50000), D(45000), D("1.5")
SAT = D("1e-8")
FEE = (SIZE / ASK * D("0.0005")).quantize(SAT)
COIN = SIZE / ASK
HELD = SIZE / MARK  # BTC at the mark
INITIAL = (HELD * (D("0.02") + HELD * D("0.00005"))).quantize(SAT)
MAINTENANCE = (HELD * (D("0.015") + HELD * D("0.00005"))).quantize(SAT)


def _liquidation_price(cash: Decimal) -> Decimal:
    """The mark where cash + COIN - SIZE / mark = 0.015 SIZE / mark + 0.00005 (SIZE / mark)^2."""
    low, high = D(1), MARK
    for _ in range(200):  # bisection: the equity less the maintenance margin rises with the mark
        middle = (low + high) / 2
        x = 1 / middle
        if cash + COIN - SIZE * x - (D("0.015") * SIZE * x + D("0.00005") * SIZE * SIZE * x * x) > 0:
            high = middle
        else:
            low = middle
    return high


async def _position(stubs: Stubs) -> tf.Position | None:
    answer = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    return next((p for p in answer.positions if p.symbol == SYMBOL and D(p.size or "0") != 0), None)


async def test_margin_figures_and_liquidation_without_a_leverage_setting(tmp_path: Path) -> None:
    venue, log = start_replay_venue(tmp_path, "deribit", _write_session(tmp_path), env=ENV, paced=True)
    try:
        stubs = venue.stubs()
        executions = await listening_executions(stubs)
        trades = stubs.md.Subscribe(md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_TRADES]))
        await asyncio.wait_for(trades.read(), CALL_TIMEOUT_S)  # the replay plays: the book is there

        status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        capabilities = status.capabilities
        assert (capabilities.leverage, list(capabilities.margin_modes), capabilities.liquidates) == (
            False,
            [],
            True,
        )
        for call in (
            stubs.tf.SetLeverage(tf.SetLeverageRequest(symbol=SYMBOL, leverage="10"), timeout=CALL_TIMEOUT_S),
            stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "no leverage per symbol" in (refused.value.details() or "")

        await stubs.tf.PlaceOrder(
            tf.PlaceOrderRequest(
                symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size=str(SIZE)
            ),
            timeout=CALL_TIMEOUT_S,
        )
        position = await until(lambda: _position(stubs), CALL_TIMEOUT_S, what="the position")
        assert (D(position.size), position.settle_asset, position.margin_mode) == (
            SIZE,
            "BTC",
            tf.MARGIN_MODE_CROSS,
        )
        assert D(position.entry_price) == ASK
        assert D(position.mark_price) == MARK
        assert D(position.unrealized_pnl) == (COIN - SIZE / MARK).quantize(SAT)
        assert (D(position.initial_margin), D(position.maintenance_margin)) == (INITIAL, MAINTENANCE)
        assert D(position.leverage) == int(1 / (D("0.02") + HELD * D("0.00005")))
        expected = _liquidation_price(CASH - FEE)
        assert abs(D(position.liquidation_price) - expected) <= D("0.01"), (
            position.liquidation_price,
            expected,
        )
        # The account's (cross): private/get_account_summary's maintenance_margin / margin_balance,
        # the margin balance being the equity (the cash after the fee plus the floating PnL).
        equity = CASH - FEE + (COIN - SIZE / MARK).quantize(SAT)
        assert abs(D(position.margin_ratio) - MAINTENANCE / equity) < D("1e-17"), position

        async def liquidated() -> list[tf.Execution] | None:
            found = [e for e in executions.seen if e.order.liquidation]
            return found if any(e.HasField("fill") for e in found) else None

        seen = await until(liquidated, _END_S + CALL_TIMEOUT_S, what="the liquidation")
        fill = next(e.fill for e in seen if e.HasField("fill"))
        assert fill.liquidation
        assert (fill.side, D(fill.size), D(fill.price)) == (common.SIDE_SELL, SIZE, DROPPED)
        assert D(fill.fee) == (SIZE / DROPPED * D("0.0005")).quantize(SAT)

        async def gone() -> bool | None:
            return True if await _position(stubs) is None else None

        await until(gone, CALL_TIMEOUT_S, what="the position gone after its liquidation")
        trades.cancel()
        await executions.close()
    finally:
        await stop_venue(venue, log)
