"""The account's own order updates and fills, from the venue's private WebSocket, as executions.

Two watch loops (ccxt `watch_orders`, `watch_my_trades`) keep the private streams open, and a
third (`watch_orders` with the spec's `stop_stream` params) where the venue reports its stops
on a channel of their own (OKX's `orders-algo`; its ccxt client hands those changes over with
the other orders'); after each wake-up the fills ccxt has not handed over yet go out with the order as it
now stands, then every order whose state changed. The venue's reporter drops a state
it has already reported (the same order may also be reported from a REST answer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trademesh.core.domain.model import Fill, Liquidity, Order, Side
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.venues.live.convert import Liquidation, is_liquidation, order_from_ccxt
from trademesh.venues.live.normalize import decimal_or_zero
from trademesh.venues.live.watch import keep_watching

__all__ = ["PrivateStreams", "fill_from_ccxt"]

Report = Callable[[Order, Fill | None], object]
# Fill ids remembered to hand each fill over once (far more than ccxt's own trade cache).
_SEEN_FILLS = 10_000


def fill_from_ccxt(trade: dict[str, Any], order: Order, liquidation: Liquidation | None = None) -> Fill:
    """`liquidation`: the exchange's test of its raw trade (a fill of a liquidation order is one
    too)."""
    fee = trade.get("fee") or {}
    d = decimal_or_zero
    return Fill(
        fill_id=str(trade.get("id") or ""),
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=Side.SELL if trade.get("side") == "sell" else Side.BUY,
        price=d(trade.get("price")),
        size=d(trade.get("amount")),
        fee=d(fee.get("cost")),
        fee_asset=str(fee.get("currency") or ""),
        liquidity=Liquidity.MAKER if trade.get("takerOrMaker") == "maker" else Liquidity.TAKER,
        trade_id=str(trade.get("id") or ""),
        ts_event_ns=int(trade.get("timestamp") or 0) * 1_000_000,
        liquidation=order.liquidation or is_liquidation(trade, liquidation),
    )


@dataclass(eq=False)
class PrivateStreams:
    """A venue's orders and fills as its ccxt.pro private streams push them, reported as ours."""

    venue: str
    exchange: Any
    report: Report
    backoff: Callable[[], Backoff]
    stop_stream: Mapping[str, Any] | None = None
    liquidation: Liquidation | None = None
    _seen_fills: dict[str, None] = field(default_factory=dict, init=False, repr=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)

    def start(self) -> None:
        for method in ("watch_orders", "watch_my_trades"):
            self._tasks.append(asyncio.create_task(self._run(method), name=f"private-{method}"))
        if self.stop_stream is not None:
            stops = dict(self.stop_stream)
            self._tasks.append(asyncio.create_task(self._run("watch_orders", stops), name="private-stops"))

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)

    async def _run(self, method: str, params: dict[str, Any] | None = None) -> None:
        args: tuple[Any, ...] = (None, None, None, params) if params else ()
        watch = getattr(self.exchange, method)
        stream = f"private {method}"
        await keep_watching(self.venue, stream, lambda: watch(*args), self.backoff(), lambda _: self.poll())

    def poll(self) -> None:
        for trade in list(self.exchange.myTrades or []):
            fill_id = str(trade.get("id") or "")
            if not fill_id or fill_id in self._seen_fills:
                continue
            order = self._order(str(trade.get("order") or ""))
            if order is not None:  # else: the order's update has not come yet; next time
                self._remember(fill_id)
                self.report(order, fill_from_ccxt(trade, order, self.liquidation))
        for raw in list(self.exchange.orders or []):
            self.report(order_from_ccxt(self.venue, raw, self.liquidation), None)

    def _order(self, order_id: str) -> Order | None:
        for raw in reversed(list(self.exchange.orders or [])):
            if str(raw.get("id")) == order_id:
                return order_from_ccxt(self.venue, raw, self.liquidation)
        return None

    def _remember(self, fill_id: str) -> None:
        self._seen_fills[fill_id] = None
        if len(self._seen_fills) > _SEEN_FILLS:
            del self._seen_fills[next(iter(self._seen_fills))]
