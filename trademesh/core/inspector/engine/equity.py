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


class _LocalDay:
    """The local date of a time in seconds, read again only when the time leaves the local day
    last read: a mark a second (a backtest's, a bar's) asks within the same day ~86,400 times, and
    `local_time` is a timezone lookup each. The day's span is kept only when the UTC offset is the
    same at its first and last second as at the time read (no offset change inside it: a day
    holds at most one), so every time in it has that date; otherwise nothing is kept."""

    __slots__ = ("_date", "_end", "_start", "_zone")

    def __init__(self) -> None:
        self._zone: ZoneInfo | None = None
        self._start = self._end = 0
        self._date: date | None = None

    def of(self, now_ns: int, zone: ZoneInfo) -> date:
        second = now_ns // _NS
        if zone is self._zone and self._start <= second < self._end:
            assert self._date is not None
            return self._date
        local = datetime.fromtimestamp(second, tz=zone)
        today, offset = local.date(), local.utcoffset()
        start = second - (local.hour * 3600 + local.minute * 60 + local.second)
        end = start + 86_400
        first, last = datetime.fromtimestamp(start, tz=zone), datetime.fromtimestamp(end - 1, tz=zone)
        same = first.utcoffset() == offset == last.utcoffset() and first.date() == today == last.date()
        self._zone, self._date = (zone, today) if same else (None, None)
        self._start, self._end = (start, end) if same else (0, 0)
        return today


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
        self._local_day = _LocalDay()  # a cache, not a field: not the curve's state (nor its snapshot's)

    def update(self, equity: Decimal, now_ns: int, zone: ZoneInfo) -> None:
        today = self._local_day.of(now_ns, zone)  # local_time(now_ns, zone).date()
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
