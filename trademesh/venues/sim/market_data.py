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

from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import Side, TimeInForce
from trademesh.venues.sim.config import SimConfig, SymbolConfig

__all__ = ["SyntheticMarket", "SyntheticSymbol"]

# The share of maker actions that add liquidity; the rest cancel. Takers also remove.
_ADD_SHARE = 0.6
# Synthetic orders a level holds at most; adding one more first cancels its oldest, so the
# book (and the memory and garbage collection it costs) stays bounded however long it runs.
_MAX_ORDERS_PER_LEVEL = 8
_GTC, _IOC = TimeInForce.GTC, TimeInForce.IOC


class _Quotes:
    """One side's synthetic orders still thought resting: their ids by price, oldest first; the
    dict's order (prices by when they were first quoted) is part of the seed's tape."""

    __slots__ = ("levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = side.sign
        self.levels: dict[int, list[int]] = {}


class SyntheticSymbol:
    """The synthetic makers and takers of one symbol.

    Per action on the hot path (hundreds of thousands for a few minutes of history): the
    per-symbol constants, the book and the step's anchor are attributes, each side's orders a
    _Quotes reached without hashing a Side.
    """

    def __init__(self, exchange: SimExchange, config: SymbolConfig, seed: int, step_s: float) -> None:
        self.exchange = exchange
        self.config = config
        self.symbol = config.symbol
        self.rng = random.Random(seed ^ zlib.crc32(config.symbol.encode()))
        self.mid = float(exchange.to_ticks(config.symbol, config.start_price))
        self._book = exchange.book(config.symbol)  # the market's one book, for the exchange's life
        self._submit = exchange.submit_synthetic
        self._cancel = exchange.cancel_synthetic
        self._spacing = config.level_spacing_ticks
        self._depth = config.book_depth_levels
        self._maker_rate = 1.0 / config.maker_size_lots
        self._taker_rate = 1.0 / config.taker_size_lots
        self._step_sigma = config.volatility_per_sqrt_s * math.sqrt(step_s)
        self._step_drift = config.drift_per_s * step_s
        self._makers_per_step = config.book_updates_per_s * step_s
        self._takers_per_step = config.trades_per_s * step_s
        self._maker_credit = 0.0
        self._taker_credit = 0.0
        self._bids = _Quotes(Side.BUY)
        self._asks = _Quotes(Side.SELL)
        # The level grid's centre in ticks: the mid rounded to the spacing, set when the mid moves.
        self._anchor = self._anchor_of(self.mid)
        self._scanned_anchor = 0

    def prime(self) -> None:
        """Fill every level of both sides once, so the book has depth from the start."""
        for level in range(1, self._depth + 1):
            self._add(self._bids, level)
            self._add(self._asks, level)

    def step(self) -> None:
        self.mid *= math.exp(self._step_drift + self._step_sigma * self.rng.gauss(0.0, 1.0))
        self._anchor = self._anchor_of(self.mid)
        self._cancel_stale()
        self._replenish()
        credit = self._maker_credit + self._makers_per_step
        while credit >= 1.0:
            credit -= 1.0
            self._maker_action()
        self._maker_credit = credit
        credit = self._taker_credit + self._takers_per_step
        while credit >= 1.0:
            credit -= 1.0
            self._taker_action()
        self._taker_credit = credit

    def _anchor_of(self, mid: float) -> int:
        return max(1, round(mid / self._spacing)) * self._spacing

    def _price(self, quotes: _Quotes, level: int) -> int:
        return self._anchor - quotes.sign * level * self._spacing

    def _maker_action(self) -> None:
        rng = self.rng
        quotes = self._bids if rng.random() < 0.5 else self._asks
        if rng.random() < _ADD_SHARE or not quotes.levels:
            # Levels near the mid are refreshed more often than far ones.
            self._add(quotes, 1 + int(self._depth * rng.random() ** 2))
        else:
            self._cancel_oldest(quotes)

    def _add(self, quotes: _Quotes, level: int) -> None:
        price = self._anchor - quotes.sign * level * self._spacing
        if price <= 0:
            return
        lots = 1 + int(self.rng.expovariate(self._maker_rate))
        levels = quotes.levels
        ids = levels.setdefault(price, [])
        if len(ids) >= _MAX_ORDERS_PER_LEVEL:
            self._cancel_first(ids)
        order_id = self._submit(self.symbol, quotes.side, price, lots, _GTC)
        if self._book.resting(order_id) is not None:
            ids.append(order_id)
        elif not ids:
            del levels[price]

    def _cancel_oldest(self, quotes: _Quotes) -> None:
        levels = quotes.levels
        price = self.rng.choice(list(levels))
        ids = levels[price]
        self._cancel_first(ids)
        if not ids:
            del levels[price]

    def _cancel_first(self, ids: list[int]) -> None:
        """Cancel the oldest of these orders that still rests; drop the filled ones before it."""
        cancel, symbol = self._cancel, self.symbol
        while ids and cancel(symbol, ids.pop(0)) == 0:
            pass

    def _cancel_stale(self) -> None:
        """Take back synthetic quotes that the mid has left behind or that drifted out of range."""
        anchor = self._anchor
        if anchor == self._scanned_anchor:
            return  # quotes are only placed around the anchor: none went stale since the last scan
        self._scanned_anchor = anchor
        reach = self._depth * self._spacing
        # Quotes belong 1 to depth levels from the anchor (int ticks): buys below it, sells above.
        for quotes, low, high in (
            (self._bids, anchor - reach, anchor - 1),
            (self._asks, anchor + 1, anchor + reach),
        ):
            levels = quotes.levels
            for price in [p for p in levels if not low <= p <= high]:
                for order_id in levels.pop(price):
                    self._cancel(self.symbol, order_id)

    def _replenish(self) -> None:
        """A side quoted on fewer than half its levels gets its innermost empty levels back, until
        half are quoted.

        When the mid moves, the levels it passes are taken back on one side; random adds alone
        refill them too slowly at high volatility, and a taker could then empty the side. One
        level back a step was enough at 10 ms steps, not at 20 ms and longer.
        """
        wanted = self._depth
        for quotes in (self._bids, self._asks):
            levels = quotes.levels
            if len(levels) * 2 >= wanted:
                continue  # the usual case: half the levels are quoted or more
            for level in range(1, wanted + 1):
                if len(levels) * 2 >= wanted:
                    break
                if self._price(quotes, level) not in levels:
                    self._add(quotes, level)

    def _taker_action(self) -> None:
        """An IOC order that may trade as far as the synthetic book reaches and no further:
        like a real venue's market-order protection, a large taker on a thin book stops at the
        edge of the quoted range instead of sweeping into orders resting far from the market."""
        rng = self.rng
        side, makers = (Side.BUY, self._asks) if rng.random() < 0.5 else (Side.SELL, self._bids)
        lots = 1 + int(rng.expovariate(self._taker_rate))
        limit = max(1, self._price(makers, self._depth))
        self._submit(self.symbol, side, limit, lots, _IOC)


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
