"""A backtest's performance figures from its equity curve, round trips and fills (pure).

No I/O, no clock: the same records give the same Metrics. Money stays Decimal (sums exact,
quotients to 28 digits, whatever the caller's decimal context); ratios are float. The curve is
a step function (a point holds until the next). `compute` gives one Metrics, `by_strategy` one
per strategy plus "total", `monthly_returns` the report's months. The formulas, the cases
where a figure is undefined and the refused inputs (InvalidArgument naming the field):
docs/backtest.md, "Results: metrics and report".
"""

from __future__ import annotations

import bisect
import calendar
import functools
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal

from trademesh.core.backtest.results import BacktestRoundTrip, EquityPoint, FillRecord, Metrics
from trademesh.core.domain.decimals import WIDE
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "DAY_NS",
    "MAX_SAMPLES",
    "TOTAL",
    "YEAR_NS",
    "by_strategy",
    "compute",
    "drawdowns",
    "monthly_returns",
    "sampled_returns",
]

DAY_NS = 86_400 * 10**9
YEAR_NS = 365 * DAY_NS
# A period so short that the curve gives more samples than this is refused (memory, time).
MAX_SAMPLES = 10_000_000
# The key of the whole account's figures in by_strategy's answer.
TOTAL = "total"

_CTX = Context(prec=28, rounding=ROUND_HALF_EVEN)
_ZERO = Decimal(0)
_FILL_SIDES = ("buy", "sell")
_TRIP_SIDES = ("long", "short")


def compute(
    curve: Sequence[EquityPoint],
    round_trips: Sequence[BacktestRoundTrip],
    fills: Sequence[FillRecord],
    period_ns: int = DAY_NS,
) -> Metrics:
    """The figures of one equity curve with its round trips and fills (formulas above)."""
    _check_curve(curve)
    _check_period(period_ns, curve)
    _check_round_trips(round_trips)
    _check_fills(fills)
    wins = [t.pnl for t in round_trips if t.pnl > 0]
    losses = [t.pnl for t in round_trips if t.pnl < 0]
    gross_loss = WIDE.minus(_total(losses))
    profit_factor = float(_CTX.divide(_total(wins), gross_loss)) if gross_loss else None
    notional = _total(WIDE.abs(WIDE.multiply(f.price, f.size)) for f in fills)
    fees = _total(f.fee for f in fills)
    win_rate = len(wins) / len(round_trips) if round_trips else 0.0
    if not curve:
        return Metrics(
            total_return=_ZERO,
            cagr=0.0,
            sharpe=0.0,
            sortino=0.0,
            max_drawdown=_ZERO,
            calmar=0.0,
            win_rate=win_rate,
            profit_factor=profit_factor,
            exposure=0.0,
            turnover=0.0,
            fees=fees,
            trades=len(round_trips),
            start_equity=_ZERO,
            end_equity=_ZERO,
        )
    start, end = curve[0].equity, curve[-1].equity
    returns = _returns(curve, period_ns)
    max_drawdown = max(drawdowns(curve))
    cagr = _cagr(start, end, curve[-1].ts_ns - curve[0].ts_ns)
    average = _average_equity(curve)
    return Metrics(
        total_return=_CTX.subtract(_CTX.divide(end, start), 1),
        cagr=cagr,
        sharpe=_sharpe(returns, period_ns),
        sortino=_sortino(returns, period_ns),
        max_drawdown=max_drawdown,
        calmar=cagr / float(max_drawdown) if max_drawdown else 0.0,
        win_rate=win_rate,
        profit_factor=profit_factor,
        exposure=_exposure(curve),
        turnover=float(_CTX.divide(notional, average)) if average > 0 else 0.0,
        fees=fees,
        trades=len(round_trips),
        start_equity=start,
        end_equity=end,
    )


def by_strategy(
    total_curve: Sequence[EquityPoint],
    strategy_curves: Mapping[str, Sequence[EquityPoint]],
    round_trips: Sequence[BacktestRoundTrip],
    fills: Sequence[FillRecord],
    period_ns: int = DAY_NS,
) -> dict[str, Metrics]:
    """The figures of each strategy (sorted by name) from its own curve, fills and round trips,
    then "total" from the account's curve and all of them.

    Every fill's and round trip's strategy must have a curve; "total" is not a strategy name."""
    if TOTAL in strategy_curves:
        raise InvalidArgument.field(
            "strategy_curves", f"{TOTAL!r} is the whole account's key, not a strategy"
        )
    named: list[tuple[str, list[str]]] = [
        ("round_trips", [t.strategy for t in round_trips]),
        ("fills", [f.strategy for f in fills]),
    ]
    for field, strategies in named:
        for index, strategy in enumerate(strategies):
            if strategy not in strategy_curves:
                raise InvalidArgument.field(
                    f"{field}[{index}].strategy", f"{strategy!r} has no curve in strategy_curves"
                )
    answer = {
        name: compute(
            strategy_curves[name],
            [t for t in round_trips if t.strategy == name],
            [f for f in fills if f.strategy == name],
            period_ns,
        )
        for name in sorted(strategy_curves)
    }
    answer[TOTAL] = compute(total_curve, round_trips, fills, period_ns)
    return answer


def sampled_returns(curve: Sequence[EquityPoint], period_ns: int = DAY_NS) -> list[float]:
    """The returns of the curve sampled every `period_ns` from its first point (see above)."""
    _check_curve(curve)
    _check_period(period_ns, curve)
    return _returns(curve, period_ns)


def _returns(curve: Sequence[EquityPoint], period_ns: int) -> list[float]:
    if not curve:
        return []
    times = [p.ts_ns for p in curve]
    count = (times[-1] - times[0]) // period_ns
    returns: list[float] = []
    previous = curve[0].equity
    for k in range(1, count + 1):
        equity = curve[bisect.bisect_right(times, times[0] + k * period_ns) - 1].equity
        if previous <= 0:
            break
        returns.append(float(_CTX.subtract(_CTX.divide(equity, previous), 1)))
        previous = equity
    return returns


def drawdowns(curve: Sequence[EquityPoint]) -> list[Decimal]:
    """(M_i - E_i) / M_i at each point, M_i the running peak; fractions, 0 at a new peak."""
    _check_curve(curve)
    answer = []
    peak = _ZERO
    for point in curve:
        peak = max(peak, point.equity)
        answer.append(_CTX.divide(WIDE.subtract(peak, point.equity), peak))
    return answer


def monthly_returns(curve: Sequence[EquityPoint]) -> dict[tuple[int, int], Decimal]:
    """{(year, month): return} of every calendar month (UTC) the curve spans, in order.

    A month after the equity reached <= 0 at a month's end has no return (left out)."""
    _check_curve(curve)
    if not curve:
        return {}
    times = [p.ts_ns for p in curve]
    year, month = _month_of(times[0])
    last = _month_of(times[-1])
    previous = curve[0].equity
    answer: dict[tuple[int, int], Decimal] = {}
    while (year, month) <= last:
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        next_start = calendar.timegm((*following, 1, 0, 0, 0)) * 10**9
        equity = curve[bisect.bisect_left(times, next_start) - 1].equity
        if previous <= 0:
            break
        answer[year, month] = _CTX.subtract(_CTX.divide(equity, previous), 1)
        previous = equity
        year, month = following
    return answer


def _month_of(ts_ns: int) -> tuple[int, int]:
    """(year, month) of a time, UTC: found from calendar.timegm (no datetime, no clock)."""
    seconds = ts_ns // 10**9
    year = 1970 + seconds // (365 * 86_400)
    while calendar.timegm((year, 1, 1, 0, 0, 0)) > seconds:
        year -= 1
    while calendar.timegm((year + 1, 1, 1, 0, 0, 0)) <= seconds:
        year += 1
    month = 1
    while month < 12 and calendar.timegm((year, month + 1, 1, 0, 0, 0)) <= seconds:
        month += 1
    return year, month


def _cagr(start: Decimal, end: Decimal, span_ns: int) -> float:
    if span_ns == 0:
        return 0.0
    if end <= 0:
        return -1.0
    ratio = float(_CTX.divide(end, start))
    if ratio == 0:  # below a float's range: all but nothing left
        return -1.0
    try:
        return math.exp(math.log(ratio) * YEAR_NS / span_ns) - 1.0
    except OverflowError:
        return math.inf


def _sharpe(returns: Sequence[float], period_ns: int) -> float:
    if len(returns) < 2:
        return 0.0
    mean = math.fsum(returns) / len(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance == 0:
        return 0.0
    return mean / math.sqrt(variance) * math.sqrt(YEAR_NS / period_ns)


def _sortino(returns: Sequence[float], period_ns: int) -> float:
    if len(returns) < 2:
        return 0.0
    mean = math.fsum(returns) / len(returns)
    downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    if downside == 0:
        return 0.0
    return mean / downside * math.sqrt(YEAR_NS / period_ns)


def _segments(curve: Sequence[EquityPoint]) -> list[tuple[EquityPoint, int]]:
    """Each point with how long it holds (until the next point; the last point holds 0)."""
    return [(point, after.ts_ns - point.ts_ns) for point, after in itertools.pairwise(curve)]


def _exposure(curve: Sequence[EquityPoint]) -> float:
    span = curve[-1].ts_ns - curve[0].ts_ns
    if span == 0:
        return 0.0
    return sum(held for point, held in _segments(curve) if point.exposure > 0) / span


def _average_equity(curve: Sequence[EquityPoint]) -> Decimal:
    span = curve[-1].ts_ns - curve[0].ts_ns
    if span == 0:
        return curve[0].equity
    weighted = _total(WIDE.multiply(point.equity, held) for point, held in _segments(curve))
    return _CTX.divide(weighted, span)


def _total(values: Iterable[Decimal]) -> Decimal:
    """The exact sum (WIDE's 152 digits), whatever the caller's context."""
    return functools.reduce(WIDE.add, values, _ZERO)


def _check_period(period_ns: int, curve: Sequence[EquityPoint]) -> None:
    if period_ns <= 0:
        raise InvalidArgument.field("period_ns", f"must be positive, not {period_ns}")
    if curve and (curve[-1].ts_ns - curve[0].ts_ns) // period_ns > MAX_SAMPLES:
        raise InvalidArgument.field(
            "period_ns", f"{period_ns} gives more than {MAX_SAMPLES} samples over the curve's span"
        )


def _check_curve(curve: Sequence[EquityPoint]) -> None:
    for index, point in enumerate(curve):
        if not point.equity.is_finite():
            raise InvalidArgument.field(f"curve[{index}].equity", f"{point.equity} is not a finite number")
        if not point.exposure.is_finite() or point.exposure < 0:
            raise InvalidArgument.field(
                f"curve[{index}].exposure", f"must be a finite gross notional >= 0, not {point.exposure}"
            )
        if index and point.ts_ns < curve[index - 1].ts_ns:
            raise InvalidArgument.field(
                f"curve[{index}].ts_ns",
                f"{point.ts_ns} is before curve[{index - 1}].ts_ns {curve[index - 1].ts_ns}: "
                "the curve must be in time order",
            )
    if curve and curve[0].equity <= 0:
        raise InvalidArgument.field(
            "curve[0].equity", f"the starting equity must be positive, not {curve[0].equity}"
        )


def _check_round_trips(round_trips: Sequence[BacktestRoundTrip]) -> None:
    for index, trip in enumerate(round_trips):
        if trip.side not in _TRIP_SIDES:
            raise InvalidArgument.field(f"round_trips[{index}].side", f"{trip.side!r} is not long or short")
        if not trip.size.is_finite() or trip.size <= 0:
            raise InvalidArgument.field(f"round_trips[{index}].size", f"must be positive, not {trip.size}")
        if not trip.pnl.is_finite():
            raise InvalidArgument.field(f"round_trips[{index}].pnl", f"{trip.pnl} is not a finite number")


def _check_fills(fills: Sequence[FillRecord]) -> None:
    for index, fill in enumerate(fills):
        if fill.side not in _FILL_SIDES:
            raise InvalidArgument.field(f"fills[{index}].side", f"{fill.side!r} is not buy or sell")
        if not fill.size.is_finite() or fill.size <= 0:
            raise InvalidArgument.field(f"fills[{index}].size", f"must be positive, not {fill.size}")
        for name in ("price", "fee"):
            value: Decimal = getattr(fill, name)
            if not value.is_finite():
                raise InvalidArgument.field(f"fills[{index}].{name}", f"{value} is not a finite number")
