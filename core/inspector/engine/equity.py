"""The equity curve and its drawdowns, and the loss streak.

    equity = starting equity + realized PnL - fees + unrealized PnL at the marks
    drawdown from peak = (peak - equity) / peak
    daily drawdown = (day's opening equity - equity) / day's opening equity

The day is the calendar day in the policies' timezone; its opening equity is the equity at the
first update of the day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

__all__ = ["EquityCurve", "LossStreak", "local_time"]

_NS = 1_000_000_000


def local_time(now_ns: int, zone: ZoneInfo) -> datetime:
    """`now_ns` (nanoseconds since the epoch) as a local time; never the wall clock."""
    return datetime.fromtimestamp(now_ns // _NS, tz=zone)


def _ratio(loss: Decimal, base: Decimal) -> Decimal:
    return loss / base if base > 0 else Decimal(0)


@dataclass
class EquityCurve:
    start: Decimal
    equity: Decimal = Decimal(0)
    peak: Decimal = Decimal(0)
    day_open: Decimal = Decimal(0)
    day: date | None = None

    def __post_init__(self) -> None:
        self.equity = self.peak = self.day_open = self.start

    def update(self, equity: Decimal, now_ns: int, zone: ZoneInfo) -> None:
        today = local_time(now_ns, zone).date()
        if self.day != today:
            self.day, self.day_open = today, self.equity if self.day is not None else self.start
        self.equity = equity
        self.peak = max(self.peak, equity)

    def rebase(self) -> None:
        """An operator resumed: the current equity is the new peak and the day's opening."""
        self.peak = self.day_open = self.equity

    @property
    def drawdown(self) -> Decimal:
        return _ratio(self.peak - self.equity, self.peak)

    @property
    def daily_drawdown(self) -> Decimal:
        return _ratio(self.day_open - self.equity, self.day_open)


@dataclass
class LossStreak:
    count: int = 0
    last_loss_ns: int | None = None

    def record(self, pnl: Decimal, now_ns: int) -> None:
        if pnl < 0:
            self.count += 1
            self.last_loss_ns = now_ns
        else:
            self.count = 0

    def cooling_until(self, cooldown_ms: int) -> int | None:
        if self.last_loss_ns is None or cooldown_ms == 0:
            return None
        return self.last_loss_ns + cooldown_ms * 1_000_000
