"""What the core knows of a venue's instruments: the facts a protective order must meet to be
accepted (its size on the lot grid, at least the minimum size and notional), and the kind (a
spot market is never sold short: checks.check_spot). Given to the core as data (a journaled
input: the shell reads them from the venue's ListInstruments), never fetched by it. Without
facts for a market the core sizes as before (anything above zero) and knows no kind."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from trademesh.core.domain.inverse import coin_value
from trademesh.core.domain.model import InstrumentKind

__all__ = ["InstrumentFacts", "Minimum", "inverse_value"]

ZERO = Decimal(0)


@dataclass(frozen=True)
class Minimum:
    """Why an order cannot be placed: below the venue's minimum size or notional."""

    size: Decimal
    notional: Decimal
    min_size: Decimal
    min_notional: Decimal

    def values(self) -> tuple[tuple[str, str], ...]:
        return (
            ("min_size", str(self.min_size)),
            ("min_notional", str(self.min_notional)),
            ("notional", str(self.notional)),
        )


@dataclass(frozen=True)
class InstrumentFacts:
    tick_size: Decimal = ZERO
    lot_size: Decimal = ZERO
    min_size: Decimal = ZERO
    min_notional: Decimal = ZERO
    # What one unit of size is worth; an inverse contract's is in the quote asset, whatever
    # the price (trademesh.core.domain.model.Instrument.notional).
    contract_value: Decimal = Decimal(1)
    inverse: bool = False
    kind: InstrumentKind | None = None  # None: not known

    @property
    def spot(self) -> bool:
        return self.kind is InstrumentKind.SPOT

    def notional(self, size: Decimal, price: Decimal) -> Decimal:
        value = size * self.contract_value
        return value if self.inverse else value * price

    def coin_notional(self, size: Decimal, price: Decimal) -> Decimal:
        """An inverse contract's `size` in the coin it settles in, at `price` (1e-12)."""
        return coin_value(size * self.contract_value, price)

    def on_lot(self, size: Decimal) -> Decimal:
        """`size` rounded down to the lot grid (never more than asked)."""
        if self.lot_size <= 0:
            return size
        return (size / self.lot_size).to_integral_value(ROUND_FLOOR) * self.lot_size

    def below_minimum(self, size: Decimal, price: Decimal) -> Minimum | None:
        """None when an order of `size` at `price` meets the minimums, else what it misses."""
        notional = self.notional(size, price)
        if size > 0 and size >= self.min_size and notional >= self.min_notional:
            return None
        return Minimum(size, notional, self.min_size, self.min_notional)


def inverse_value(facts: InstrumentFacts | None) -> Decimal | None:
    """An inverse contract's face value a unit of size (quote asset); None for any other market
    (valued as size x price, as before) or one whose facts are not known yet."""
    return facts.contract_value if facts is not None and facts.inverse else None
