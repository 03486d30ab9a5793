"""The sim's synthetic market: seeded makers and takers trading through the real matching engine.

Per symbol, a mid price follows a geometric random walk; synthetic makers add and
cancel orders on a grid of levels around it, synthetic takers send market orders.
Everything goes through SimExchange, so user orders rest in the same books and
fill against this flow (and against each other) in price-time priority.

The market moves in fixed steps of tick_interval_ms, each with a fixed number of
actions, so a seed always produces the same tape whatever the machine's speed.
"""

from __future__ import annotations

import math
import random
import zlib

from core.foundations.matching.exchange import SimExchange
from core.foundations.model import Side, TimeInForce
from venues.sim.config import SimConfig, SymbolConfig

__all__ = ["SyntheticMarket", "SyntheticSymbol"]

# The share of maker actions that add liquidity; the rest cancel. Takers also remove.
_ADD_SHARE = 0.6
# Synthetic orders a level holds at most; adding one more first cancels its oldest, so the
# book (and the memory and garbage collection it costs) stays bounded however long it runs.
_MAX_ORDERS_PER_LEVEL = 8


class SyntheticSymbol:
    """The synthetic makers and takers of one symbol."""

    def __init__(self, exchange: SimExchange, config: SymbolConfig, seed: int, step_s: float) -> None:
        self.exchange = exchange
        self.config = config
        self.symbol = config.symbol
        self.rng = random.Random(seed ^ zlib.crc32(config.symbol.encode()))
        self.mid = float(exchange.to_ticks(config.symbol, config.start_price))
        self._step_sigma = config.volatility_per_sqrt_s * math.sqrt(step_s)
        self._step_drift = config.drift_per_s * step_s
        self._makers_per_step = config.book_updates_per_s * step_s
        self._takers_per_step = config.trades_per_s * step_s
        self._maker_credit = 0.0
        self._taker_credit = 0.0
        self._orders: dict[Side, dict[int, list[int]]] = {Side.BUY: {}, Side.SELL: {}}
        self._scanned_anchor = 0

    def prime(self) -> None:
        """Fill every level of both sides once, so the book has depth from the start."""
        for level in range(1, self.config.book_depth_levels + 1):
            for side in (Side.BUY, Side.SELL):
                self._add(side, level)

    def step(self) -> None:
        self.mid *= math.exp(self._step_drift + self._step_sigma * self.rng.gauss(0.0, 1.0))
        self._cancel_stale()
        self._replenish()
        self._maker_credit += self._makers_per_step
        while self._maker_credit >= 1.0:
            self._maker_credit -= 1.0
            self._maker_action()
        self._taker_credit += self._takers_per_step
        while self._taker_credit >= 1.0:
            self._taker_credit -= 1.0
            self._taker_action()

    def _anchor(self) -> int:
        spacing = self.config.level_spacing_ticks
        return max(1, round(self.mid / spacing)) * spacing

    def _price(self, side: Side, level: int) -> int:
        return self._anchor() - side.sign * level * self.config.level_spacing_ticks

    def _maker_action(self) -> None:
        side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
        if self.rng.random() < _ADD_SHARE or not self._orders[side]:
            # Levels near the mid are refreshed more often than far ones.
            level = 1 + int(self.config.book_depth_levels * self.rng.random() ** 2)
            self._add(side, level)
        else:
            self._cancel_oldest(side)

    def _add(self, side: Side, level: int) -> None:
        price = self._price(side, level)
        if price <= 0:
            return
        lots = 1 + int(self.rng.expovariate(1.0 / self.config.maker_size_lots))
        ids = self._orders[side].setdefault(price, [])
        if len(ids) >= _MAX_ORDERS_PER_LEVEL:
            self._cancel_first(ids)
        order_id = self.exchange.submit_synthetic(self.symbol, side, price, lots, TimeInForce.GTC)
        if self.exchange.book(self.symbol).resting(order_id) is not None:
            ids.append(order_id)
        elif not ids:
            del self._orders[side][price]

    def _cancel_oldest(self, side: Side) -> None:
        levels = self._orders[side]
        price = self.rng.choice(list(levels))
        ids = levels[price]
        self._cancel_first(ids)
        if not ids:
            del levels[price]

    def _cancel_first(self, ids: list[int]) -> None:
        """Cancel the oldest of these orders that still rests; drop the filled ones before it."""
        while ids and self.exchange.cancel_synthetic(self.symbol, ids.pop(0)) == 0:
            pass

    def _cancel_stale(self) -> None:
        """Take back synthetic quotes that the mid has left behind or that drifted out of range."""
        anchor, spacing = self._anchor(), self.config.level_spacing_ticks
        if anchor == self._scanned_anchor:
            return  # quotes are only placed around the anchor: none went stale since the last scan
        self._scanned_anchor = anchor
        reach = self.config.book_depth_levels * spacing
        for side, sign in ((Side.BUY, 1), (Side.SELL, -1)):
            levels = self._orders[side]
            for price in [p for p in levels if not 0 < sign * (anchor - p) <= reach]:
                for order_id in levels.pop(price):
                    self.exchange.cancel_synthetic(self.symbol, order_id)

    def _replenish(self) -> None:
        """A side quoted on fewer than half its levels gets its innermost empty levels back, until
        half are quoted.

        When the mid moves, the levels it passes are taken back on one side; random adds alone
        refill them too slowly at high volatility, and a taker could then empty the side. One
        level back a step was enough at 10 ms steps, not at 20 ms and longer.
        """
        wanted = self.config.book_depth_levels
        for side in (Side.BUY, Side.SELL):
            levels = self._orders[side]
            for level in range(1, wanted + 1):
                if len(levels) * 2 >= wanted:
                    break
                if self._price(side, level) not in levels:
                    self._add(side, level)

    def _taker_action(self) -> None:
        """An IOC order that may trade as far as the synthetic book reaches and no further:
        like a real venue's market-order protection, a large taker on a thin book stops at the
        edge of the quoted range instead of sweeping into orders resting far from the market."""
        side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
        lots = 1 + int(self.rng.expovariate(1.0 / self.config.taker_size_lots))
        limit = max(1, self._price(side.opposite, self.config.book_depth_levels))
        self.exchange.submit_synthetic(self.symbol, side, limit, lots, TimeInForce.IOC)


class SyntheticMarket:
    """Every symbol's synthetic flow, advanced in fixed steps."""

    def __init__(self, exchange: SimExchange, config: SimConfig) -> None:
        self.step_s = config.tick_interval_ms / 1000
        self.symbols = [SyntheticSymbol(exchange, item, config.seed, self.step_s) for item in config.symbols]

    def prime(self) -> None:
        for symbol in self.symbols:
            symbol.prime()

    def step(self) -> None:
        for symbol in self.symbols:
            symbol.step()
