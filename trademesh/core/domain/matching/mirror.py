"""A recorded (or live) venue's book mirrored into the sim's matching engine.

A Mirror keeps one symbol's synthetic liquidity in a SimExchange
(trademesh/core/domain/matching/exchange.py) equal to the venue's book as its snapshots and
deltas give it, and replays the venue's trades as synthetic takers; our orders are the book's
user orders, matched by the sim's price-time engine. Both the backtest's replayed venue
(trademesh.core.backtest.market) and the paper venue (trademesh.venues.paper) run it. The book
model (how recorded levels, recorded trades and our orders share the engine's book, the queue
rules BACK and FRONT): docs/backtest-market.md, "The replayed venue", and docs/paper.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import Enum

from trademesh.core.domain.book import Level
from trademesh.core.domain.convert import SIDE_FROM_PB
from trademesh.core.domain.decimals import parse_decimal
from trademesh.core.domain.matching.engine import SYNTHETIC, Resting
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.offbook import OffBook
from trademesh.core.domain.model import Side, TimeInForce
from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Mirror", "QueueRule", "Units"]

_BUY, _SELL = Side.BUY, Side.SELL
_MAX_KNOWN = 65_536  # price or size strings kept per symbol
_FAST_CHARS = 38  # at most this many characters: never more significant digits than parse_decimal takes
_IOC = TimeInForce.IOC


class QueueRule(Enum):
    """Where a recorded decrease of a level comes off its synthetic queue (docs/backtest-market.md,
    "The book model")."""

    BACK = "back"  # the newest synthetic orders first: never moves our order forward (any venue)
    FRONT = "front"  # the oldest first: the sim's makers cancel their oldest order at a level


class Units:
    """A plain decimal string's ticks (or lots) by integer arithmetic: the value the exchange's
    scale gives, without a Decimal. A book's prices move every snapshot, so most strings are
    new; None for a string this does not take as it is (a sign, an exponent, too long, not a
    multiple of the step), which then goes the exchange's way and is refused with its reason."""

    __slots__ = ("mult", "places")

    def __init__(self, step: Decimal) -> None:
        _, digits, exponent = step.as_tuple()
        exponent = exponent if isinstance(exponent, int) else 0  # the exchange refused NaN already
        self.places = max(-exponent, 0)
        self.mult = int("".join(map(str, digits))) * 10 ** max(exponent, 0)

    def of(self, text: str) -> int | None:
        whole, dot, fraction = text.partition(".")
        places = self.places
        if places and len(fraction) == places and len(text) <= _FAST_CHARS:  # the step's places exactly
            number = whole + fraction
        else:
            digits = fraction.rstrip("0")
            if len(text) > _FAST_CHARS or len(digits) > places or (dot and not fraction):
                return None
            number = whole + digits.ljust(places, "0")
        if not (whole and number.isascii() and number.isdigit()):  # the fraction's zeros stripped are digits
            return None
        if self.mult == 1:  # a step of 1, 0.1, 0.01, ...: every such number is on it
            return int(number)
        units, rest = divmod(int(number), self.mult)
        return None if rest else units


class Mirror:
    """One symbol's synthetic liquidity kept equal to the recorded book, and its trades
    replayed (the module docstring's model)."""

    def __init__(
        self, exchange: SimExchange, symbol: str, *, defer: bool = True, queue: QueueRule = QueueRule.BACK
    ) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.book = exchange.book(symbol)
        self.front = queue is QueueRule.FRONT  # a decrease comes off the front of the queue
        # The levels none of our orders can meet, while nothing reads the book (offbook.py).
        self.off = OffBook(exchange, symbol, front=self.front)
        self.defer = defer
        # The last recorded size of each level, in lots: bids, asks (indexed by `side is _SELL`).
        self.recorded: tuple[dict[int, int], dict[int, int]] = ({}, {})
        # Each price and size string seen, in ticks and lots: a book's levels repeat them.
        self._ticks_of: dict[str, int] = {}
        self._lots_of: dict[str, int] = {}
        instrument = exchange.instrument(symbol)
        self._price_units = Units(instrument.tick_size)
        self._size_units = Units(instrument.lot_size)

    # ---- book events

    def settle(self) -> None:
        """The engine's book made whole (the levels kept off it put back): before it is read or
        our orders reach it."""
        if self.off.active:
            self.off.put_back()

    def best(self) -> tuple[int | None, int | None]:
        """The best bid and ask in ticks, without settling the book."""
        return self.off.best() if self.off.active else (self.book.best_bid(), self.book.best_ask())

    def snapshot(self, snapshot: md.BookSnapshot) -> None:
        self._snapshot(self._levels(snapshot.bids, "bids"), self._levels(snapshot.asks, "asks"))

    def delta(self, delta: md.BookDelta) -> None:
        self._delta(self._levels(delta.bids, "bids"), self._levels(delta.asks, "asks"))

    def snapshot_levels(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """snapshot() of levels as a venue's feed takes them: (price, size) strings."""
        self._snapshot(self._pairs(bids, "bids"), self._pairs(asks, "asks"))

    def delta_levels(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """delta() of levels as a venue's feed takes them: (price, size) strings."""
        self._delta(self._pairs(bids, "bids"), self._pairs(asks, "asks"))

    def snapshot_ticks(self, bids: dict[int, int], asks: dict[int, int]) -> None:
        """snapshot() of levels already in ticks and lots (price -> lots; the replayed venue's
        bar walk, which has its prices as ticks): no string made and read back."""
        self._snapshot(bids, asks)

    def walk_ticks(self, prices: list[int], depth: int, lots: int) -> bool:
        """A bar's walk through `prices` (ticks) at once, where it meets nothing of ours
        (OffBook.walk): True when done, the book as the last visit's snapshot left it (a bid of
        `depth` lots a tick below the last price, an ask of `depth` at it); False when it is
        left to the visits (nothing changed)."""
        if not (self.defer and self.off.walk(prices, depth, lots)):
            return False
        last = prices[-1]
        self.recorded = ({last - 1: depth}, {last: depth})
        return True

    def _snapshot(self, bids: dict[int, int], asks: dict[int, int]) -> None:
        if not (self.defer and self.off.snapshot(bids, asks)):
            self.settle()
            self._apply(((_BUY, bids), (_SELL, asks)), unlisted=True)
        self.recorded = (_listed(bids), _listed(asks))

    def _delta(self, bids: dict[int, int], asks: dict[int, int]) -> None:
        target = ((_BUY, bids), (_SELL, asks))
        if not (self.defer and self.off.delta(bids, asks)):
            self.settle()
            self._apply(target, unlisted=False)
        for recorded, levels in zip(self.recorded, (bids, asks), strict=True):
            for price, lots in levels.items():
                if lots:
                    recorded[price] = lots
                else:
                    recorded.pop(price, None)

    def _levels(self, levels: Iterable[md.BookLevel], name: str) -> dict[int, int]:
        out: dict[int, int] = {}
        ticks_of, lots_of, units = self._ticks_of, self._lots_of, self._price_units.of
        for i, level in enumerate(levels):
            text = level.price
            price = ticks_of.get(text)
            if price is None:
                price = units(text)  # a new plain price, mostly (a moving book's)
                if price is None or price <= 0 or len(ticks_of) >= _MAX_KNOWN:
                    price = self._ticks(text, name, i, "price")
                else:
                    ticks_of[text] = price
            text = level.size
            lots = lots_of.get(text)
            out[price] = self._lots(text, name, i, "size") if lots is None else lots
        return out

    def _pairs(self, levels: Iterable[Level], name: str) -> dict[int, int]:
        """_levels() of (price, size) string pairs, leniently (_lenient)."""
        out: dict[int, int] = {}
        ticks_of, lots_of, lenient = self._ticks_of, self._lots_of, self._lenient
        price_units, size_units = self._price_units.of, self._size_units.of
        for i, (price_text, size_text) in enumerate(levels):
            price = ticks_of.get(price_text) or price_units(price_text)  # a plain price on the grid, mostly
            if not price:
                price = lenient(price_text, name, i, "price")
                if price is None:
                    continue
            lots = lots_of.get(size_text)
            if lots is None:
                lots = size_units(size_text)
                if lots is None:
                    lots = lenient(size_text, name, i, "size")
            out[price] = lots or 0
        return out

    def _lenient(self, text: str, name: str, index: int | None, part: str) -> int | None:
        """A live venue's price or size string in ticks or lots, where its instrument rules may
        have changed under the data (a recorded book older than the venue's lot size): a size
        off the lot grid counts its whole lots; a price off the tick grid is None (no level of
        ours can be there). Malformed text still raises, naming the field."""
        instrument, is_price = self.exchange.instrument(self.symbol), part == "price"
        field = _field(name, index, part)
        value = _parse(field, text)
        if value < 0 or (is_price and value == 0):
            raise InvalidArgument.field(field, f"must be positive, got {text!r}")
        whole, rest = divmod(value, instrument.tick_size if is_price else instrument.lot_size)
        if rest and is_price:
            return None
        _remember(self._ticks_of if is_price else self._lots_of, text, int(whole))
        return int(whole)

    def _apply(self, target: _Target, *, unlisted: bool) -> None:
        """Decreases first (both sides), then increases, each side's levels in the event's order.
        `unlisted`: a snapshot, which also empties the levels it does not list. Decreases only
        reduce or cancel synthetic orders (no trade, no order id), so their order is free."""
        owned_at = self.book.owned_at
        # The levels that held synthetic orders: nothing but a level's own increase adds to it,
        # so one found empty here is empty at its increase (no need to read it again).
        held: set[tuple[Side, int]] = set()
        for side, levels in target:
            if unlisted:
                for price in self.book.prices(side):
                    if price not in levels:
                        self._decrease(owned_at(side, price, SYNTHETIC), None)
            for price, lots in levels.items():
                synthetic = owned_at(side, price, SYNTHETIC)
                if synthetic:
                    held.add((side, price))
                    self._decrease(synthetic, lots)
        for side, levels in target:
            for price, lots in levels.items():
                if lots:
                    present = _total(owned_at(side, price, SYNTHETIC)) if (side, price) in held else 0
                    if lots > present:
                        self._add(side, price, lots, lots - present, self.front and not unlisted)

    def _decrease(self, synthetic: list[Resting], keep: int | None) -> None:
        """Reduce a level's synthetic orders (front first), to `keep` lots (None: to none): the
        newest first by the BACK rule, the oldest first by the FRONT rule."""
        lots = _total(synthetic) - (keep or 0)
        for order in synthetic if self.front else reversed(synthetic):
            if lots <= 0:
                return
            take = min(lots, order.remaining)
            self.exchange.reduce_synthetic(self.symbol, order.order_id, take)
            lots -= take

    def _add(self, side: Side, price: int, target: int, missing: int, apart: bool) -> None:
        """Bring a level's synthetic total up to `target` by `missing` lots; while our orders on
        the other side reach the price, only the lots new since the last recorded size trade
        with them, and the rest waits (is not mirrored) until they no longer reach it."""
        if self.book.would_cross(side, price):  # else no synthetic liquidity reaches it either
            self._clear_synthetic((_SELL if side is _BUY else _BUY), price, inclusive=True)
            if self.book.would_cross(side, price):
                new = min(missing, target - self.recorded[side is _SELL].get(price, 0))
                if new > 0:
                    self.exchange.submit_synthetic(self.symbol, side, price, new)
                    missing -= new
                if self.book.would_cross(side, price):
                    return
        if missing > 0:
            self._join_back(side, price, missing, apart)

    def _join_back(self, side: Side, price: int, lots: int, apart: bool) -> None:
        """Add synthetic lots at the back of a level. `apart` (a delta's increase by the FRONT
        rule): an order of their own, as the sim's maker that made the recorded increase placed
        one order, and a taker sweeping the level meets each maker order apart (one fill each, as
        live). Else (a snapshot's increase: how many orders made it is not known), when the last
        order there is synthetic, they join it (re-queued at the back, where it already was), so
        a level holds one synthetic order per stretch between ours."""
        last = None if apart else self.book.last_at(side, price)
        if last is not None and last.owner == SYNTHETIC:
            lots += last.remaining
            self.exchange.cancel_synthetic(self.symbol, last.order_id)
        self.exchange.submit_synthetic(self.symbol, side, price, lots)

    # ---- trades

    def trade(self, trade: md.Trade) -> bool:
        """Replay a recorded trade; True when it went to the engine, the stops its trade
        triggers held back (ReplayedMarket releases them once its operation's trades are in)."""
        return self._trade_exact(trade.price, trade.size, SIDE_FROM_PB.get(trade.taker_side))

    def trade_text(self, price_text: str, size_text: str, taker: Side | None) -> bool:
        """trade() of a trade as a venue's feed takes it (None: the taker's side is not known),
        leniently (_lenient: one off the tick grid is left out)."""
        price = self._ticks_of.get(price_text) or self._lenient(price_text, "trade", None, "price")
        lots = self._lots_of.get(size_text)
        if lots is None:
            lots = self._lenient(size_text, "trade", None, "size")
        if not (price and lots):
            return False
        return self._trade(price, lots, taker)

    def trade_ticks(self, price: int, lots: int, taker: Side | None) -> bool:
        """trade_text() of a trade already in ticks and lots (no trade for none of either)."""
        if not (price and lots):
            return False
        return self._trade(price, lots, taker)

    def _trade_exact(self, price_text: str, size_text: str, taker: Side | None) -> bool:
        price = self._ticks_of.get(price_text) or self._ticks(price_text, "trade", None, "price")
        lots = self._lots_of.get(size_text)
        if lots is None:
            lots = self._lots(size_text, "trade", None, "size")
        if lots == 0:
            return False
        return self._trade(price, lots, taker)

    def _trade(self, price: int, lots: int, taker: Side | None) -> bool:
        if taker is not None and self.off.active and self.off.trade(taker, price, lots):
            return False
        self.settle()
        taker = taker or self._inferred_taker(price)
        if taker is None:
            return False
        self._clear_synthetic((_SELL if taker is _BUY else _BUY), price, inclusive=False)
        self.exchange.submit_synthetic(self.symbol, taker, price, lots, _IOC, stops=False)
        return True

    def _inferred_taker(self, price: int) -> Side | None:
        ask, bid = self.book.best_ask(), self.book.best_bid()
        if ask is not None and ask <= price:
            return _BUY
        if bid is not None and bid >= price:
            return _SELL
        return None

    # ---- internals

    def _clear_synthetic(self, side: Side, price: int, *, inclusive: bool) -> None:
        """Cancel the synthetic orders on `side` at prices better than `price` (and at it when
        inclusive): a taker limited at `price` would reach those first."""
        sign = 1 if side is _BUY else -1
        best = self.book.best_bid() if side is _BUY else self.book.best_ask()
        if best is None or (best - price) * sign < (0 if inclusive else 1):
            return
        for level_price, _ in self.book.depth(side):
            if (level_price - price) * sign < (0 if inclusive else 1):
                break
            for order in self.book.owned_at(side, level_price, SYNTHETIC):
                self.exchange.cancel_synthetic(self.symbol, order.order_id)

    def _ticks(self, text: str, name: str, index: int | None, part: str) -> int:
        """A price string not seen before: by integer arithmetic when it is plain, else the
        exchange's way, whose errors name the field (made only here: `bids[3].price`)."""
        ticks = self._price_units.of(text)
        if ticks is None or ticks <= 0:
            field = _field(name, index, part)
            try:
                ticks = self.exchange.to_ticks(self.symbol, _parse(field, text))
            except InvalidArgument as exc:
                raise _renamed(exc, field) from None
            if ticks <= 0:
                raise InvalidArgument.field(field, f"must be positive, got {text!r}")
        _remember(self._ticks_of, text, ticks)
        return ticks

    def _lots(self, text: str, name: str, index: int | None, part: str) -> int:
        """A size string not seen before (as _ticks; zero lots is a level removed)."""
        lots = self._size_units.of(text)
        if lots is None:
            field = _field(name, index, part)
            try:
                lots = self.exchange.to_lots(self.symbol, _parse(field, text))
            except InvalidArgument as exc:
                raise _renamed(exc, field) from None
            if lots < 0:
                raise InvalidArgument.field(field, f"must not be negative, got {text!r}")
        _remember(self._lots_of, text, lots)
        return lots


# Each side's levels (price ticks -> lots), bids first: tuples, not a dict keyed by Side (an
# Enum's hash is a Python call, and a snapshot comes with every recorded book change).
_Target = tuple[tuple[Side, dict[int, int]], tuple[Side, dict[int, int]]]


def _listed(levels: dict[int, int]) -> dict[int, int]:
    """The levels a book event recorded (a size of 0 removed the level)."""
    if all(levels.values()):  # a snapshot's, mostly: nothing removed
        return levels.copy()
    return {price: lots for price, lots in levels.items() if lots}


def _field(name: str, index: int | None, part: str) -> str:
    return f"{name}.{part}" if index is None else f"{name}[{index}].{part}"


def _total(orders: list[Resting]) -> int:
    return sum(o.remaining for o in orders)


def _remember(known: dict[str, int], text: str, value: int) -> None:
    """Kept for the next time the string comes; the cache is emptied past _MAX_KNOWN strings."""
    if len(known) >= _MAX_KNOWN:
        known.clear()
    known[text] = value


def _renamed(exc: InvalidArgument, field: str) -> InvalidArgument:
    """The same violations, on the recorded event's field (the symbol's scale names its own)."""
    return InvalidArgument([FieldViolation(field, v.description) for v in exc.violations])


def _parse(field: str, text: str) -> Decimal:
    value = parse_decimal(field, text)
    assert value is not None  # required: parse_decimal raises on ""
    return value
