"""The risk policies: a frozen, typed set, checked when made (InvalidArgument names the key,
e.g. "loss.max_drawdown"). A limit left as None is not enforced. Ratios are fractions (0.02 is
2%); money and sizes are Decimal; times carry their unit in the name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trademesh.core.inspector.engine.margin_policies import LeveragePolicy, LiquidationPolicy, MarginPolicy
from trademesh.core.platform.config.schema.words import out_of_range
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown

__all__ = [
    "WEEKDAYS",
    "AccountLimit",
    "AccountPolicy",
    "CapitalPolicy",
    "ExposurePolicy",
    "LeveragePolicy",
    "LiquidationPolicy",
    "LossPolicy",
    "MarginPolicy",
    "OrderPolicy",
    "PolicySet",
    "PositionPolicy",
    "ProtectPolicy",
    "RatePolicy",
    "SchedulePolicy",
    "SymbolLimit",
    "Window",
]

# Weekday names in the order of datetime.weekday() (Monday is 0).
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MAX_MONEY = Decimal(10) ** 15
_FRACTION = (Decimal(0), Decimal(1))


def _frozen(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


def _positive(where: str, value: Decimal | None) -> list[FieldViolation]:
    """A money or size limit: None (off) or in (0, 10^15]."""
    if value is None or Decimal(0) < value <= MAX_MONEY:
        return []
    return [FieldViolation(where, out_of_range(value, 0, MAX_MONEY, above=True))]


def _fraction(where: str, value: Decimal | None) -> list[FieldViolation]:
    """A ratio: None (off) or in (0, 1]."""
    low, high = _FRACTION
    if value is None or low < value <= high:
        return []
    return [FieldViolation(where, out_of_range(value, low, high, above=True))]


def _whole(where: str, value: int | None, low: int, high: int) -> list[FieldViolation]:
    if value is None or low <= value <= high:
        return []
    return [FieldViolation(where, out_of_range(value, low, high))]


def _raise(bad: list[FieldViolation]) -> None:
    if bad:
        raise InvalidArgument(bad)


@dataclass(frozen=True)
class SymbolLimit:
    """Position limits of one symbol (on every venue): size in the instrument's units, notional
    in the quote asset."""

    max_size: Decimal | None = None
    max_notional: Decimal | None = None

    def check(self, prefix: str) -> list[FieldViolation]:
        return _positive(f"{prefix}.max_size", self.max_size) + _positive(
            f"{prefix}.max_notional", self.max_notional
        )


@dataclass(frozen=True)
class PositionPolicy:
    """Per-symbol position limits: `max_size`/`max_notional` for every symbol, `symbols` for one."""

    max_size: Decimal | None = None
    max_notional: Decimal | None = None
    symbols: Mapping[str, SymbolLimit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", _frozen(self.symbols))
        _check_keyed("position", "symbols", SymbolLimit(self.max_size, self.max_notional), self.symbols)

    def limit_for(self, symbol: str) -> SymbolLimit:
        """The symbol's own limits, each falling back to the default when not set."""
        return _falling_back(self.symbols.get(symbol), SymbolLimit(self.max_size, self.max_notional))


@dataclass(frozen=True)
class ExposurePolicy:
    """Portfolio caps in the quote asset: gross = sum |size x mark|, net = |sum size x mark|."""

    max_gross: Decimal | None = None
    max_net: Decimal | None = None

    def __post_init__(self) -> None:
        _raise(_positive("exposure.max_gross", self.max_gross) + _positive("exposure.max_net", self.max_net))


@dataclass(frozen=True)
class LossPolicy:
    """Drawdowns are fractions of equity; past either, the core stands down."""

    max_daily_drawdown: Decimal | None = None  # from the day's opening equity (policy timezone)
    max_drawdown: Decimal | None = None  # from the equity's peak
    max_loss_streak: int | None = None  # this many losing trades in a row: stand down
    cooldown_after_loss_ms: int = 0  # no new entry this long after a losing trade

    def __post_init__(self) -> None:
        _raise(
            _fraction("loss.max_daily_drawdown", self.max_daily_drawdown)
            + _fraction("loss.max_drawdown", self.max_drawdown)
            + _whole("loss.max_loss_streak", self.max_loss_streak, 1, 1000)
            + _whole("loss.cooldown_after_loss_ms", self.cooldown_after_loss_ms, 0, 7 * 86_400_000)
        )


@dataclass(frozen=True)
class Window:
    """A time of day window, in minutes since local midnight: start included, end excluded."""

    start_min: int
    end_min: int

    def __str__(self) -> str:
        start, end = divmod(self.start_min, 60), divmod(self.end_min, 60)
        return f"{start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}"

    def holds(self, minute: int) -> bool:
        return self.start_min <= minute < self.end_min


@dataclass(frozen=True)
class SchedulePolicy:
    """When new entries may open. No windows at all: always. Windows given: only inside them,
    and a weekday without windows is closed."""

    timezone: str = "UTC"
    windows: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", _frozen(self.windows))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument.field(
                "schedule.timezone", f"{shown(self.timezone)} is not a known timezone"
            ) from None
        bad = []
        for day, windows in self.windows.items():
            if day not in WEEKDAYS:
                bad.append(
                    FieldViolation(f"schedule.windows.{day}", f"not a weekday; known: {', '.join(WEEKDAYS)}")
                )
            for window in windows:
                if not 0 <= window.start_min < window.end_min <= 24 * 60:
                    bad.append(FieldViolation(f"schedule.windows.{day}", f"{window} is not a window"))
        _raise(bad)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # cached by zoneinfo after the first load


@dataclass(frozen=True)
class OrderPolicy:
    max_notional: Decimal | None = None  # per order, in the quote asset
    max_open: int | None = None  # working entry and exit orders (protective orders apart)
    price_band: Decimal | None = None  # a limit price at most this fraction from the mid

    def __post_init__(self) -> None:
        _raise(
            _positive("orders.max_notional", self.max_notional)
            + _whole("orders.max_open", self.max_open, 1, 100_000)
            + _fraction("orders.price_band", self.price_band)
        )


@dataclass(frozen=True)
class RatePolicy:
    """Orders placed within any `window_ms`, per venue and per strategy."""

    window_ms: int = 1_000
    max_per_venue: int | None = None
    max_per_strategy: int | None = None

    def __post_init__(self) -> None:
        _raise(
            _whole("rate.window_ms", self.window_ms, 1, 86_400_000)
            + _whole("rate.max_per_venue", self.max_per_venue, 1, 1_000_000)
            + _whole("rate.max_per_strategy", self.max_per_strategy, 1, 1_000_000)
        )


@dataclass(frozen=True)
class CapitalPolicy:
    """Capital reserved per strategy (quote asset); `default_reserved` for strategies not
    listed (None: those are not capital-checked)."""

    reserved: Mapping[str, Decimal] = field(default_factory=dict)
    default_reserved: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reserved", _frozen(self.reserved))
        bad = _positive("capital.default_reserved", self.default_reserved)
        for strategy, amount in self.reserved.items():
            bad += _positive(f"capital.reserved.{strategy}", amount)
        _raise(bad)

    def reserved_for(self, strategy: str) -> Decimal | None:
        return self.reserved.get(strategy, self.default_reserved)


@dataclass(frozen=True)
class ProtectPolicy:
    """Protective orders of runtime-managed positions; the distances (fractions of the entry)
    apply when an intent names no stop-loss or take-profit of its own."""

    stop_loss: Decimal = Decimal("0.02")
    take_profit: Decimal = Decimal("0.04")
    trailing_stop: Decimal | None = None  # trail the stop this fraction behind the best mark
    trailing_step: Decimal = Decimal("0.001")  # ... moving it only by at least this fraction
    # A position without its whole protective pair for longer than this: a risk event and an
    # operator notice (protect.unprotected).
    unprotected_max_ms: int = 1000
    # A refused protective order is placed again this long after the refusal, doubled for each
    # refusal in a row (a refusal is often a fill on its way: the next try should find it in).
    retry_ms: int = 500
    # While an entry is still filling, what its fills add to a protected position is covered
    # at most this long after the first of them (or at once when the entry is done).
    coalesce_ms: int = 250

    def __post_init__(self) -> None:
        _raise(
            _fraction("protect.stop_loss", self.stop_loss)
            + _fraction("protect.take_profit", self.take_profit)
            + _fraction("protect.trailing_stop", self.trailing_stop)
            + _fraction("protect.trailing_step", self.trailing_step)
            + _whole("protect.unprotected_max_ms", self.unprotected_max_ms, 1, 3_600_000)
            + _whole("protect.retry_ms", self.retry_ms, 1, 60_000)
            + _whole("protect.coalesce_ms", self.coalesce_ms, 0, 60_000)
        )


@dataclass(frozen=True)
class AccountLimit:
    """Limits of one venue account's book (docs/accounts.md), in the quote asset."""

    max_gross: Decimal | None = None  # the account's gross exposure: sum |size x mark| at its venue
    max_order_notional: Decimal | None = None  # one order at its venue

    def check(self, prefix: str) -> list[FieldViolation]:
        return _positive(f"{prefix}.max_gross", self.max_gross) + _positive(
            f"{prefix}.max_order_notional", self.max_order_notional
        )


@dataclass(frozen=True)
class AccountPolicy:
    """Per venue, and so per account (an account is its own venue, "binance.desk-a"): the
    defaults for every venue, `venues` for one by its name (docs/accounts.md)."""

    max_gross: Decimal | None = None
    max_order_notional: Decimal | None = None
    venues: Mapping[str, AccountLimit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "venues", _frozen(self.venues))
        _check_keyed("account", "venues", AccountLimit(self.max_gross, self.max_order_notional), self.venues)

    def limit_for(self, venue: str) -> AccountLimit:
        """The venue's own limits, each falling back to the default when not set."""
        return _falling_back(self.venues.get(venue), AccountLimit(self.max_gross, self.max_order_notional))


_Limit = TypeVar("_Limit", SymbolLimit, AccountLimit)


def _check_keyed(
    section: str,
    keyed: str,
    default: SymbolLimit | AccountLimit,
    own: Mapping[str, SymbolLimit | AccountLimit],
) -> None:
    """A section's default limits and each key's own (`<section>.<keyed>.<key>`) checked;
    InvalidArgument naming every one out of range."""
    bad = default.check(section)
    for key, limit in own.items():
        bad += limit.check(f"{section}.{keyed}.{key}")
    _raise(bad)


def _falling_back(own: _Limit | None, default: _Limit) -> _Limit:
    """`own` (None: no limits of its own) with each limit it leaves unset taken from `default`."""
    if own is None:
        return default
    mine = [getattr(own, name) for name in own.__dataclass_fields__]
    theirs = [getattr(default, name) for name in own.__dataclass_fields__]
    return type(own)(*[d if o is None else o for o, d in zip(mine, theirs, strict=True)])


@dataclass(frozen=True)
class PolicySet:
    position: PositionPolicy = field(default_factory=PositionPolicy)
    exposure: ExposurePolicy = field(default_factory=ExposurePolicy)
    loss: LossPolicy = field(default_factory=LossPolicy)
    schedule: SchedulePolicy = field(default_factory=SchedulePolicy)
    orders: OrderPolicy = field(default_factory=OrderPolicy)
    rate: RatePolicy = field(default_factory=RatePolicy)
    capital: CapitalPolicy = field(default_factory=CapitalPolicy)
    protect: ProtectPolicy = field(default_factory=ProtectPolicy)
    account: AccountPolicy = field(default_factory=AccountPolicy)
    leverage: LeveragePolicy = field(default_factory=LeveragePolicy)
    liquidation: LiquidationPolicy = field(default_factory=LiquidationPolicy)
    margin: MarginPolicy = field(default_factory=MarginPolicy)

    @classmethod
    def section_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
