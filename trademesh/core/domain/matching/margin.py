"""The margin maths of the matching engine's perpetuals: tiered maintenance brackets, initial
margin, margin ratio, and the liquidation and bankruptcy prices, linear and inverse, isolated and
cross. Pure functions of Decimals; callers run inside ``localcontext(EXACT)``.

Brackets are Binance USD-M's leverage brackets (GET /fapi/v1/leverageBracket; "Leverage and
Margin of USDⓈ-M Futures"): tier n covers position notionals from its floor (the cap of tier n-1)
up to its cap, and says the most leverage a position of that size may take and its maintenance
margin rate (MMR). Maintenance margin = notional x MMR - the tier's maintenance amount, the amount
being what keeps it continuous at the floors: amount(1) = 0, amount(n) = amount(n-1) + floor(n) x
(MMR(n) - MMR(n-1)) (Binance's `cum`).

A position for these sums is an `Exposure`: its signed size and its signed value at entry, both
in the units that make the PnL come out in the settle asset:
- linear (BTC/USDT:USDT): size = contracts x contract size (BTC, signed), value = size x entry
  price (USDT); unrealised PnL at P is size x P - value; notional at P is |size| x P.
- inverse (BTC/USD:BTC, trademesh/core/domain/matching/inverse.py): size = contracts x face value (USD,
  signed), value = the coin that face was worth at entry (signed like it); unrealised PnL at P is
  value - size / P (in the coin); notional at P is |size| / P (in the coin).

With M the margin backing the position (isolated: the margin it holds; cross: the settle asset's
equity but for this position's PnL, less the other cross positions' maintenance margin), it is
liquidated when M + PnL(P) falls to the maintenance margin at P (margin ratio 1). Solving that:
- linear: P = (value - M - amount) / (size - |size| x MMR)   (Binance's isolated formula, its
  "Liquidation Price" article: LP = (WB + cum - side x pos x EP) / (pos x MMR - side x pos))
- inverse: P = (size + |size| x MMR) / (M + value + amount)   (Binance COIN-M's)
each tried tier by tier, the answer the one whose notional at P falls in its own tier.
The bankruptcy price counts the liquidation fee in (backing + PnL(P) = notional(P) x fee rate):
linear (value - M) / (size - |size| x rate), inverse (size + |size| x rate) / (M + value); with
a rate of 0 it is where M + PnL is 0. A price that is not positive and finite does not exist:
the position cannot get there (a long at 1x, a short backed by its whole value in the coin).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trademesh.core.domain.inverse import coin_value
from trademesh.core.domain.matching.accounts import EXACT, exact_quotient
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "BINANCE_BTCUSDT",
    "COIN_BTCUSD",
    "Bracket",
    "Brackets",
    "Exposure",
    "bankruptcy_price",
    "fill_price",
    "initial_margin",
    "liquidated",
    "liquidation_price",
    "margin_ratio",
]

_ZERO = Decimal(0)

# Binance USD-M BTCUSDT's leverage brackets (cap in USDT, max leverage, MMR), the sim's default
# for a linear perpetual: 0-50k 125x 0.4 %, 50k-250k 100x 0.5 %, 250k-3M 50x 1 %, 3M-15M 20x
# 2.5 %, 15M-30M 10x 5 %, 30M-80M 5x 10 %, 80M-100M 4x 12.5 %, 100M-200M 3x 15 %, 200M-300M 2x
# 25 %, above 1x 50 %; their maintenance amounts 0, 50, 1,300, 46,300, 421,300, 1,921,300,
# 3,921,300, 6,421,300, 26,421,300, 101,421,300 USDT.
BINANCE_BTCUSDT: tuple[tuple[Decimal | None, Decimal, Decimal], ...] = tuple(
    (None if cap is None else Decimal(cap), Decimal(lev), Decimal(rate))
    for cap, lev, rate in (
        ("50000", 125, "0.004"),
        ("250000", 100, "0.005"),
        ("3000000", 50, "0.01"),
        ("15000000", 20, "0.025"),
        ("30000000", 10, "0.05"),
        ("80000000", 5, "0.1"),
        ("100000000", 4, "0.125"),
        ("200000000", 3, "0.15"),
        ("300000000", 2, "0.25"),
        (None, 1, "0.5"),
    )
)

# The same shape for an inverse perpetual, its notional in the coin (Binance COIN-M's BTCUSD
# brackets are in BTC): 0-5 BTC 125x 0.4 %, 5-10 100x 0.5 %, 10-20 50x 1 %, 20-50 20x 2.5 %,
# 50-100 10x 5 %, 100-200 5x 10 %, 200-400 4x 12.5 %, 400-1000 3x 15 %, 1000-1500 2x 25 %, above
# 1x 50 %.
COIN_BTCUSD: tuple[tuple[Decimal | None, Decimal, Decimal], ...] = tuple(
    (None if cap is None else Decimal(cap), Decimal(lev), Decimal(rate))
    for cap, lev, rate in (
        ("5", 125, "0.004"),
        ("10", 100, "0.005"),
        ("20", 50, "0.01"),
        ("50", 20, "0.025"),
        ("100", 10, "0.05"),
        ("200", 5, "0.1"),
        ("400", 4, "0.125"),
        ("1000", 3, "0.15"),
        ("1500", 2, "0.25"),
        (None, 1, "0.5"),
    )
)


@dataclass(frozen=True)
class Bracket:
    """One tier: notionals from `floor` up to `cap` (None: no cap), the most leverage they may
    take, the maintenance margin rate and the maintenance amount."""

    floor: Decimal
    cap: Decimal | None
    max_leverage: Decimal
    rate: Decimal
    amount: Decimal

    def holds(self, notional: Decimal) -> bool:
        return self.floor <= notional and (self.cap is None or notional < self.cap)


class Brackets:
    """A symbol's tiers, lowest first; the maintenance amounts derived from the floors and rates."""

    __slots__ = ("tiers",)

    def __init__(self, tiers: Sequence[tuple[Decimal | None, Decimal, Decimal]]) -> None:
        """`tiers`: (cap, max leverage, maintenance margin rate) each, caps rising, the last's None."""
        _check(tiers)
        built: list[Bracket] = []
        floor, amount, rate_before = _ZERO, _ZERO, _ZERO
        for cap, leverage, rate in tiers:
            amount += floor * (rate - rate_before)
            built.append(Bracket(floor, cap, leverage, rate, amount))
            floor, rate_before = cap or floor, rate
        self.tiers = tuple(built)

    @property
    def max_leverage(self) -> Decimal:
        """The most any position may take: the first tier's."""
        return self.tiers[0].max_leverage

    def at(self, notional: Decimal) -> Bracket:
        """The tier of a position of this notional."""
        for tier in self.tiers:
            if tier.holds(notional):
                return tier
        return self.tiers[-1]

    def cap_at(self, leverage: Decimal) -> Decimal | None:
        """The largest position notional `leverage` may hold: the cap of the last tier allowing
        it (None: no limit; Binance's "maximum position at current leverage")."""
        allowing = [tier for tier in self.tiers if tier.max_leverage >= leverage]
        return allowing[-1].cap if allowing else _ZERO

    def maintenance(self, notional: Decimal) -> Decimal:
        """notional x MMR - amount of the notional's tier (never below 0)."""
        tier = self.at(notional)
        return max(notional * tier.rate - tier.amount, _ZERO)


def _check(tiers: Sequence[tuple[Decimal | None, Decimal, Decimal]]) -> None:
    if not tiers:
        raise InvalidArgument.field("brackets", "name at least one tier")
    caps = [cap for cap, _, _ in tiers[:-1] if cap is not None and cap > 0]
    if tiers[-1][0] is not None or len(caps) != len(tiers) - 1:
        raise InvalidArgument.field("brackets", "every tier but the last has a positive cap; the last none")
    if any(later <= earlier for earlier, later in itertools.pairwise(caps)):
        raise InvalidArgument.field("brackets", "caps must rise from tier to tier")
    for _, leverage, rate in tiers:
        if leverage < 1 or not _ZERO <= rate < 1:
            raise InvalidArgument.field(
                "brackets", "a tier's max leverage is at least 1 and its maintenance rate within 0 .. 1"
            )


@dataclass(frozen=True)
class Exposure:
    """A position for the margin sums (the module's docstring): signed size and entry value."""

    size: Decimal
    value: Decimal
    inverse: bool = False

    def notional(self, price: Decimal) -> Decimal:
        """At `price`, in the settle asset (an inverse one's to the coin's 1e-12)."""
        if self.inverse:
            return coin_value(abs(self.size), price)
        return abs(self.size) * price

    def pnl(self, price: Decimal) -> Decimal:
        """Unrealised at `price`: what closing it all there would realise."""
        if self.inverse:
            worth = coin_value(abs(self.size), price)
            return self.value - (worth if self.size > 0 else -worth)
        return self.size * price - self.value


def initial_margin(value: Decimal, leverage: Decimal) -> Decimal:
    """The margin a position of entry value `value` holds at `leverage`: |value| / leverage."""
    return exact_quotient(abs(value), leverage)


def liquidated(backing: Decimal, exposure: Exposure, brackets: Brackets, mark: Decimal) -> bool:
    """Whether the margin balance (backing + PnL at mark) has fallen to the maintenance margin."""
    balance = backing + exposure.pnl(mark)
    return balance <= brackets.maintenance(exposure.notional(mark))


def margin_ratio(maintenance: Decimal, balance: Decimal) -> Decimal | None:
    """maintenance / margin balance (1: liquidation); None when the balance is not positive."""
    if balance <= 0:
        return None
    return exact_quotient(maintenance, balance)


def liquidation_price(exposure: Exposure, backing: Decimal, brackets: Brackets) -> Decimal | None:
    """The mark at which backing + PnL falls to the maintenance margin; None where there is none."""
    if exposure.size == 0:
        return None
    size, value = exposure.size, exposure.value
    for tier in brackets.tiers:
        if exposure.inverse:
            numerator, denominator = size + abs(size) * tier.rate, backing + value + tier.amount
        else:
            numerator, denominator = value - backing - tier.amount, size - abs(size) * tier.rate
        if denominator == 0:
            continue
        price = EXACT.divide(numerator, denominator)
        if price <= 0:
            continue
        notional = EXACT.divide(abs(size), price) if exposure.inverse else abs(size) * price
        if tier.holds(notional):
            return exact_quotient(numerator, denominator)
    return None


def bankruptcy_price(exposure: Exposure, backing: Decimal, fee_rate: Decimal = _ZERO) -> Decimal | None:
    """The price at which backing + PnL is spent by the loss and the fee closing it there takes
    (notional x fee_rate: the fee to close is part of the margin, as Bybit reckons it); None where
    there is none."""
    size, value = exposure.size, exposure.value
    if size == 0:
        return None
    if exposure.inverse:
        numerator, denominator = size + abs(size) * fee_rate, backing + value
    else:
        numerator, denominator = value - backing, size - abs(size) * fee_rate
    if denominator == 0:
        return None
    price = exact_quotient(numerator, denominator)
    return price if price > 0 else None


def fill_price(bankruptcy: Decimal, long: bool, tick: Decimal) -> Decimal:
    """The bankruptcy price on the tick grid, rounded the way that loses less (a long's up, a
    short's down): a liquidation never takes more than the margin."""
    rounding = ROUND_CEILING if long else ROUND_FLOOR
    ticks = EXACT.divide(bankruptcy, tick).to_integral_value(rounding)
    return ticks * tick
