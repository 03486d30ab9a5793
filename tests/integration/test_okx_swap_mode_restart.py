"""OKX swaps keep their margin mode across a restart of the venue (docs/derivatives.md, "Margin and
liquidation: the live venues"; trademesh/venues/okx_swap/margin.py): OKX holds no margin mode per instrument
but the mgnMode of its positions and the tdMode of its orders, and the connector reads it back
from them before the symbol's first GetLeverage or order.

The OKX swaps stand-in runs in the test's process (the venue's config `replay_url`) on the
recorded OKX_SWAP session, so it outlives the venue processes started against it, one after the
other (`trademesh venue okx-swap` with the trading credential):
1. SetLeverage 5x isolated; a limit buy far below the book rests (tdMode isolated).
2. Restarted: GetLeverage answers 5x isolated (the pending order's tdMode); the order cancelled,
   a market buy opens an isolated position.
3. Restarted: the first order, sent before any GetLeverage, goes out with tdMode isolated (the
   position's mgnMode), adding to the position; GetLeverage answers 5x isolated.
Before the connector read it back, each restart answered 1x cross and sent cross orders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.replay import capture_files
from tests.integration.support import CALL_TIMEOUT_S, VENUE_ENV, Stubs, Venue, stop_venue, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import start_service
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.okx_swap.spec import SPEC
from trademesh.venues.replay.loader import open_standin
from trademesh.venues.replay.server import ReplayOptions, ReplayServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
SYMBOL = "BTC/USDT:USDT"
INST = "BTC-USDT-SWAP"
CONTRACT = D("0.01")  # BTC a contract (sizes are in BTC)
CREDENTIALS = {
    f"TRADEMESH_OKX_SWAP_{field}": f"replay-{field.lower()}"
    for field in ("API_KEY", "API_SECRET", "PASSPHRASE")
}


@asynccontextmanager
async def okx_venue(directory: Path, url: str, run: int) -> AsyncIterator[Stubs]:
    """One venue process against the stand-in at `url`, stopped on the way out."""
    config = directory / "okx-swap.toml"
    config.write_text(f'replay_url = "{url}"\nsymbols = ["{SYMBOL}"]\n')
    args = ["venue", "okx-swap", "--port", "0", "--metrics-port", "0", "--config", str(config)]
    log_path = directory / f"okx-swap-{run}.log"
    log = log_path.open("w")
    env = {**VENUE_ENV, **CREDENTIALS}
    # In a thread: the stand-in answers the venue's start (its markets) on this event loop.
    service = await asyncio.to_thread(start_service, args, env=env, stderr=log, timeout_s=60)
    venue = Venue(service, log_path)
    try:
        yield venue.stubs()
    finally:
        await stop_venue(venue, log)


async def leverage(stubs: Stubs) -> tuple[Decimal, tf.MarginMode.ValueType]:
    answer = await stubs.tf.GetLeverage(tf.GetLeverageRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    return D(answer.setting.leverage), answer.setting.margin_mode


async def order(stubs: Stubs, type_: tf.OrderType.ValueType, price: str = "") -> tf.Order:
    request = tf.PlaceOrderRequest(symbol=SYMBOL, side=common.SIDE_BUY, type=type_, size="1", price=price)
    return (await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)).order


def sent_mode(server: ReplayServer, order_id: str) -> str:
    """The tdMode the stand-in (the exchange) got the order with."""
    return str(server.adapter.orders.orders[order_id]["tdMode"])  # type: ignore[attr-defined]


async def test_a_restarted_okx_swap_venue_answers_the_mode_the_exchange_holds(tmp_path: Path) -> None:
    server = open_standin(SPEC.standin, ReplayOptions(tuple(capture_files("OKX_SWAP"))))
    url = await server.start()
    server.release()
    try:
        async with okx_venue(tmp_path, url, 1) as stubs:
            assert await leverage(stubs) == (D(1), tf.MARGIN_MODE_CROSS)  # nothing held: cross
            await stubs.tf.SetLeverage(
                tf.SetLeverageRequest(symbol=SYMBOL, leverage="5", margin_mode=tf.MARGIN_MODE_ISOLATED),
                timeout=CALL_TIMEOUT_S,
            )

            async def played() -> bool | None:
                return True if server.exhausted else None

            await until(played, 60, what="the recorded session played")
            bid = D(server.adapter._best(INST)[0])  # type: ignore[attr-defined]
            resting = await order(stubs, tf.ORDER_TYPE_LIMIT, str(bid - 1000))
            assert resting.status == tf.ORDER_STATUS_OPEN, resting
            assert sent_mode(server, resting.order_id) == "isolated"

        async with okx_venue(tmp_path, url, 2) as stubs:
            assert await leverage(stubs) == (D(5), tf.MARGIN_MODE_ISOLATED), "from the pending order"
            cancel = tf.CancelOrderRequest(order_id=resting.order_id)
            await stubs.tf.CancelOrder(cancel, timeout=CALL_TIMEOUT_S)
            opened = await order(stubs, tf.ORDER_TYPE_MARKET)
            assert sent_mode(server, opened.order_id) == "isolated"

        async with okx_venue(tmp_path, url, 3) as stubs:
            added = await order(stubs, tf.ORDER_TYPE_MARKET)  # before any GetLeverage
            assert sent_mode(server, added.order_id) == "isolated", "from the position's mgnMode"
            assert await leverage(stubs) == (D(5), tf.MARGIN_MODE_ISOLATED)

            async def position() -> tf.Position | None:
                answer = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
                held = [p for p in answer.positions if p.symbol == SYMBOL and D(p.size) == 2 * CONTRACT]
                return held[0] if held else None

            held = await until(position, CALL_TIMEOUT_S, what="the position of two contracts")
            assert (held.margin_mode, D(held.leverage)) == (tf.MARGIN_MODE_ISOLATED, D(5))
    finally:
        await server.stop()
