"""The cost a reduction releases from an average-cost position: one rounding rule for the
matching engine (sim, paper, backtest) and the ledger, so a venue's realised PnL and the books'
agree to the last digit.

A position holds its cost: what its size was worth at its fills (in the money asset). Reducing
`part` of `whole` releases cost x part / whole, rounded half-even to 1e-12 of the asset (or to the
finest step of the three amounts when finer); closing it whole releases all of it. The PnL is what
the reduction is worth at the fill less the cost it released (a long), the reverse for a short.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

__all__ = ["MONEY_STEP", "quantum_of", "released_cost"]

MONEY_STEP = Decimal("1e-12")
_EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


def quantum_of(*values: Decimal) -> Decimal:
    """The finest decimal step among `values` (at most 1): 0.25 and 3 give 0.01. Trailing zeros
    do not count, so 0.50 and 0.5 (as stored, as computed) give the same step."""
    exponents = [_exponent(value) for value in values if value]
    return Decimal(1).scaleb(min([0, *exponents]))


def released_cost(cost: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """The cost `part` of a position of size `whole` releases (0 < part <= whole; cost signed as
    held): all of it when part is whole, else its share rounded half-even to MONEY_STEP, or to the
    finest step of cost, part and whole when finer."""
    if part == whole:
        return cost
    value = _EXACT.divide(_EXACT.multiply(cost, part), whole)
    step = min(MONEY_STEP, quantum_of(cost, part, whole))
    return value.quantize(step, rounding=ROUND_HALF_EVEN, context=_EXACT)


def _exponent(value: Decimal) -> int:
    exponent = value.normalize(_EXACT).as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0
