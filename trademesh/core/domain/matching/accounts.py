"""Balances and positions of the sim venue's single user account.

On SPOT instruments a buy fill moves the base asset +size and the quote asset -(price * size);
a sell the reverse. Fees are charged in the quote asset, or (a venue whose exchange takes it
from what a fill brings in: trademesh/core/domain/matching/fees.py) a buy's in the base it receives.
On the linear perpetuals (trademesh/core/domain/matching/funding.py) a fill moves only the settle
asset: its fee, and the PnL it realises.

Arithmetic is exact: callers run inside ``localcontext(EXACT)`` (the exchange does), whose
precision is far above anything a 38-digit wire decimal times a fee rate can need, so sums
and products never round. A position's average entry price is the one quotient that may
not terminate: it is kept exact when it does, else to 18 decimal places (``exact_quotient``),
and realized PnL is what a reduction is worth at its fill less the share of the position's cost it
releases, rounded as the ledger rounds it (trademesh/core/domain/cost_share.py), so the venue's PnL and
the books' agree to the last digit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from typing import Protocol

from trademesh.core.domain.cost_share import released_cost
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Balance, Position, Side
from trademesh.core.platform.errors import FailedPrecondition

__all__ = ["EXACT", "REPORT_QUANTUM", "Accounts", "HeldPosition", "exact_quotient"]

EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])

# Quotients that do not terminate (average prices, entry prices, PnL) are reported to 18 places.
REPORT_QUANTUM = Decimal("1e-18")

_ZERO = Decimal(0)
_ONE = Decimal(1)


def exact_quotient(numerator: Decimal | int, denominator: Decimal | int) -> Decimal:
    """numerator / denominator exactly when it terminates, else rounded half-even to 1e-18."""
    ctx = EXACT.copy()
    ctx.clear_flags()
    value = ctx.divide(Decimal(numerator), Decimal(denominator))
    if ctx.flags[Inexact]:
        return value.quantize(REPORT_QUANTUM, context=ctx)
    return value


class HeldPosition(Protocol):
    """One symbol's position: a linear one (here) or an inverse one (inverse.py)."""

    size: Decimal
    realized: Decimal
    cost: Decimal

    def entry(self) -> Decimal: ...

    def apply(self, signed_size: Decimal, price: Decimal, multiplier: Decimal = ...) -> None: ...

    def snapshot(self, symbol: str) -> Position: ...


class _Position:
    """A linear position (spot, a linear perpetual) at average cost, as the ledger books it: its
    cost is what the held size was worth at its fills (price x |size| x multiplier); a reduction
    releases its share of the cost (trademesh/core/domain/cost_share.py) and realises what it is
    worth at the fill less that share (the reverse for a short)."""

    __slots__ = ("cost", "multiplier", "realized", "size")

    def __init__(self) -> None:
        self.size = _ZERO  # signed: + long, - short
        self.cost = _ZERO
        self.realized = _ZERO
        self.multiplier = _ONE

    def entry(self) -> Decimal:
        return exact_quotient(self.cost, abs(self.size) * self.multiplier)

    def apply(self, signed_size: Decimal, price: Decimal, multiplier: Decimal = _ONE) -> None:
        """`multiplier`: what a price move of 1 on one unit of size is worth (a linear contract's size)."""
        self.multiplier = multiplier
        if self.size == 0 or (self.size > 0) == (signed_size > 0):
            self.size += signed_size
            self.cost += price * abs(signed_size) * multiplier
            return
        long = self.size > 0
        closed = min(abs(signed_size), abs(self.size))
        released = released_cost(self.cost, closed * multiplier, abs(self.size) * multiplier)
        worth = price * closed * multiplier
        self.realized += worth - released if long else released - worth
        self.cost -= released
        self.size += signed_size
        if self.size and (self.size > 0) != long:  # flipped: the rest opens at the fill price
            self.cost = price * abs(self.size) * multiplier

    def snapshot(self, symbol: str) -> Position:
        return Position(
            symbol=symbol,
            size=self.size,
            entry_price=None if self.size == 0 else self.entry(),
            realized_pnl=self.realized,
        )


class Accounts:
    """Free and locked amounts per asset, and positions per symbol, of one account."""

    def __init__(self, initial: Mapping[str, Decimal]) -> None:
        self._free: dict[str, Decimal] = {asset: Decimal(v) for asset, v in initial.items()}
        self._locked: dict[str, Decimal] = dict.fromkeys(self._free, _ZERO)
        self._positions: dict[str, HeldPosition] = {}
        self._kinds: dict[str, Callable[[], HeldPosition]] = {}
        # Margined perpetuals (margin_account.py): the initial margin each position holds, of
        # locked, and the settle asset it is held in.
        self._margin: dict[str, Decimal] = {}
        self._margin_asset: dict[str, str] = {}
        # Bumped whenever a total, a position or a position's margin changes: what a cached
        # liquidation price (margin_account.py) was reckoned from.
        self.version = 0
        # Bumped at every change of an amount (free, locked, margin held), a position or the
        # assets held: what a backtest's cached holdings (trademesh.core.backtest.market) were
        # read from (a total's digits move with a lock, its value does not).
        self.changes = 0

    # ---- balances

    def free(self, asset: str) -> Decimal:
        return self._free.get(asset, _ZERO)

    def locked(self, asset: str) -> Decimal:
        return self._locked.get(asset, _ZERO)

    def balance(self, asset: str) -> Balance:
        return Balance(
            asset=asset,
            free=self.free(asset),
            locked=self.locked(asset),
            position_margin=self.position_margin(asset),
        )

    def balances(self) -> list[Balance]:
        return [self.balance(asset) for asset in sorted(self._free)]

    def add_asset(self, asset: str) -> None:
        """Make an asset appear in balances() even before it is funded."""
        self.changes += 1
        self._free.setdefault(asset, _ZERO)
        self._locked.setdefault(asset, _ZERO)

    def require_free(self, asset: str, amount: Decimal) -> None:
        free = self.free(asset)
        if amount > free:
            need, have = format_decimal(amount), format_decimal(free)
            raise FailedPrecondition(f"insufficient {asset}: need {need}, free {have}")

    def lock(self, asset: str, amount: Decimal) -> None:
        self.require_free(asset, amount)
        self.add_asset(asset)
        self._free[asset] -= amount
        self._locked[asset] += amount
        self.changes += 1

    def unlock(self, asset: str, amount: Decimal) -> None:
        self.spend_locked(asset, amount, _ZERO)

    def spend_locked(self, asset: str, released: Decimal, spent: Decimal) -> None:
        """Take `released` out of locked; `spent` of it leaves the account, the rest is freed."""
        if released > self.locked(asset) or released < 0:
            # Locks are sized by the order manager; getting here is a bookkeeping bug.
            raise RuntimeError(f"cannot release {released} {asset}: locked {self.locked(asset)}")
        self._locked[asset] -= released
        self._free[asset] += released - spent
        self.changes += 1
        if spent:
            self.version += 1

    def credit(self, asset: str, amount: Decimal) -> None:
        self.add_asset(asset)
        self._free[asset] += amount
        self.version += 1
        self.changes += 1

    # ---- position margin (margined perpetuals)

    def margined(self, symbol: str, asset: str) -> None:
        """The symbol's position holds its initial margin in `asset` (Balance.position_margin)."""
        self.add_asset(asset)
        self._margin_asset[symbol] = asset
        self._margin.setdefault(symbol, _ZERO)

    def held_margin(self, symbol: str) -> Decimal:
        return self._margin.get(symbol, _ZERO)

    def hold_margin(self, symbol: str, amount: Decimal) -> None:
        """Move `amount` from free to locked as the position's margin. Unchecked: a fill has
        happened, and free may go below 0 when it cost more margin than its order locked."""
        asset = self._margin_asset[symbol]
        self._free[asset] -= amount
        self._locked[asset] += amount
        self.changes += 1
        self._margin[symbol] += amount
        self.version += 1

    def release_margin(self, symbol: str, amount: Decimal) -> None:
        """Move `amount` of the position's margin back to free."""
        if amount > self._margin[symbol] or amount < 0:
            raise RuntimeError(f"cannot release {amount} of {symbol}'s margin {self._margin[symbol]}")
        asset = self._margin_asset[symbol]
        self._margin[symbol] -= amount
        self._locked[asset] -= amount
        self._free[asset] += amount
        self.version += 1
        self.changes += 1

    def position_margin(self, asset: str) -> Decimal | None:
        """The margin the positions settled in `asset` hold; None when none is margined in it."""
        held = [self._margin[s] for s, a in self._margin_asset.items() if a == asset]
        return sum(held, _ZERO) if held else None

    # ---- fills and positions

    def book_with(self, symbol: str, new: Callable[[], HeldPosition]) -> None:
        """Book the symbol's fills into a position made by `new` (an inverse perpetual's), not
        a linear one."""
        self._kinds[symbol] = new

    def settle_spot_fill(
        self,
        base: str,
        quote: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        fee: Decimal,
        released: Decimal,
        fee_in_base: bool = False,
    ) -> None:
        """Book one fill; `released` is what the order had locked for this part of it. A buy's
        fee comes off the base it receives when `fee_in_base`, else off the quote it pays."""
        notional = price * size
        if side is Side.BUY and fee_in_base:
            self.spend_locked(quote, released, notional)
            self.credit(base, size - fee)
        elif side is Side.BUY:
            self.spend_locked(quote, released, notional + fee)
            self.credit(base, size)
        else:
            self.spend_locked(base, released, size)
            self.credit(quote, notional - fee)

    def settle_perp_fill(self, settle: str, fee: Decimal, released: Decimal, realized: Decimal) -> None:
        """Book one perpetual fill: the fee leaves the settle asset out of what the order had
        locked for it (`released`), the PnL it realised (signed) is added."""
        self.spend_locked(settle, released, fee)
        self.credit(settle, realized)

    def record_fill(
        self, symbol: str, side: Side, price: Decimal, size: Decimal, multiplier: Decimal = _ONE
    ) -> Decimal:
        """Move the symbol's position by one fill; returns the PnL the fill realised (a price move
        of 1 on one unit of size is worth `multiplier`: a linear contract's size)."""
        position = self._positions.get(symbol)
        if position is None:
            position = self._positions[symbol] = self._kinds.get(symbol, _Position)()
        before = position.realized
        position.apply(size * side.sign, price, multiplier)
        self.version += 1
        self.changes += 1
        return position.realized - before

    def held(self, symbol: str) -> HeldPosition | None:
        """The symbol's position as booked (None before its first fill)."""
        return self._positions.get(symbol)

    def position_size(self, symbol: str) -> Decimal:
        position = self._positions.get(symbol)
        return _ZERO if position is None else exact_quotient(position.size, 1)

    def position(self, symbol: str) -> Position:
        return self._positions.get(symbol, _Position()).snapshot(symbol)

    def positions(self) -> list[Position]:
        return [self._positions[s].snapshot(s) for s in sorted(self._positions)]
