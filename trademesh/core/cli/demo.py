"""`trademesh demo`: start the sim venue and watch it trade in the terminal.

Trades stream in; every few seconds the demo places a limit buy at the best bid
and shows it rest and fill against the synthetic flow (or cancels it if the
market walks away). The venue runs as its own process with fresh tokens: the mesh token and the
trading credential, which the demo sends (it stands in for the inspector, the one trader of a mesh).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from datetime import datetime
from pathlib import Path

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN, read_secret
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = ["run_demo"]

SYMBOL = "BTC/USDT"
ORDER_SIZE = "0.05"
ORDER_EVERY_S = 8.0
# At most this many trade lines a second, so the order lines stay readable.
TRADE_LINES_PER_S = 4


def _clock(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def _say(text: str) -> None:
    print(text, flush=True)


class Demo:
    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.market = md_grpc.MarketDataStub(channel)
        self.trading = tf_grpc.TradeFlowStub(channel)
        self.best_bid = ""
        self.fills = 0

    async def watch_trades(self) -> None:
        request = md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_TRADES, md.CHANNEL_TICKERS])
        shown, second = 0, 0
        async for batch in self.market.Subscribe(request, metadata=self.metadata):
            for event in batch.events:
                if event.HasField("ticker"):
                    self.best_bid = event.ticker.best_bid
                elif event.HasField("trade"):
                    now = int(time.monotonic())
                    shown, second = (0, now) if now != second else (shown, second)
                    if shown < TRADE_LINES_PER_S:
                        shown += 1
                        self._trade_line(event)

    def _trade_line(self, event: md.MarketEvent) -> None:
        trade = event.trade
        side = "buy " if trade.taker_side == common.SIDE_BUY else "sell"
        _say(f"{_clock(event.ts_event_ns)}  trade  {event.symbol}  {side} {trade.size:>9} @ {trade.price}")

    async def watch_executions(self) -> None:
        stream = self.trading.StreamExecutions(tf.StreamExecutionsRequest(), metadata=self.metadata)
        async for batch in stream:
            for execution in batch.executions:
                self._execution_line(execution)

    def _execution_line(self, execution: tf.Execution) -> None:
        order = execution.order
        status = tf.OrderStatus.Name(order.status).removeprefix("ORDER_STATUS_")
        if execution.HasField("fill"):
            self.fills += 1
            fill = execution.fill
            liquidity = tf.Liquidity.Name(fill.liquidity).removeprefix("LIQUIDITY_").lower()
            when = _clock(execution.ts_event_ns)
            fee = f"{liquidity}, fee {fill.fee} {fill.fee_asset}"
            _say(f"{when}  >>> FILL   order {order.order_id}: {fill.size} @ {fill.price} ({fee}) -> {status}")
        else:
            _say(f"{_clock(execution.ts_event_ns)}  >>> ORDER  {order.order_id} {status} "
                 f"buy {order.size} @ {order.price or 'market'} {order.status_reason}")  # fmt: skip

    async def trade_forever(self, rounds: int | None) -> None:
        done = 0
        while rounds is None or done < rounds:
            await asyncio.sleep(ORDER_EVERY_S / 2)
            await self._one_round(done)
            done += 1

    async def _one_round(self, index: int) -> None:
        if self.best_bid == "":
            return
        placed = await self.trading.PlaceOrder(
            tf.PlaceOrderRequest(
                symbol=SYMBOL, side=common.SIDE_BUY, type=tf.ORDER_TYPE_LIMIT, size=ORDER_SIZE,
                price=self.best_bid, client_order_id=f"demo-{int(time.time())}-{index}",
            ),
            metadata=self.metadata,
        )  # fmt: skip
        await asyncio.sleep(ORDER_EVERY_S / 2)
        order = (await self.trading.GetOrder(tf.GetOrderRequest(order_id=placed.order.order_id),
                                             metadata=self.metadata)).order  # fmt: skip
        if order.status in (tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_PARTIALLY_FILLED):
            await self.trading.CancelOrder(
                tf.CancelOrderRequest(order_id=order.order_id), metadata=self.metadata
            )

    async def balances_line(self) -> str:
        reply = await self.trading.GetBalances(tf.GetBalancesRequest(), metadata=self.metadata)
        return ", ".join(f"{b.asset} {b.total}" for b in reply.balances if b.asset in ("BTC", "USDT"))


async def _run(venue: ServiceProcess, token: str, rounds: int | None) -> int:
    async with grpc.aio.insecure_channel(venue.address) as channel:
        demo = Demo(channel, token)
        _say(f"balances: {await demo.balances_line()}")
        tasks = [asyncio.create_task(demo.watch_trades()), asyncio.create_task(demo.watch_executions())]
        try:
            await demo.trade_forever(rounds)
        finally:
            for task in tasks:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await cancel_and_wait(task)
        _say(f"balances: {await demo.balances_line()}  ({demo.fills} fills)")
        return demo.fills


async def run_demo(port: int, rounds: int | None = None) -> int:
    """Run until Ctrl-C (or `rounds` order rounds); returns the number of fills seen."""
    token = read_secret(TOKEN) or secrets.token_urlsafe(24)
    trade_token = read_secret(TRADE_TOKEN) or secrets.token_urlsafe(24)
    log_path = Path(tempfile.gettempdir()) / "trademesh-demo-venue.log"
    with log_path.open("w") as log_file:
        venue = start_service(["venue", "sim", "--port", str(port), "--metrics-port", "-1"],
                              env={TOKEN: token, TRADE_TOKEN: trade_token}, stderr=log_file)  # fmt: skip
        _say(f"sim venue serving on {venue.address} (auth on; venue log: {log_path})")
        buf = "node_modules/.bin/buf curl --protocol grpc --http2-prior-knowledge"
        _say(f"try: {buf} http://{venue.address} --list-services")
        try:
            return await _run(venue, trade_token, rounds)
        finally:
            code = venue.terminate()
            _say(f"sim venue stopped (exit code {code})")
