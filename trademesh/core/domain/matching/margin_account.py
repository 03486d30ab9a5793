"""The margin of one account's perpetuals in the matching engine: each symbol's leverage and
margin mode, the initial margin its position holds, the figures GetPositions reports at the mark,
and which positions are due for liquidation and at what price (the maths: margin.py; the model:
docs/derivatives.md, "Margin and liquidation").

- An order that may open or add to a position locks its initial margin (notional at its price /
  leverage) with its worst-case fee (order_manager.py); a reduce-only order locks its fee only.
- A fill that opens a position holds notional at the fill price / leverage of locked as the
  position's margin (Balance.position_margin); a fill that reduces it releases its share.
- Isolated: the position's margin balance is its held margin + its unrealised PnL at the mark.
  Cross: the settle asset's equity (its balance less the isolated positions' margin, plus every
  cross position's unrealised PnL) backs all the cross positions of that asset together.
- Due for liquidation: a margin balance at or below the maintenance margin (margin ratio 1). The
  engine closes the position at its bankruptcy price, where the loss and the liquidation fee
  (notional there x liquidation_fee_rate) spend the margin balance (on the tick grid, rounded the
  way that loses less): an isolated position loses no more than its margin, a cross account no
  more than its equity.

The mark is the one funding pays at (funding.py): the book's mid, else the last trade, else the
only quoted side. Callers run inside ``localcontext(EXACT)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.matching.accounts import Accounts, exact_quotient
from trademesh.core.domain.matching.inverse import contract_fee, contract_worth, is_inverse_perpetual
from trademesh.core.domain.matching.margin import (
    BINANCE_BTCUSDT,
    COIN_BTCUSD,
    Brackets,
    Exposure,
    bankruptcy_price,
    fill_price,
    initial_margin,
    liquidated,
    liquidation_price,
    margin_ratio,
)
from trademesh.core.domain.model import Instrument, LeverageSetting, MarginMode, PositionMargin, Side
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument

__all__ = ["Liquidation", "MarginAccount", "MarginTerms"]

_ZERO = Decimal(0)


@dataclass(frozen=True)
class MarginTerms:
    """How the engine margins perpetuals: the leverage and mode each symbol starts with, the fee
    a liquidation pays, and each symbol's brackets (tiers: margin.Brackets; a symbol not named
    takes BINANCE_BTCUSDT when linear, COIN_BTCUSD when inverse)."""

    leverage: Decimal = Decimal(1)
    mode: MarginMode = MarginMode.CROSS
    liquidation_fee_rate: Decimal = Decimal("0.002")
    brackets: Mapping[str, Brackets] = field(default_factory=dict)


@dataclass(frozen=True)
class Liquidation:
    """The closing of one position: its side, size in contracts, price and fee."""

    symbol: str
    side: Side
    size: Decimal
    price: Decimal
    fee: Decimal


class _Symbol:
    __slots__ = ("brackets", "instrument", "inverse", "leverage", "mode")

    def __init__(self, instrument: Instrument, terms: MarginTerms) -> None:
        self.instrument = instrument
        self.inverse = is_inverse_perpetual(instrument)
        default = COIN_BTCUSD if self.inverse else BINANCE_BTCUSDT
        self.brackets = terms.brackets.get(instrument.symbol) or Brackets(default)
        self.leverage = min(terms.leverage, self.brackets.max_leverage)
        self.mode = terms.mode

    def worth(self, price: Decimal, contracts: Decimal) -> Decimal:
        """Notional of `contracts` at `price` in the settle asset."""
        if self.inverse:
            return contract_worth(self.instrument.contract_value, price, contracts)
        return price * contracts * self.instrument.contract_size


class MarginAccount:
    """The margin side of one account's perpetuals (the module's docstring)."""

    def __init__(
        self,
        terms: MarginTerms,
        instruments: Sequence[Instrument],
        accounts: Accounts,
        mark: Callable[[str], Decimal | None],
    ) -> None:
        self.terms = terms
        self._accounts = accounts
        self._mark = mark
        self._symbols = {i.symbol: _Symbol(i, terms) for i in sorted(instruments, key=lambda i: i.symbol)}
        # Each open position's (long, liquidation price) as of the accounts' version: the check
        # after every market step compares the mark with it (_thresholds).
        self._cached: dict[str, tuple[bool, Decimal | None] | None] = {}
        self._cached_version = -1
        for instrument in instruments:
            accounts.margined(instrument.symbol, instrument.settle_asset)

    # ---- leverage and mode

    def setting(self, symbol: str) -> LeverageSetting:
        item = self._symbols[symbol]
        return LeverageSetting(symbol, item.leverage, item.mode, item.brackets.max_leverage)

    def set(
        self, symbol: str, leverage: Decimal, mode: MarginMode | None, orders_open: bool
    ) -> LeverageSetting:
        """Set the leverage (and mode): InvalidArgument above the symbol's (or its position's tier's)
        most; FailedPrecondition for a new mode while it has a position or open orders (Binance's
        rule), or a lower leverage whose larger margin the free balance cannot hold."""
        item = self._symbols[symbol]
        exposure = self.exposure(symbol)
        most = item.brackets.max_leverage
        if exposure is not None:
            most = min(most, item.brackets.at(abs(exposure.value)).max_leverage)
        if leverage < 1:
            raise InvalidArgument.field("leverage", f"must be at least 1x, got {format_decimal(leverage)}")
        if leverage > most:
            allowed = f"{symbol} allows at most {format_decimal(most)}x now"
            raise InvalidArgument.field("leverage", f"{allowed}, got {format_decimal(leverage)}")
        if mode is not None and mode is not item.mode and (orders_open or exposure is not None):
            raise FailedPrecondition(
                f"the margin mode of {symbol} cannot change while it has a position or open orders"
            )
        if exposure is not None:
            change = initial_margin(exposure.value, leverage) - self._accounts.held_margin(symbol)
            if change > 0:
                self._accounts.require_free(item.instrument.settle_asset, change)
                self._accounts.hold_margin(symbol, change)
            elif change < 0:
                self._accounts.release_margin(symbol, -change)
        item.leverage = leverage
        item.mode = item.mode if mode is None else mode
        self._cached_version = -1
        return self.setting(symbol)

    # ---- orders and fills

    def order_rate(self, symbol: str) -> Decimal:
        """The share of an order's notional it locks as initial margin: 1 / leverage."""
        return exact_quotient(1, self._symbols[symbol].leverage)

    def check_order(self, symbol: str, side: Side, notional: Decimal) -> None:
        """FailedPrecondition when an order adding `notional` to the position (or opening it)
        would take it past what the symbol's leverage allows (Binance's "Exceeded the maximum
        allowable position at current leverage"); an order against the position is not counted."""
        item = self._symbols[symbol]
        exposure = self.exposure(symbol)
        if exposure is not None and (exposure.size > 0) != (side is Side.BUY):
            return
        held = _ZERO if exposure is None else abs(exposure.value)
        cap = item.brackets.cap_at(item.leverage)
        if cap is not None and held + notional > cap:
            raise FailedPrecondition(
                f"{symbol}: a position of notional {format_decimal(held + notional)} "
                f"{item.instrument.settle_asset} exceeds the {format_decimal(cap)} allowed at "
                f"{format_decimal(item.leverage)}x (a lower leverage allows more)"
            )

    def order_notional(self, symbol: str, price: Decimal, size: Decimal) -> Decimal:
        """What `size` contracts at `price` are worth in the settle asset."""
        return self._symbols[symbol].worth(price, size)

    def after_fill(self, symbol: str, before: Decimal, side: Side, price: Decimal, size: Decimal) -> None:
        """A fill of `size` contracts at `price` moved the position from `before` (signed): the
        margin of what it closed is released, that of what it opened held."""
        closing = _ZERO
        if before != 0 and (before > 0) != (side is Side.BUY):
            closing = min(size, abs(before))
        if closing:
            held = self._accounts.held_margin(symbol)
            share = held if closing == abs(before) else exact_quotient(held * closing, abs(before))
            self._accounts.release_margin(symbol, share)
        opened = size - closing
        if opened:
            item = self._symbols[symbol]
            self._accounts.hold_margin(symbol, initial_margin(item.worth(price, opened), item.leverage))

    # ---- positions at the mark

    def exposure(self, symbol: str) -> Exposure | None:
        """The symbol's open position for the margin sums; None when flat."""
        held = self._accounts.held(symbol)
        if held is None or held.size == 0:
            return None
        instrument = self._symbols[symbol].instrument
        if self._symbols[symbol].inverse:
            return Exposure(held.size * instrument.contract_value, held.cost, inverse=True)
        size = held.size * instrument.contract_size
        return Exposure(size, held.entry() * size)

    def figures(self, symbol: str) -> PositionMargin:
        """The position's margin figures at the mark (GetPositions)."""
        item = self._symbols[symbol]
        exposure, mark = self.exposure(symbol), self._mark(symbol)
        base = PositionMargin(
            settle_asset=item.instrument.settle_asset,
            leverage=item.leverage,
            mode=item.mode,
            mark_price=mark,
            initial_margin=self._accounts.held_margin(symbol),
        )
        if exposure is None or mark is None:
            return base
        pnl = exposure.pnl(mark)
        maintenance = item.brackets.maintenance(exposure.notional(mark))
        if item.mode is MarginMode.ISOLATED:
            balance, total_maintenance = base.initial_margin or _ZERO, maintenance
            balance += pnl
        else:
            balance, total_maintenance = self._cross(item.instrument.settle_asset)
        return PositionMargin(
            settle_asset=base.settle_asset,
            leverage=base.leverage,
            mode=base.mode,
            mark_price=mark,
            initial_margin=base.initial_margin,
            maintenance_margin=maintenance,
            margin_ratio=margin_ratio(total_maintenance, balance),
            unrealized_pnl=pnl,
            liquidation_price=liquidation_price(exposure, self._backing(symbol, True), item.brackets),
        )

    # ---- liquidation

    def due(self) -> list[str]:
        """The symbols whose positions are due for liquidation now: the isolated ones whose
        margin balance is at or below their maintenance margin, then, per settle asset, every
        cross one when the asset's equity is at or below their maintenance margin together.
        While each position alone decides its own (isolated, or the only cross one of its
        asset) that is its mark reaching its liquidation price, kept until the accounts change."""
        thresholds = self._thresholds()
        if any(threshold is None for threshold in thresholds.values()):
            return self._due_in_full()
        found: list[str] = []
        for symbol, threshold in thresholds.items():
            mark = self._mark(symbol)
            if mark is not None and threshold is not None and _reached(threshold, mark):
                found.append(symbol)
        return found

    def watching(self) -> bool:
        """Whether any margined position is open (none: no liquidation can be due, and a market
        step's check costs this one look at the cached thresholds)."""
        return bool(self._thresholds())

    def due_at(self, symbol: str, mark: Decimal) -> bool:
        """Whether the symbol's position may be due at `mark` (a backtest's check before it makes
        the engine's book whole): its liquidation price reached, or one that must be reckoned with
        the other cross positions."""
        thresholds = self._thresholds()
        if symbol not in thresholds:
            return False
        threshold = thresholds[symbol]
        return threshold is None or _reached(threshold, mark)

    def _thresholds(self) -> dict[str, tuple[bool, Decimal | None] | None]:
        """Each open position's (long, liquidation price), None for a cross one sharing its
        asset's equity with another (its price moves with theirs); reckoned again only when the
        accounts changed (a fill, a fee, funding, margin held or released) or a setting did."""
        if self._cached_version == self._accounts.version:
            return self._cached
        exposures = {s: e for s in self._symbols if (e := self.exposure(s)) is not None}
        shared = {
            asset
            for asset in {self._symbols[s].instrument.settle_asset for s in exposures}
            if len(self._open_cross(asset)) > 1
        }
        cached: dict[str, tuple[bool, Decimal | None] | None] = {}
        for symbol, exposure in exposures.items():
            item = self._symbols[symbol]
            if item.mode is MarginMode.CROSS and item.instrument.settle_asset in shared:
                cached[symbol] = None
                continue
            price = liquidation_price(exposure, self._backing(symbol, True), item.brackets)
            cached[symbol] = (exposure.size > 0, price)
        self._cached, self._cached_version = cached, self._accounts.version
        return cached

    def _due_in_full(self) -> list[str]:
        found: list[str] = []
        crossed: set[str] = set()
        for symbol, item in sorted(self._symbols.items()):
            exposure, mark = self.exposure(symbol), self._mark(symbol)
            if exposure is None or mark is None:
                continue
            if item.mode is MarginMode.CROSS:
                crossed.add(item.instrument.settle_asset)
            elif liquidated(self._accounts.held_margin(symbol), exposure, item.brackets, mark):
                found.append(symbol)
        for asset in sorted(crossed):
            equity, maintenance = self._cross(asset)
            if equity <= maintenance:
                found += [s for s in self._open_cross(asset)]
        return found

    def liquidation(self, symbol: str) -> Liquidation:
        """How the engine closes the symbol's position: at its bankruptcy price (the mark where
        there is none), on the tick grid, with the liquidation fee."""
        item = self._symbols[symbol]
        exposure, mark = self.exposure(symbol), self._mark(symbol)
        held = self._accounts.held(symbol)
        assert exposure is not None and held is not None and mark is not None
        long = exposure.size > 0
        rate = self.terms.liquidation_fee_rate
        bankrupt = bankruptcy_price(exposure, self._backing(symbol, False), rate) or mark
        tick = item.instrument.tick_size
        price = max(fill_price(bankrupt, long, tick), tick)
        contracts = abs(held.size)
        if item.inverse:
            fee = contract_fee(item.instrument.contract_value, price, contracts, rate)
        else:
            fee = item.worth(price, contracts) * rate
        return Liquidation(symbol, Side.SELL if long else Side.BUY, contracts, price, fee)

    # ---- internals

    def _backing(self, symbol: str, for_liquidation: bool) -> Decimal:
        """The margin backing the position (the margin.py docstring's M): isolated, what it holds;
        cross, the settle asset's cross wallet plus the other cross positions' PnL at their marks,
        less their maintenance margin when the sum is for the liquidation price."""
        item = self._symbols[symbol]
        if item.mode is MarginMode.ISOLATED:
            return self._accounts.held_margin(symbol)
        asset = item.instrument.settle_asset
        backing = self._cross_wallet(asset)
        for other in self._open_cross(asset):
            if other == symbol:
                continue
            pnl, maintenance = self._at_mark(other)
            backing += pnl - (maintenance if for_liquidation else _ZERO)
        return backing

    def _cross(self, asset: str) -> tuple[Decimal, Decimal]:
        """(equity, maintenance margin) of the cross positions settled in `asset`."""
        equity, maintenance = self._cross_wallet(asset), _ZERO
        for symbol in self._open_cross(asset):
            pnl, margin = self._at_mark(symbol)
            equity += pnl
            maintenance += margin
        return equity, maintenance

    def _cross_wallet(self, asset: str) -> Decimal:
        """The asset's balance less the margin its isolated positions hold."""
        isolated = sum(
            (
                self._accounts.held_margin(s)
                for s, item in self._symbols.items()
                if item.mode is MarginMode.ISOLATED and item.instrument.settle_asset == asset
            ),
            _ZERO,
        )
        return self._accounts.balance(asset).total - isolated

    def _open_cross(self, asset: str) -> list[str]:
        return [
            s
            for s, item in sorted(self._symbols.items())
            if item.mode is MarginMode.CROSS
            and item.instrument.settle_asset == asset
            and self.exposure(s) is not None
        ]

    def _at_mark(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(unrealised PnL, maintenance margin) of an open position at its mark (0, 0 without one)."""
        exposure, mark = self.exposure(symbol), self._mark(symbol)
        if exposure is None or mark is None:
            return _ZERO, _ZERO
        return exposure.pnl(mark), self._symbols[symbol].brackets.maintenance(exposure.notional(mark))


def _reached(threshold: tuple[bool, Decimal | None], mark: Decimal) -> bool:
    """Whether the mark has reached a (long, liquidation price): at or below it for a long, at or
    above it for a short; never without one."""
    long, price = threshold
    if price is None:
        return False
    return mark <= price if long else mark >= price
