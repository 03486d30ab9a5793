"""trademesh.core.backtest.metrics against figures worked out by hand and recomputed here with numpy and
statistics (another code path), its edge cases, bad input, and two properties (hypothesis)."""

from __future__ import annotations

import ast
import calendar
import dataclasses
import math
import statistics
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, localcontext
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.core.backtest.metrics import (
    DAY_NS,
    MAX_SAMPLES,
    TOTAL,
    by_strategy,
    compute,
    drawdowns,
    monthly_returns,
    sampled_returns,
)
from trademesh.core.backtest.results import BacktestRoundTrip, EquityPoint, FillRecord, Metrics
from trademesh.core.platform.errors import InvalidArgument

T0 = calendar.timegm((2024, 1, 1, 0, 0, 0)) * 10**9
HOUR = 3600 * 10**9

# A hand-made daily curve (equity, gross exposure), day 0..5:
#   equity   100  110   99   99  121  110
#   exposure   0   50   50    0   20    0
# daily returns: +0.10, -0.10, 0, 22/99 = +0.2222, -11/121 = -0.0909
# total return 110/100 - 1 = 0.10
# max drawdown: peak 110 -> 99 is 11/110 = 0.10 (peak 121 -> 110 is only 0.0909)
# Sharpe: mean 0.02626 / sample stdev 0.13620 * sqrt(365) = 3.684
# Sortino: downside deviation sqrt((0.1^2 + 0.0909^2) / 5) = 0.06044; 0.02626 / 0.06044 * sqrt(365) = 8.30
# CAGR over 5 days: 1.1 ** (365 / 5) - 1 = 1050.15; Calmar 1050.15 / 0.10 = 10501.5
# exposure: > 0 from day 1 to day 3 and from day 4 to day 5: 3 of 5 days = 0.6
# average equity (each value holds a day, the last none): (100 + 110 + 99 + 99 + 121) / 5 = 105.8
# fill notional: 0.5 * 100 + 0.5 * 98 + 0.2 * 100 + 0.2 * 95 = 50 + 49 + 20 + 19 = 138
# turnover 138 / 105.8 = 1.3043
# round trips' pnl +10, -5, +3, 0: win rate 2 / 4 = 0.5 (break-even is no win), profit factor 13 / 5 = 2.6
EQUITY = ["100", "110", "99", "99", "121", "110"]
EXPOSURE = ["0", "50", "50", "0", "20", "0"]
CURVE = [
    EquityPoint(T0 + i * DAY_NS, D(e), D(x)) for i, (e, x) in enumerate(zip(EQUITY, EXPOSURE, strict=True))
]


def fill(day: int, side: str, price: str, size: str, fee: str = "0.01", strategy: str = "s") -> FillRecord:
    return FillRecord(T0 + day * DAY_NS, strategy, "sim", "BTC/USDT", side, D(price), D(size), D(fee))


def trip(pnl: str, strategy: str = "s", side: str = "long", size: str = "1") -> BacktestRoundTrip:
    return BacktestRoundTrip(
        strategy, "sim", "BTC/USDT", side, T0, T0 + DAY_NS, D(size), D(100), D(101), D(0), D(pnl)
    )


FILLS = [
    fill(1, "buy", "100", "0.5", "0.05"),
    fill(3, "sell", "98", "0.5", "0.049"),
    fill(4, "buy", "100", "0.2", "0.02"),
    fill(5, "sell", "95", "0.2", "-0.001"),  # a rebate
]
TRIPS = [trip("10"), trip("-5"), trip("3", side="short"), trip("0")]


def test_the_hand_made_curve_gives_the_figures_worked_out_by_hand_and_by_numpy() -> None:
    m = compute(CURVE, TRIPS, FILLS)
    equity = np.array([float(e) for e in EQUITY])
    returns = equity[1:] / equity[:-1] - 1
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(365)
    sortino = returns.mean() / math.sqrt(np.mean(np.minimum(returns, 0) ** 2)) * math.sqrt(365)
    drawdown = float(np.max(1 - equity / np.maximum.accumulate(equity)))

    assert m.total_return == D("0.1")
    assert m.max_drawdown == D("0.1")
    assert drawdown == pytest.approx(0.1)
    assert m.sharpe == pytest.approx(sharpe, rel=1e-12)
    assert m.sharpe == pytest.approx(3.684, abs=1e-3)
    assert m.sortino == pytest.approx(sortino, rel=1e-12)
    assert m.sortino == pytest.approx(8.302, abs=1e-3)
    assert m.cagr == pytest.approx(1.1 ** (365 / 5) - 1, rel=1e-9)
    assert m.calmar == pytest.approx((1.1 ** (365 / 5) - 1) / 0.1, rel=1e-9)
    assert m.win_rate == 0.5
    assert m.profit_factor == pytest.approx(2.6)
    assert m.exposure == pytest.approx(0.6)
    assert m.turnover == pytest.approx(138 / 105.8, rel=1e-12)
    assert m.fees == D("0.118")  # 0.05 + 0.049 + 0.02 - 0.001, exact
    assert m.trades == 4
    assert (m.start_equity, m.end_equity) == (D(100), D(110))


def test_sharpe_and_sortino_match_statistics_on_weekly_samples() -> None:
    # 29 daily points sampled every 7 days: samples at days 0, 7, 14, 21, 28 (the last point).
    equity = [100 + (i * 37) % 11 for i in range(29)]  # weekly: 100, 106, 101, 107, 102
    curve = [EquityPoint(T0 + i * DAY_NS, D(e), D(0)) for i, e in enumerate(equity)]
    weekly = equity[::7]
    returns = [weekly[k] / weekly[k - 1] - 1 for k in range(1, len(weekly))]
    assert len(returns) == 4
    assert min(returns) < 0 < max(returns)
    periods = 365 / 7
    m = compute(curve, [], [], period_ns=7 * DAY_NS)
    assert sampled_returns(curve, 7 * DAY_NS) == pytest.approx(returns, rel=1e-12)
    assert m.sharpe == pytest.approx(
        statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(periods)
    )
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / len(returns))
    assert m.sortino == pytest.approx(statistics.mean(returns) / downside * math.sqrt(periods))


def test_samples_carry_the_last_point_forward_and_leave_the_partial_tail_out() -> None:
    # Points at 0 h, 36 h, 53 h, 88 h; samples at 0, 24, 48, 72 h: 100, 100, 120, 90 (88 h left out).
    curve = [
        EquityPoint(T0, D(100), D(0)),
        EquityPoint(T0 + 36 * HOUR, D(120), D(0)),
        EquityPoint(T0 + 53 * HOUR, D(90), D(0)),
        EquityPoint(T0 + 88 * HOUR, D(500), D(0)),
    ]
    assert sampled_returns(curve) == pytest.approx([0.0, 0.2, -0.25])
    # Total return and drawdown use every point, the tail included.
    m = compute(curve, [], [])
    assert m.total_return == D(4)
    assert m.max_drawdown == D("0.25")


def test_equal_times_are_allowed_and_the_later_point_wins() -> None:
    curve = [
        EquityPoint(T0, D(100), D(0)),
        EquityPoint(T0 + DAY_NS, D(50), D(0)),
        EquityPoint(T0 + DAY_NS, D(80), D(0)),
    ]
    assert sampled_returns(curve) == pytest.approx([-0.2])
    assert compute(curve, [], []).max_drawdown == D("0.5")  # every point counts for the drawdown


def test_monthly_returns_chain_month_ends() -> None:
    def at(y: int, mo: int, d: int, h: int = 0) -> int:
        return calendar.timegm((y, mo, d, h, 0, 0)) * 10**9

    curve = [
        EquityPoint(at(2023, 12, 15), D(100), D(0)),
        EquityPoint(at(2024, 1, 20), D(120), D(0)),
        EquityPoint(at(2024, 2, 10), D(90), D(0)),
        EquityPoint(at(2024, 3, 31, 23), D(99), D(0)),
        EquityPoint(at(2024, 4, 1), D(110), D(0)),  # the first instant of April: April's
    ]
    assert monthly_returns(curve) == {
        (2023, 12): D(0),  # 100 -> 100
        (2024, 1): D("0.2"),  # 100 -> 120
        (2024, 2): D("-0.25"),  # 120 -> 90
        (2024, 3): D("0.1"),  # 90 -> 99
        (2024, 4): D(110) / D(99) - 1,
    }
    assert monthly_returns([]) == {}


def test_profit_factor_and_win_rate_edge_cases() -> None:
    only_wins = compute(CURVE, [trip("2"), trip("0")], [])
    assert only_wins.profit_factor is None  # no losing trade: undefined
    assert only_wins.win_rate == 0.5
    only_losses = compute(CURVE, [trip("-2")], [])
    assert only_losses.profit_factor == 0.0
    assert only_losses.win_rate == 0.0
    no_trades = compute(CURVE, [], [])
    assert (no_trades.trades, no_trades.win_rate, no_trades.profit_factor) == (0, 0.0, None)
    assert no_trades.turnover == 0.0
    assert no_trades.fees == D(0)


def test_an_empty_curve_gives_zeros_and_keeps_the_trade_figures() -> None:
    m = compute([], TRIPS, FILLS)
    assert (m.total_return, m.max_drawdown, m.start_equity, m.end_equity) == (D(0), D(0), D(0), D(0))
    assert (m.cagr, m.sharpe, m.sortino, m.calmar, m.exposure, m.turnover) == (0.0,) * 6
    assert (m.trades, m.win_rate, m.fees) == (4, 0.5, D("0.118"))


def test_one_point_gives_zeros_and_turnover_against_its_equity() -> None:
    m = compute([EquityPoint(T0, D(200), D(10))], [], [fill(0, "buy", "100", "1")])
    assert (m.total_return, m.max_drawdown) == (D(0), D(0))
    assert (m.cagr, m.sharpe, m.sortino, m.calmar, m.exposure) == (0.0,) * 5
    assert m.turnover == 0.5  # 100 / 200


def test_flat_equity_has_zero_ratios() -> None:
    curve = [EquityPoint(T0 + i * DAY_NS, D(1000), D(0)) for i in range(30)]
    m = compute(curve, [], [])
    assert (m.sharpe, m.sortino, m.cagr, m.calmar) == (0.0, 0.0, 0.0, 0.0)
    assert (m.total_return, m.max_drawdown, m.exposure) == (D(0), D(0), 0.0)


def test_a_curve_that_never_falls_has_no_drawdown_and_a_zero_sortino_and_calmar() -> None:
    curve = [EquityPoint(T0 + i * DAY_NS, D(100 + i * i), D(1)) for i in range(10)]
    m = compute(curve, [], [])
    assert m.max_drawdown == D(0)
    assert (m.sortino, m.calmar) == (0.0, 0.0)
    assert m.sharpe > 0
    assert m.exposure == 1.0


def test_ruin_and_huge_gains_give_numbers_not_errors() -> None:
    ruined = [
        EquityPoint(T0, D(100), D(0)),
        EquityPoint(T0 + DAY_NS, D(-20), D(0)),
        EquityPoint(T0 + 2 * DAY_NS, D(5), D(0)),
    ]
    m = compute(ruined, [], [])
    assert m.total_return == D("-0.95")
    assert m.max_drawdown == D("1.2")  # below zero: past 1
    assert sampled_returns(ruined) == [-1.2]  # no return from a non-positive equity
    wiped = compute(ruined[:2], [], [])
    assert wiped.cagr == -1.0
    rocket = [EquityPoint(T0, D(1), D(0)), EquityPoint(T0 + 1, D(10**6), D(0))]  # in one nanosecond
    assert compute(rocket, [], []).cagr == math.inf


def test_by_strategy_gives_each_strategy_its_own_records_and_a_total() -> None:
    half = [EquityPoint(p.ts_ns, p.equity / 2, p.exposure) for p in CURVE]
    flat = [EquityPoint(T0, D(55), D(0)), EquityPoint(T0 + 5 * DAY_NS, D(55), D(0))]
    fills = [*FILLS, fill(2, "buy", "10", "1", "0.5", strategy="b")]
    trips = [*TRIPS, trip("-1", strategy="b")]
    answer = by_strategy(CURVE, {"s": half, "b": flat}, trips, fills)
    assert list(answer) == ["b", "s", TOTAL]
    assert answer["s"] == compute(half, TRIPS, FILLS)
    assert answer["b"] == compute(flat, [trips[-1]], [fills[-1]])
    assert answer[TOTAL] == compute(CURVE, trips, fills)
    assert (answer["b"].trades, answer["b"].fees, answer["b"].profit_factor) == (1, D("0.5"), 0.0)
    assert answer["s"].sharpe == pytest.approx(answer[TOTAL].sharpe)  # half the equity: same returns
    assert answer["s"].turnover == pytest.approx(2 * 138 / 105.8)


def test_by_strategy_refuses_records_of_a_strategy_without_a_curve_and_a_strategy_named_total() -> None:
    with pytest.raises(InvalidArgument, match=r"fills\[4\]\.strategy: 'b' has no curve"):
        by_strategy(CURVE, {"s": CURVE}, TRIPS, [*FILLS, fill(2, "buy", "1", "1", strategy="b")])
    with pytest.raises(InvalidArgument, match=r"round_trips\[0\]\.strategy"):
        by_strategy(CURVE, {"b": CURVE}, TRIPS, [])
    with pytest.raises(InvalidArgument, match="strategy_curves"):
        by_strategy(CURVE, {TOTAL: CURVE}, [], [])


BAD = [
    ("period_ns", lambda: compute(CURVE, [], [], period_ns=0)),
    ("period_ns", lambda: compute(CURVE, [], [], period_ns=-DAY_NS)),
    ("period_ns", lambda: sampled_returns(CURVE, period_ns=5 * DAY_NS // (MAX_SAMPLES + 1))),
    ("curve[2].ts_ns", lambda: compute([CURVE[0], CURVE[2], CURVE[1]], [], [])),
    ("curve[0].equity", lambda: compute([EquityPoint(T0, D(0), D(0))], [], [])),
    ("curve[1].equity", lambda: compute([CURVE[0], EquityPoint(T0 + 1, D("NaN"), D(0))], [], [])),
    ("curve[1].exposure", lambda: compute([CURVE[0], EquityPoint(T0 + 1, D(1), D(-1))], [], [])),
    ("fills[0].side", lambda: compute(CURVE, [], [fill(1, "long", "1", "1")])),
    ("fills[0].size", lambda: compute(CURVE, [], [fill(1, "buy", "1", "0")])),
    ("fills[0].price", lambda: compute(CURVE, [], [fill(1, "buy", "Infinity", "1")])),
    ("round_trips[1].side", lambda: compute(CURVE, [trip("1"), trip("1", side="buy")], [])),
    ("round_trips[0].size", lambda: compute(CURVE, [trip("1", size="-1")], [])),
    ("curve[1].ts_ns", lambda: drawdowns([CURVE[1], CURVE[0]])),
    ("curve[1].ts_ns", lambda: monthly_returns([CURVE[1], CURVE[0]])),
]


@pytest.mark.parametrize(("field", "call"), BAD, ids=[f"{i}-{f}" for i, (f, _) in enumerate(BAD)])
def test_bad_input_raises_invalid_argument_naming_the_field(field: str, call: object) -> None:
    assert callable(call)
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert [v.field for v in caught.value.violations] == [field]


EQUITIES = st.lists(st.integers(1, 10**6), min_size=2, max_size=40)
SCALES = st.sampled_from(["0.001", "3", "7.25", "12345.6789"])


@settings(max_examples=200, deadline=None)
@given(equities=EQUITIES)
def test_max_drawdown_of_positive_equity_is_in_0_1_and_matches_numpy(equities: list[int]) -> None:
    curve = [EquityPoint(T0 + i * DAY_NS, D(e), D(0)) for i, e in enumerate(equities)]
    m = compute(curve, [], [])
    assert D(0) <= m.max_drawdown < D(1)
    values = np.array(equities, dtype=float)
    assert float(m.max_drawdown) == pytest.approx(float(np.max(1 - values / np.maximum.accumulate(values))))


@settings(max_examples=200, deadline=None)
@given(equities=EQUITIES, scale=SCALES, hours=st.integers(1, 48))
def test_scaling_equity_by_a_constant_leaves_the_ratios_unchanged(
    equities: list[int], scale: str, hours: int
) -> None:
    curve = [EquityPoint(T0 + i * hours * HOUR, D(e), D(e % 3)) for i, e in enumerate(equities)]
    scaled = [EquityPoint(p.ts_ns, p.equity * D(scale), p.exposure) for p in curve]
    a, b = compute(curve, [], []), compute(scaled, [], [])
    # Decimal division is correctly rounded and c*x/(c*y) = x/y exactly: the same figures, bit for bit.
    assert (a.total_return, a.max_drawdown, a.cagr, a.calmar) == (
        b.total_return,
        b.max_drawdown,
        b.cagr,
        b.calmar,
    )
    assert (a.sharpe, a.sortino, a.exposure) == (b.sharpe, b.sortino, b.exposure)


@settings(max_examples=300, deadline=None)
@given(seconds=st.integers(-(2 * 10**9), 8 * 10**9))
def test_a_point_falls_in_its_utc_calendar_month(seconds: int) -> None:
    moment = datetime.fromtimestamp(seconds, UTC)
    only = [EquityPoint(seconds * 10**9, D(1), D(0))]
    assert monthly_returns(only) == {(moment.year, moment.month): D(0)}


def test_the_callers_decimal_context_does_not_change_the_figures() -> None:
    expected = compute(CURVE, TRIPS, FILLS)
    with localcontext() as context:
        context.prec = 3
        context.rounding = ROUND_FLOOR
        assert compute(CURVE, TRIPS, FILLS) == expected


BANNED_MODULES = {
    "asyncio",
    "socket",
    "time",
    "datetime",
    "threading",
    "subprocess",
    "os",
    "pathlib",
    "io",
    "random",
}
BANNED_CALLS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter", "sleep", "open"}
PURE = [
    Path(__file__).parents[2] / "trademesh" / "core" / "backtest" / name
    for name in ("metrics.py", "results.py")
]


@pytest.mark.parametrize("path", PURE, ids=[path.name for path in PURE])
def test_the_metrics_modules_do_no_io_and_read_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {m for m in imported if m.split(".")[0] in BANNED_MODULES} == set()
    calls = {n.func for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = {c.attr for c in calls if isinstance(c, ast.Attribute)} | {
        c.id for c in calls if isinstance(c, ast.Name)
    }
    assert names & BANNED_CALLS == set()


def test_docs_backtest_md_gives_a_formula_for_every_metric() -> None:
    text = (Path(__file__).parents[2] / "docs" / "backtest.md").read_text()
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| `")}
    figures = {f"`{f.name}`" for f in dataclasses.fields(Metrics)} - {"`start_equity`", "`end_equity`"}
    assert figures - rows == set(), "docs/backtest.md, Formulas: add a row"
