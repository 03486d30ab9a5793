"""OKX swaps' leverage, margin and liquidation against the replay stand-in, through ccxt.

A session written here in OKX's v5 public WebSocket formats (https://www.okx.com/docs-v5/en/,
Public channels: books, trades, mark-price) holds BTC-USDT-SWAP at 50,000 for `_DROP_S` seconds,
then the book and the mark fall to 48,000. Played at its recorded pace, the venue process
(trademesh venue okx-swap --replay, with the trading credential) is asked over gRPC:
- GetStatus: leverage, cross and isolated, liquidates;
- GetLeverage: 1x cross (the stand-in's default), the first position tier's 100x;
- SetLeverage: 150x refused naming `leverage`; 2.5x cross set and read back as OKX writes it
  (OKX takes a fractional leverage); 50x isolated set and read back;
- a market buy of 2 contracts at 50,000.1, sent with tdMode isolated: GetPositions carries
  OKX's figures (markPx, lever, mgnMode, margin, mmr, upl, liqPx);
- the mark's fall past liqPx: the stand-in's full_liquidation order closes the position at its
  bankruptcy price, and the execution comes with order and fill flagged `liquidation`.
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
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
SYMBOL = "BTC/USDT:USDT"
INST = "BTC-USDT-SWAP"
CREDENTIALS = {
    f"TRADEMESH_OKX_SWAP_{field}": f"replay-{field.lower()}"
    for field in ("API_KEY", "API_SECRET", "PASSPHRASE")
}
_DROP_S = 20
_END_S = _DROP_S + 4


def _frame(at_ms: int, channel: str, data: dict[str, Any], action: str | None = None) -> str:
    message: dict[str, Any] = {"arg": {"channel": channel, "instId": INST}}
    if action is not None:
        message["action"] = action
    message["data"] = [data]
    return f"{at_ms / 1000:.6f}: " + json.dumps(message, separators=(",", ":"))


def _frames(start_ms: int) -> Iterator[str]:
    """The book at 50,000.0 / 50,000.1 and a trade and the mark each second; at _DROP_S the book
    moves to 48,000.0 / 48,000.1 and the mark to 48,000."""

    def book(at_ms: int, action: str, bids: list[list[str]], asks: list[list[str]], seq: int) -> str:
        data = {
            "asks": asks,
            "bids": bids,
            "ts": str(at_ms),
            "checksum": 0,
            "seqId": seq,
            "prevSeqId": seq - 1,
        }
        return _frame(at_ms, "books", data, action)

    yield book(start_ms, "snapshot", [["50000.0", "50", "0", "1"]], [["50000.1", "50", "0", "1"]], 100)
    for second in range(_END_S):
        at_ms = start_ms + second * 1000 + 10
        if second == _DROP_S:
            bids = [["50000.0", "0", "0", "0"], ["48000.0", "50", "0", "1"]]
            asks = [["50000.1", "0", "0", "0"], ["48000.1", "50", "0", "1"]]
            yield book(at_ms, "update", bids, asks, 101)
        price = "48000.0" if second >= _DROP_S else "50000.0"
        yield _frame(
            at_ms + 1, "mark-price", {"instType": "SWAP", "instId": INST, "markPx": price, "ts": str(at_ms)}
        )
        trade = {"instId": INST, "tradeId": str(7000 + second), "px": price, "sz": "1.00", "side": "sell",
                 "ts": str(at_ms + 2), "count": "1"}  # fmt: skip
        yield _frame(at_ms + 2, "trades", trade)


def _write_session(directory: Path) -> list[Path]:
    start_ms = (int(time.time()) - 60) * 1000
    path = directory / "OKX_SWAP_LEVER.ws.1.0"
    opened = f"wss://ws.okx.com:8443/ws/v5/public <-> {(start_ms - 500) / 1000:.6f}"
    path.write_text("\n".join([opened, *_frames(start_ms)]) + "\n")
    return [path]


# The position the test opens and what OKX's rules make of it (isolated, linear; tier 1: mmr 0.4 %).
SIZE, ENTRY, MARK, LEVERAGE, MMR = D(2), D("50000.1"), D(50000), D(50), D("0.004")
MARGIN = SIZE * ENTRY / LEVERAGE
LIQUIDATION = ((SIZE * ENTRY - MARGIN) / (SIZE * (1 - MMR))).quantize(D("1e-8"))
BANKRUPTCY = ENTRY - MARGIN / SIZE


async def _leverage(stubs: Stubs) -> tf.LeverageSetting:
    answer = await stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    return answer.setting


async def _set(stubs: Stubs, leverage: str, mode: tf.MarginMode.ValueType) -> tf.LeverageSetting:
    request = tf.SetLeverageRequest(symbol=SYMBOL, leverage=leverage, margin_mode=mode)
    return (await stubs.tf.SetLeverage(request, timeout=CALL_TIMEOUT_S)).setting


async def _position(stubs: Stubs) -> tf.Position | None:
    answer = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    return next((p for p in answer.positions if p.symbol == SYMBOL and D(p.size or "0") != 0), None)


async def test_leverage_margin_and_liquidation(tmp_path: Path) -> None:
    venue, log = start_replay_venue(
        tmp_path, "okx-swap", _write_session(tmp_path), env=CREDENTIALS, paced=True
    )
    try:
        stubs = venue.stubs()
        executions = await listening_executions(stubs)
        trades = stubs.md.Subscribe(md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_TRADES]))
        await asyncio.wait_for(trades.read(), CALL_TIMEOUT_S)  # the replay plays: the book is there

        status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        capabilities = status.capabilities
        assert capabilities.leverage and capabilities.liquidates
        assert list(capabilities.margin_modes) == [tf.MARGIN_MODE_CROSS, tf.MARGIN_MODE_ISOLATED]

        first = await _leverage(stubs)
        assert (D(first.leverage), first.margin_mode, D(first.max_leverage)) == (
            D(1),
            tf.MARGIN_MODE_CROSS,
            D(100),
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _set(stubs, "150", tf.MARGIN_MODE_ISOLATED)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in bad_request_violations(refused.value)] == ["leverage"]
        assert "100" in (refused.value.details() or "")
        fractional = await _set(stubs, "2.5", tf.MARGIN_MODE_CROSS)
        assert (D(fractional.leverage), fractional.margin_mode) == (D("2.5"), tf.MARGIN_MODE_CROSS)
        isolated = await _set(stubs, "50", tf.MARGIN_MODE_ISOLATED)
        assert (D(isolated.leverage), isolated.margin_mode) == (LEVERAGE, tf.MARGIN_MODE_ISOLATED)
        read = await _leverage(stubs)
        assert (D(read.leverage), read.margin_mode, D(read.max_leverage)) == (
            LEVERAGE,
            tf.MARGIN_MODE_ISOLATED,
            D(100),
        )

        placed = await stubs.tf.PlaceOrder(
            tf.PlaceOrderRequest(
                symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size=str(SIZE)
            ),
            timeout=CALL_TIMEOUT_S,
        )
        position = await until(lambda: _position(stubs), CALL_TIMEOUT_S, what="the position")
        assert (D(position.size), D(position.entry_price), position.settle_asset) == (SIZE, ENTRY, "USDT")
        assert (D(position.leverage), position.margin_mode) == (LEVERAGE, tf.MARGIN_MODE_ISOLATED)
        assert D(position.mark_price) == MARK
        assert D(position.unrealized_pnl) == SIZE * (MARK - ENTRY)
        assert D(position.initial_margin) == MARGIN  # isolated: the margin the position put in
        assert D(position.maintenance_margin) == SIZE * MARK * MMR
        ratio = SIZE * MARK * MMR / (MARGIN + SIZE * (MARK - ENTRY))
        assert abs(D(position.margin_ratio) - ratio) < D("0.0001")
        assert D(position.liquidation_price) == LIQUIDATION
        assert not any(e.order.liquidation for e in executions.of(placed.order.order_id))

        async def liquidated() -> list[tf.Execution] | None:
            found = [e for e in executions.seen if e.order.liquidation]
            return found if any(e.HasField("fill") for e in found) else None

        seen = await until(liquidated, _END_S + CALL_TIMEOUT_S, what="the liquidation")
        fill = next(e.fill for e in seen if e.HasField("fill"))
        assert fill.liquidation
        assert (fill.side, D(fill.size), D(fill.price)) == (common.SIDE_SELL, SIZE, BANKRUPTCY)
        assert D(fill.fee) == SIZE * BANKRUPTCY * D("0.0005")
        await until(lambda: _gone(stubs), CALL_TIMEOUT_S, what="the position gone after its liquidation")
        trades.cancel()
        await executions.close()
    finally:
        await stop_venue(venue, log)


async def _gone(stubs: Stubs) -> bool | None:
    return True if await _position(stubs) is None else None
