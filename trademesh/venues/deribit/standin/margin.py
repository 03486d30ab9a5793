"""Deribit's futures margin for the replay stand-in: an inverse future's (BTC-PERPETUAL's) margin
figures at the mark, and the mark at which the account is liquidated.

Deribit keeps no leverage per position: the account's equity in the coin (its cash plus the
futures' floating profit and loss) backs every future of that coin (cross margin, Deribit's
standard margin), and a position's margins are rates of its size in the coin at the mark (Deribit's
futures contract specification, https://test.deribit.com/pages/docs/futures): initial margin 2 %
and maintenance margin 1.5 %, each plus 0.5 % per 100 of the coin. The position states the
leverage they give (the whole number under 1 / initial rate), and an estimated liquidation price:
the mark at which the equity equals the maintenance margin (with one future held). For an inverse
position of `size` USD (signed) and `coin` cost (signed, size / average), at x = 1 / mark:
equity = cash + coin - size x, maintenance = 0.015 |size| x + 0.00005 size^2 x^2, so x solves
0.00005 size^2 x^2 + (0.015 |size| + size) x - (cash + coin) = 0 (its positive root).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["FutureMargin", "future_margin"]

_INITIAL, _MAINTENANCE, _PER_COIN = Decimal("0.02"), Decimal("0.015"), Decimal("0.00005")
_SATOSHI = Decimal("1e-8")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class FutureMargin:
    floating: Decimal  # profit and loss at the mark, in the coin
    initial: Decimal
    maintenance: Decimal
    leverage: int
    liquidation: Decimal | None  # the estimated liquidation price (None: none)


def future_margin(size: Decimal, coin: Decimal, cash: Decimal, mark: Decimal) -> FutureMargin:
    """The figures of an inverse future of `size` USD (signed) bought for `coin` (signed), with the
    account's `cash` in the coin, at `mark`."""
    held = abs(size) / mark  # in the coin
    initial_rate = _INITIAL + _PER_COIN * held
    maintenance_rate = _MAINTENANCE + _PER_COIN * held
    return FutureMargin(
        floating=(coin - size / mark).quantize(_SATOSHI),
        initial=(held * initial_rate).quantize(_SATOSHI),
        maintenance=(held * maintenance_rate).quantize(_SATOSHI),
        leverage=int(1 / initial_rate),
        liquidation=_liquidation(size, coin, cash),
    )


def _liquidation(size: Decimal, coin: Decimal, cash: Decimal) -> Decimal | None:
    if size == 0:
        return None
    a = _PER_COIN * size * size
    b = _MAINTENANCE * abs(size) + size
    c = cash + coin
    discriminant = b * b + 4 * a * c
    if discriminant < 0:
        return None
    x = (-b + discriminant.sqrt()) / (2 * a)
    return (1 / x).quantize(_CENT) if x > 0 else None
