"""Synthetic recorded history: a seeded random walk as the venue would have streamed it (a book
snapshot, then trades, every step), for tests and benchmarks of the backtest. The same seed
gives the same events.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Walk", "bar_walk", "walk"]


@dataclass(frozen=True)
class Walk:
    venue: str = "sim"
    symbol: str = "BTC/USDT"
    start_ns: int = 1_767_225_600 * 1_000_000_000  # 2026-01-01
    step_ns: int = 1_000_000_000
    steps: int = 600
    price: float = 65_000.0
    volatility: float = 0.0005  # per step, of log price
    drift: float = 0.0
    tick: Decimal = Decimal("0.01")
    levels: int = 5
    level_size: Decimal = Decimal("0.5")
    trades_per_step: int = 2
    trade_size: Decimal = Decimal("0.01")
    seed: int = 7


def walk(spec: Walk) -> Iterator[md.MarketEvent]:
    """Per step: the book around the price (snapshot), then trades at it, a nanosecond apart."""
    rng = random.Random(spec.seed)
    log_price = math.log(spec.price)
    for step in range(spec.steps):
        log_price += spec.drift + rng.gauss(0.0, spec.volatility)
        mid = Decimal(str(round(math.exp(log_price), 2))).quantize(spec.tick)
        at = spec.start_ns + step * spec.step_ns
        yield _snapshot(spec, mid, at, step + 1)
        for n in range(spec.trades_per_step):
            buy = rng.random() < 0.5
            price = mid + spec.tick if buy else mid - spec.tick
            yield _trade(spec, price, buy, at + n + 1, f"{step}-{n}")


def _snapshot(spec: Walk, mid: Decimal, at: int, sequence: int) -> md.MarketEvent:
    event = md.MarketEvent(venue=spec.venue, symbol=spec.symbol, ts_event_ns=at, ts_recv_ns=at)
    snapshot = event.book_snapshot
    snapshot.sequence = sequence
    for level in range(1, spec.levels + 1):
        offset = spec.tick * level
        snapshot.bids.add(price=str(mid - offset), size=str(spec.level_size))
        snapshot.asks.add(price=str(mid + offset), size=str(spec.level_size))
    return event


def _trade(spec: Walk, price: Decimal, buy: bool, at: int, trade_id: str) -> md.MarketEvent:
    event = md.MarketEvent(venue=spec.venue, symbol=spec.symbol, ts_event_ns=at, ts_recv_ns=at)
    trade = event.trade
    trade.trade_id = trade_id
    trade.price = str(price)
    trade.size = str(spec.trade_size)
    trade.taker_side = common.SIDE_BUY if buy else common.SIDE_SELL
    return event


def bar_walk(spec: Walk) -> Iterator[md.MarketEvent | bus.Bar]:
    """Per step (a bar of `step_ns`): at its close, the closed bar (OHLC of four sub-steps of the
    walk), then the book around the close (snapshot) and a trade at it."""
    rng = random.Random(spec.seed)
    log_price = math.log(spec.price)
    timeframe = TIMEFRAME_TO_PB[Timeframe(spec.step_ns // 1_000_000_000)]
    for step in range(spec.steps):
        prices = []
        for _ in range(4):
            log_price += spec.drift / 4 + rng.gauss(0.0, spec.volatility / 2)
            prices.append(Decimal(str(round(math.exp(log_price), 2))).quantize(spec.tick))
        opened = spec.start_ns + step * spec.step_ns
        close = opened + spec.step_ns
        yield bus.Bar(
            venue=spec.venue, symbol=spec.symbol, timeframe=timeframe, open_time_ns=opened,
            open=str(prices[0]), high=str(max(prices)), low=str(min(prices)), close=str(prices[-1]),
            volume=str(spec.trade_size * 4), quote_volume=str(sum(prices) * spec.trade_size), trade_count=4,
        )  # fmt: skip
        yield _snapshot(spec, prices[-1], close, step + 1)
        yield _trade(spec, prices[-1], rng.random() < 0.5, close, f"b{step}")
