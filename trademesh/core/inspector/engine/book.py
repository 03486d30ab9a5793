"""The core's book: positions, working orders and marks, and the worst-case projections the
limits are checked on (every open entry filled)."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.instruments import InstrumentFacts, inverse_value
from trademesh.core.inspector.engine.positions import Key, PositionBook
from trademesh.core.inspector.engine.working import WorkingOrders

__all__ = ["Exposure", "RiskBook"]

ZERO = Decimal(0)
Exposure = tuple[Decimal, Decimal]  # (gross, net)


class RiskBook:
    def __init__(self) -> None:
        self.positions = PositionBook()
        self.orders = WorkingOrders()
        self.marks: dict[Key, Decimal] = {}
        # Positions found at the venues at the first start: (size, entry price), never ours.
        self.legacy: dict[Key, tuple[Decimal, Decimal | None]] = {}
        # Venues whose positions the reconciliation found diverged from ours: venue -> why.
        self.venues_down: dict[str, str] = {}
        # Markets their venue delisted (md.{<venue>}.instruments, a journaled input): key -> why.
        self.delisted: dict[Key, str] = {}
        # The venues' instrument facts (the core's `instruments`, the same dict): they say
        # which markets are inverse contracts, valued by their face value, not size x price.
        self.facts: dict[Key, InstrumentFacts] = {}

    def inverse(self, key: Key) -> Decimal | None:
        """The face value a unit of an inverse contract's size; None for any other market."""
        return inverse_value(self.facts.get(key))

    def multiplier(self, key: Key) -> Decimal:
        """A linear contract's base units a unit of size (its contract value: OKX's BTC-USDT swap
        0.01 BTC); 1 for spot, an inverse contract or a market whose facts are not known."""
        facts = self.facts.get(key)
        return facts.contract_value if facts is not None and not facts.inverse else Decimal(1)

    def value(self, key: Key, size: Decimal, price: Decimal) -> Decimal:
        """What `size` of the market is worth in the quote asset at `price` (signed as size): an
        inverse contract's face value whatever the price; a linear one's size x its contract
        value x price."""
        face = self.inverse(key)
        return size * self.multiplier(key) * price if face is None else size * face

    def keys(self) -> set[Key]:
        keys = {k for k, p in self.positions.positions.items() if p.size != 0}
        return keys | {w.key for w in self.orders.entries()}

    def venue_position(self, key: Key) -> Decimal:
        """The position as the venue holds it by its word: the fills heard, and what its answers
        say our entries filled beyond them (their fills on their way through ingest and the bus).
        Protection is sized by it; the position, PnL, fees and the limits stay the fills'."""
        return self.positions.size(key) + self.orders.unheard(key)

    def lots(self, key: Key, size: Decimal) -> Decimal:
        """`size` (signed) in whole lots of the market, toward zero: what an order can close of
        it. The rest is dust (a spot fee paid in the base leaves a holding off the lot): it is
        held, valued and reconciled, but no order can sell it (docs/inspector.md, "Dust").
        Without the market's facts: `size` itself."""
        facts = self.facts.get(key)
        if facts is None:
            return size
        whole = facts.on_lot(abs(size))
        return whole if size >= 0 else -whole

    def held(self, key: Key) -> Decimal:
        """The position by the venue's word in whole lots: what exits, flattening and the
        protective pair are sized to."""
        return self.lots(key, self.venue_position(key))

    def worst(self, key: Key, side: Side | None = None, size: Decimal = ZERO) -> tuple[Decimal, Decimal]:
        """The most long and the most short the position can get, signed: every open entry of
        one side filled (plus `size` more of `side`), after the reduce-only orders of that side
        (a stop, an exit) took the position as far as flat — they cannot take it past."""
        pos = self.positions.size(key)
        more_buy = self.orders.pending_entry(key, Side.BUY) + (size if side is Side.BUY else ZERO)
        more_sell = self.orders.pending_entry(key, Side.SELL) + (size if side is Side.SELL else ZERO)
        lowest = max(pos - self.orders.pending_reduce(key, Side.SELL), ZERO) if pos > 0 else pos
        highest = min(pos + self.orders.pending_reduce(key, Side.BUY), ZERO) if pos < 0 else pos
        return highest + more_buy, lowest - more_sell

    def worst_size(self, key: Key, side: Side | None = None, size: Decimal = ZERO) -> Decimal:
        long, short = self.worst(key, side, size)
        return max(abs(long), abs(short))

    def exposure(
        self, extra: tuple[Key, Side, Decimal, Decimal] | None = None, venue: str | None = None
    ) -> Exposure:
        """Worst-case (gross, net) exposure at the marks, with an `extra` order (key, side, size,
        price; its price values its key when that has no mark); of one `venue`'s keys only when
        given (an account's book: docs/accounts.md)."""
        keys = self.keys() | ({extra[0]} if extra is not None else set())
        if venue is not None:
            keys = {key for key in keys if key[0] == venue}
        gross = up = down = ZERO
        for key in sorted(keys):
            side, size = (extra[1], extra[2]) if extra is not None and extra[0] == key else (None, ZERO)
            mark = self.marks.get(key, extra[3] if extra is not None and extra[0] == key else ZERO)
            long, short = self.worst(key, side, size)
            gross += self.value(key, max(abs(long), abs(short)), mark)
            up += self.value(key, long, mark)
            down += self.value(key, short, mark)
        return gross, max(abs(up), abs(down))

    def strategy_used(self, strategy: str) -> Decimal:
        """A strategy's capital in use: its share of positions and its open entries, at the marks."""
        used = sum(
            (
                self.value(key, abs(size), self.marks.get(key, ZERO))
                for key, size in self.positions.strategy_positions(strategy).items()
            ),
            ZERO,
        )
        for w in self.orders.entries():
            if w.order.strategy_id == strategy:
                used += self.value(w.key, w.remaining, self.marks.get(w.key, w.order.price or ZERO))
        return used

    def equity(self, start: Decimal, fees: Decimal) -> Decimal:
        unrealized = sum(
            (
                p.unrealized(self.marks[k], self.inverse(k), self.multiplier(k))
                for k, p in self.positions.positions.items()
                if k in self.marks and p.size
            ),
            ZERO,
        )
        realized = sum((p.realized for p in self.positions.positions.values()), ZERO)
        return start + realized - fees + unrealized
