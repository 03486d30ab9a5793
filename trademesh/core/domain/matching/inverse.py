"""The sim's inverse perpetuals: BASE/QUOTE:BASE (BTC/USD:BTC), sized in contracts of a face
value in the quote asset (config: contract_value, USD), settled in the coin (BTC).

They trade in the same books and matching engine as the linear perpetuals (funding.py), with
everything that leaves or enters the account in the coin, by the arithmetic of
trademesh/core/domain/inverse.py (each division by a price rounded half-even to 1e-12 of the coin,
once, where it is made):
- a fill of n contracts at p is worth the coin n x cv / p; its fee is that worth x the fee rate
  (`coin_fee`), an order locks its worst-case fee in the coin (a limit order its worth at its
  limit price x the dearer rate; a fill below a buy's limit costs a little more, taken from the
  free balance as a linear perpetual's losses are);
- the position books as the ledger books it (docs/ledger-derivatives.md, "Inverse perpetuals"): its face
  (contracts x cv, signed) and its cost, the coin the face was worth at entry; a reduce of face r
  releases the cost's share c = C x r / |F| (rounded to 1e-12 unless it closes the position) and
  realises c - r / p for a long, c + r / p for a short (cost < 0): the same amounts the ledger
  posts for the same fills, so a backtest's venue and its books agree to the coin step;
- its entry price is the harmonic mean of its fills' prices weighted by face: |F| over the coin the
  held face was worth, kept unrounded for it (the rounded cost would show 65004.9999987 for one
  fill at 65005);
- funding at a funding time pays the coin face x rate / mark (a long pays when the rate is
  positive).
"""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.cost_share import released_cost
from trademesh.core.domain.inverse import coin_fee, coin_round, coin_value
from trademesh.core.domain.matching.accounts import EXACT, exact_quotient
from trademesh.core.domain.model import Instrument, Position

__all__ = [
    "InversePosition",
    "contract_fee",
    "contract_worth",
    "funding_amount",
    "harmonic_mean",
    "is_inverse_perpetual",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)


def is_inverse_perpetual(instrument: Instrument) -> bool:
    """Sized in a face value of the quote asset and settled in the base coin."""
    return instrument.inverse and instrument.settle_asset == instrument.base_asset


def contract_worth(contract_value: Decimal, price: Decimal, size: Decimal) -> Decimal:
    """What `size` contracts are worth in the coin at `price` (to 1e-12)."""
    return coin_value(size * contract_value, price)


def contract_fee(contract_value: Decimal, price: Decimal, size: Decimal, rate: Decimal) -> Decimal:
    """The fee at `rate` of a fill of `size` contracts at `price`, in the coin (to 1e-12)."""
    return coin_fee(size * contract_value, price, rate)


def funding_amount(contract_value: Decimal, size: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """What a position of `size` contracts (signed) receives at a funding time, in the coin:
    -(face x rate / mark), to 1e-12."""
    return -coin_round(EXACT.divide(size * contract_value * rate, mark))


class InversePosition:
    """One inverse perpetual's position: size in contracts (signed), cost in the coin (signed
    like the face: < 0 for a short), the PnL realised in the coin."""

    __slots__ = ("contract_value", "cost", "held_coin", "realized", "size")

    def __init__(self, contract_value: Decimal) -> None:
        self.contract_value = contract_value
        self.size = _ZERO
        self.cost = _ZERO
        self.realized = _ZERO
        # The coin the held face was worth at its fills, unrounded (at EXACT's 200 digits): the
        # entry price from it is the harmonic mean itself, where the rounded cost would show
        # 65004.9999987 for one fill at 65005.
        self.held_coin = _ZERO

    def apply(self, signed_size: Decimal, price: Decimal, multiplier: Decimal = _ONE) -> None:
        """One fill of `signed_size` contracts at `price` (`multiplier`, a linear contract's size,
        is not an inverse one's: its face value is its own)."""
        held = self.size * self.contract_value
        if self.size == 0 or (self.size > 0) == (signed_size > 0):
            self._open(signed_size, price)
            return
        reduced = min(abs(signed_size), abs(self.size))
        face = reduced * self.contract_value
        released = self.cost if reduced == abs(self.size) else released_cost(self.cost, face, abs(held))
        worth = coin_value(face, price)
        self.realized += released - worth if held > 0 else released + worth
        self.cost -= released
        self.held_coin -= self.held_coin * reduced / abs(self.size)
        self.size += reduced if held < 0 else -reduced
        rest = abs(signed_size) - reduced
        if rest:
            self._open(rest if signed_size > 0 else -rest, price)

    def _open(self, signed_size: Decimal, price: Decimal) -> None:
        face = abs(signed_size) * self.contract_value
        worth = coin_value(face, price)
        self.size += signed_size
        self.cost += worth if signed_size > 0 else -worth
        self.held_coin += EXACT.divide(face, price)

    def entry(self) -> Decimal:
        return harmonic_mean(abs(self.size) * self.contract_value, self.held_coin)

    def snapshot(self, symbol: str) -> Position:
        return Position(
            symbol=symbol,
            size=self.size,
            entry_price=None if self.size == 0 else self.entry(),
            realized_pnl=self.realized,
        )


def harmonic_mean(face: Decimal, coin: Decimal) -> Decimal:
    """The price of `face` (quote asset) worth `coin` (the sum of each fill's face / price): the
    harmonic mean of the fills' prices by face, to 1e-18, without trailing zeros."""
    value = exact_quotient(face, coin)
    if value == value.to_integral_value():
        return value.quantize(_ONE, context=EXACT)
    return value.normalize(EXACT)
