"""A perpetual position's initial margin after a fill, as the venues keep it (docs/ledger.md,
"Margin" and "Margin and liquidation"): a position holds its notional at entry / the leverage in
force (tradeflow.v1.Position.initial_margin); a fill that adds to it adds the notional it opens /
leverage, one that reduces it releases the share of the margin it closes, one that closes it
releases all, one that flips it holds the new side's notional / leverage. A leverage set while
the position is open re-margins it at once at the venue (|cost| / new leverage); the ledger,
which sees the leverage with the next fill, re-margins it then.

Quotients are exact where they end, else rounded half-even to MARGIN_STEP (1e-18), as the sim's
matching engine keeps them (trademesh.core.domain.matching): a margin is a hold, not money that
moves, kept as finely as the venue keeps it so that the books' margin is the venue's.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, Inexact, localcontext

from trademesh.core.ledger.engine.allocate import trim
from trademesh.core.ledger.engine.model import ZERO

__all__ = ["MARGIN_STEP", "initial_margin", "margin_after", "quotient", "remargined"]

MARGIN_STEP = Decimal("1e-18")
# A held margin further than this share (and MIN_CHANGE) from |cost| / leverage was held at
# another leverage: no rounding of the venue's or the ledger's drifts that far (a change of
# leverage moves it by 0.8 % at least, 125x to 124x).
_CHANGED = Decimal("0.001")
_MIN_CHANGE = Decimal("1e-9")


def quotient(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator, exact where it ends, else rounded half-even to MARGIN_STEP."""
    with localcontext() as context:
        context.prec = max(context.prec, 100)
        context.clear_flags()
        value = numerator / denominator
        inexact = bool(context.flags[Inexact])
    if inexact:
        value = value.quantize(MARGIN_STEP, rounding=ROUND_HALF_EVEN)
    return trim(value) if value else ZERO


def initial_margin(cost: Decimal, leverage: Decimal) -> Decimal:
    """The margin a position of cost basis `cost` (its notional at entry, in the money asset: the
    coin for an inverse one) holds at `leverage`: |cost| / leverage."""
    return quotient(abs(cost), leverage) if cost else ZERO


def remargined(held: Decimal, cost: Decimal, leverage: Decimal) -> Decimal:
    """The margin an open position holds at `leverage`: what it holds, or |cost| / leverage when
    what it holds was held at another leverage (the venue re-margined it when the leverage was
    set; the ledger sees the new leverage with this fill)."""
    wanted = initial_margin(cost, leverage)
    differs = abs(held - wanted)
    return wanted if differs > wanted * _CHANGED and differs > _MIN_CHANGE else held


def margin_after(
    before: Decimal,
    cost: Decimal,
    held: Decimal,
    reduced: Decimal,
    opened_value: Decimal,
    leverage: Decimal,
) -> Decimal:
    """A position of `held` (position asset, unsigned) at cost `cost` holding `before`, after a fill
    that reduces it by `reduced` and opens `opened_value` (money asset, unsigned) on its side or,
    past a close, on the other: an increase adds opened_value / leverage, a reduce releases the
    share reduced / held of the margin, a close releases it all, a flip holds the new side's."""
    opened = quotient(opened_value, leverage) if opened_value else ZERO
    if reduced and reduced == held:  # closed, perhaps flipped
        return opened
    base = remargined(before, cost, leverage) if held else ZERO
    if reduced:
        return base - quotient(base * reduced, held)
    return base + opened
