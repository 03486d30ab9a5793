"""Binance USD-M leverage, margin and liquidation against the replay stand-in, through ccxt.

A session written here in Binance's USD-M market stream formats (combined streams: depthUpdate,
aggTrade, markPriceUpdate; https://developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams) holds BTCUSDT at 50,000 for `_DROP_S` seconds, then the book and the
mark price fall to 48,000. Played at its recorded pace, the venue process (trademesh venue
binanceusdm --replay, with the trading credential) is asked over gRPC:
- GetStatus: leverage, cross and isolated, liquidates;
- GetLeverage: Binance's default (20x cross) and the first bracket's 125x;
- SetLeverage: 200x (above the bracket) and 2.5x (not whole) refused naming `leverage`;
  50x isolated set and read back;
- a market buy of 0.1 BTC at 50,000.10: GetPositions, GetBalances and StreamAccount carry the
  margin figures Binance's positionRisk states (mark, leverage, mode, initial and maintenance
  margin, unrealised PnL, the liquidation price of Binance's one-way formula), a margin type
  change with the position open is FAILED_PRECONDITION;
- the mark's fall past the liquidation price: the stand-in liquidates as Binance does (a
  LIQUIDATION order, client id autoclose-...), and the execution comes with order and fill
  flagged `liquidation`, at the bankruptcy price; the position is gone (StreamAccount says so).
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
SECRET = "replay-secret-value-usdm-lev-7d2e"
CREDENTIALS = {"TRADEMESH_BINANCEUSDM_API_KEY": "replay-key", "TRADEMESH_BINANCEUSDM_API_SECRET": SECRET}
_DROP_S = 20  # the market falls this long after the session starts
_END_S = _DROP_S + 4


def _frame(at_ms: int, stream: str, data: dict[str, Any]) -> str:
    return f"{at_ms / 1000:.3f}: " + json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def _frames(start_ms: int) -> Iterator[str]:
    """The book at 50,000.00 / 50,000.10, a trade and the mark each second; at _DROP_S the
    book moves to 48,000.00 / 48,000.10 and the mark to 48,000."""
    update_id = 1000

    def depth(at_ms: int, bids: list[list[str]], asks: list[list[str]]) -> str:
        nonlocal update_id
        update_id += 1
        data = {"e": "depthUpdate", "E": at_ms, "T": at_ms, "s": "BTCUSDT", "U": update_id,
                "u": update_id, "pu": update_id - 1, "b": bids, "a": asks}  # fmt: skip
        return _frame(at_ms, "btcusdt@depth@100ms", data)

    yield depth(start_ms, [["50000.00", "5.000"]], [["50000.10", "5.000"]])
    for second in range(_END_S):
        at_ms = start_ms + second * 1000 + 10
        if second == _DROP_S:
            yield depth(
                at_ms, [["50000.00", "0"], ["48000.00", "5.000"]], [["50000.10", "0"], ["48000.10", "5.000"]]
            )
        price = "48000.00" if second >= _DROP_S else "50000.00"
        mark_text, next_funding = price + "000000", start_ms + 8 * 3_600_000
        mark = {"e": "markPriceUpdate", "E": at_ms + 1, "s": "BTCUSDT", "p": mark_text, "i": mark_text,
                "P": mark_text, "r": "0.00010000", "T": next_funding}  # fmt: skip
        yield _frame(at_ms + 1, "btcusdt@markPrice@1s", mark)
        trade = {"e": "aggTrade", "E": at_ms + 2, "a": 5000 + second, "s": "BTCUSDT", "p": price,
                 "q": "0.010", "f": 9000 + second, "l": 9000 + second, "T": at_ms + 2, "m": True}  # fmt: skip
        yield _frame(at_ms + 2, "btcusdt@aggTrade", trade)


def _write_session(directory: Path) -> list[Path]:
    start_ms = (int(time.time()) - 60) * 1000
    streams = "btcusdt@depth@100ms/btcusdt@markPrice@1s/btcusdt@aggTrade"
    opened = f"wss://fstream.binance.com/stream?streams={streams} <-> {(start_ms - 500) / 1000:.3f}"
    path = directory / "USDM_LEVER.ws.1.0"
    path.write_text("\n".join([opened, *_frames(start_ms)]) + "\n")
    return [path]


# The position the test opens, and what Binance's rules make of it (Binance, "Liquidation Price
# Calculation" for USDⓈ-M one-way isolated positions; the first bracket: MMR 0.4 %, cum 0).
SIZE, ENTRY, MARK, LEVERAGE, MMR = D("0.1"), D("50000.10"), D("50000.00"), D(50), D("0.004")
WALLET = SIZE * ENTRY / LEVERAGE  # the isolated margin put in
LIQUIDATION = ((WALLET - SIZE * ENTRY) / (SIZE * MMR - SIZE)).quantize(D("1e-8"))
BANKRUPTCY = ENTRY - WALLET / SIZE


async def _leverage(stubs: Stubs) -> tf.LeverageSetting:
    answer = await stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    return answer.setting


async def _refused(stubs: Stubs, leverage: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.SetLeverage(
            tf.SetLeverageRequest(symbol=SYMBOL, leverage=leverage), timeout=CALL_TIMEOUT_S
        )
    return refused.value


async def _position(stubs: Stubs) -> tf.Position | None:
    answer = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    return next((p for p in answer.positions if p.symbol == SYMBOL and D(p.size or "0") != 0), None)


async def test_leverage_margin_and_liquidation(tmp_path: Path) -> None:
    venue, log = start_replay_venue(
        tmp_path, "binanceusdm", _write_session(tmp_path), env=CREDENTIALS, paced=True
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
            D(20),
            tf.MARGIN_MODE_CROSS,
            D(125),
        )
        for too_much in ("200", "2.5"):
            refused = await _refused(stubs, too_much)
            assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [field for field, _ in bad_request_violations(refused)] == ["leverage"], refused.details()
            assert "125" in (refused.details() or "")
        set_to = await stubs.tf.SetLeverage(
            tf.SetLeverageRequest(symbol=SYMBOL, leverage="50", margin_mode=tf.MARGIN_MODE_ISOLATED),
            timeout=CALL_TIMEOUT_S,
        )
        assert (D(set_to.setting.leverage), set_to.setting.margin_mode) == (LEVERAGE, tf.MARGIN_MODE_ISOLATED)
        read = await _leverage(stubs)
        assert (D(read.leverage), read.margin_mode, D(read.max_leverage)) == (
            LEVERAGE,
            tf.MARGIN_MODE_ISOLATED,
            D(125),
        )

        placed = await stubs.tf.PlaceOrder(
            tf.PlaceOrderRequest(
                symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size=str(SIZE)
            ),
            timeout=CALL_TIMEOUT_S,
        )
        order_id = placed.order.order_id

        async def filled() -> list[tf.Execution] | None:
            found = executions.of(order_id)
            return found if any(e.HasField("fill") for e in found) else None

        fills = await until(filled, CALL_TIMEOUT_S, what="the buy's fill")
        assert D(next(e.fill.price for e in fills if e.HasField("fill"))) == ENTRY
        assert not any(e.order.liquidation or e.fill.liquidation for e in fills)

        position = await until(lambda: _position(stubs), CALL_TIMEOUT_S, what="the position")
        assert (D(position.size), D(position.entry_price), position.settle_asset) == (SIZE, ENTRY, "USDT")
        assert (D(position.leverage), position.margin_mode) == (LEVERAGE, tf.MARGIN_MODE_ISOLATED)
        assert D(position.mark_price) == MARK
        assert D(position.unrealized_pnl) == SIZE * (MARK - ENTRY)
        assert D(position.initial_margin) == SIZE * MARK / LEVERAGE  # positionRisk's notional is at mark
        assert D(position.maintenance_margin) == SIZE * MARK * MMR
        ratio = SIZE * MARK * MMR / (WALLET + SIZE * (MARK - ENTRY))  # isolated: over its own margin
        assert abs(D(position.margin_ratio) - ratio) < D("0.0001")
        assert D(position.liquidation_price) == LIQUIDATION
        balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
        usdt = next(b for b in balances.balances if b.asset == "USDT")
        assert D(usdt.position_margin) == SIZE * MARK / LEVERAGE

        with pytest.raises(grpc.aio.AioRpcError) as blocked:  # Binance -4048: a position is open
            await stubs.tf.SetLeverage(
                tf.SetLeverageRequest(symbol=SYMBOL, leverage="50", margin_mode=tf.MARGIN_MODE_CROSS),
                timeout=CALL_TIMEOUT_S,
            )
        assert blocked.value.code() == grpc.StatusCode.FAILED_PRECONDITION, blocked.value.details()

        account = stubs.tf.StreamAccount(tf.StreamAccountRequest())
        snapshot = await asyncio.wait_for(account.read(), CALL_TIMEOUT_S)
        assert isinstance(snapshot, tf.StreamAccountResponse)
        streamed = next(p for p in snapshot.positions if p.symbol == SYMBOL)
        assert (D(streamed.liquidation_price), D(streamed.leverage)) == (LIQUIDATION, LEVERAGE)

        def liquidations() -> list[tf.Execution]:
            return [e for e in executions.seen if e.order.liquidation]

        async def liquidated() -> list[tf.Execution] | None:
            return liquidations() if any(e.HasField("fill") for e in liquidations()) else None

        seen = await until(liquidated, _END_S + CALL_TIMEOUT_S, what="the liquidation")
        fill = next(e.fill for e in seen if e.HasField("fill"))
        order = seen[-1].order
        assert fill.liquidation and order.client_order_id.startswith("autoclose-")
        assert (fill.side, D(fill.size), D(fill.price)) == (common.SIDE_SELL, SIZE, BANKRUPTCY)
        assert D(fill.fee) == (SIZE * BANKRUPTCY * D("0.001")).quantize(D("1e-8"))

        async def closed() -> bool | None:
            message = await asyncio.wait_for(account.read(), CALL_TIMEOUT_S)
            assert isinstance(message, tf.StreamAccountResponse), "the account stream ended"
            gone = any(p.symbol == SYMBOL and D(p.size or "0") == 0 for p in message.positions)
            return True if gone else None

        await until(closed, CALL_TIMEOUT_S, interval_s=0, what="StreamAccount's closed position")
        assert await _position(stubs) is None
        account.cancel()
        trades.cancel()
        await executions.close()
    finally:
        await stop_venue(venue, log)
