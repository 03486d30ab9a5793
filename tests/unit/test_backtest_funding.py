"""Funding in a backtest: a perpetual's position pays (or receives) size x mark x rate at each
funding time of the sim config's terms, at the replayed venue (its balances, so the account's
equity curve) and in the run's books, posted as the live ledger posts ListFundingPayments'
answers (trademesh.core.ledger.convert.funding_event), so each strategy's PnL carries its share."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.backtest.assemble import SIM_MARKET_KEYS, SIM_SYMBOL_KEYS, build, funding_terms
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.backtest.outcome import RunOutcome, outcome
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.summary import summary
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.domain.matching.config import instruments, load_exchange
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import OrderRequest, OrderType, Side, TimeInForce
from trademesh.core.ledger.engine import chart

D = Decimal
PERP = "BTC/USDT:USDT"
TREND = Path("trademesh/core/detector/strategies/trend.toml")
SPEC = Walk(symbol=PERP, steps=1800, volatility=0.001)  # 30 minutes of 1 s steps from 2026-01-01
_S = 1_000_000_000
SIM = """
maker_fee_rate = "0.0002"
taker_fee_rate = "0.0005"
[balances]
USDT = "1000000"
[[symbols]]
symbol = "BTC/USDT:USDT"
tick_size = "0.01"
lot_size = "0.00001"
min_size = "0.00001"
min_notional = "5"
funding_rate = "{rate}"
funding_interval_s = 60
"""


def sim_config(directory: Path, rate: str = "0.001") -> Path:
    path = directory / f"sim-{rate}.toml"
    path.write_text(SIM.format(rate=rate))
    return path


def test_an_open_position_pays_size_times_mark_times_rate_at_its_funding_time(tmp_path: Path) -> None:
    exchange = load_exchange(sim_config(tmp_path), SIM_MARKET_KEYS, SIM_SYMBOL_KEYS)
    (instrument,) = instruments(exchange, "sim")
    market = ReplayedMarket(
        "sim", [instrument], FeeSchedule(D(0), D(0)), dict(exchange.balances), Latency(0, 0),
        start_ns=SPEC.start_ns, funding=funding_terms(exchange),
    )  # fmt: skip
    first = list(walk(replace(SPEC, steps=1, trades_per_step=0)))
    for event in first:
        market.on_market(event)
    market.submit(
        OrderRequest(PERP, Side.BUY, OrderType.MARKET, D("0.5"), None, TimeInForce.IOC), SPEC.start_ns
    )
    market.advance(SPEC.start_ns)
    assert [p.size for p in market.positions(PERP)] == [D("0.5")]
    due = SPEC.start_ns + 60 * _S  # the first multiple of the interval after the opening
    assert market.next_funding_ns() == due
    assert market.settle_funding(due - 1) == []
    before = {b.asset: b.total for b in market.balances()}["USDT"]
    bid, ask = market.best(PERP)
    assert bid is not None and ask is not None
    mark = (bid + ask) * instrument.tick_size / 2
    (payment,) = market.settle_funding(due)
    assert (payment.ts_ns, payment.rate, payment.position_size) == (due, D("0.001"), D("0.5"))
    assert payment.amount == -(D("0.5") * mark * D("0.001"))  # the long pays
    assert {b.asset: b.total for b in market.balances()}["USDT"] == before + payment.amount
    assert market.next_funding_ns() == due + 60 * _S


def config(directory: Path, rate: str = "0.001") -> BacktestConfig:
    return BacktestConfig(
        strategies=(TREND,), start_ns=SPEC.start_ns, end_ns=SPEC.start_ns + SPEC.steps * SPEC.step_ns,
        symbols=(PERP,), sample_s=60, sim_config=sim_config(directory, rate),
    )  # fmt: skip


@pytest.fixture(scope="module")
def funded(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, object]:
    backtest = build(config(tmp_path_factory.mktemp("funding")))
    done = outcome(drive_sync(backtest, walk(SPEC)), backtest.settings.sample_ns)
    return done, backtest


def test_a_backtest_pays_funding_on_its_positions_at_the_funding_times(
    funded: tuple[RunOutcome, object],
) -> None:
    done, _ = funded
    payments = done.tape.funding
    assert done.fills, "the run traded the perpetual"
    assert payments, "a position was held across a funding time"
    for payment in payments:
        assert payment.ts_ns % (60 * _S) == 0 and payment.symbol == PERP and payment.asset == "USDT"
        size = payment.position_size
        assert payment.rate == D("0.001") and size is not None and size != 0
        assert payment.amount * size < 0  # a positive rate: longs pay, shorts receive
    assert [p.ts_ns for p in payments] == sorted(p.ts_ns for p in payments)


def test_the_runs_books_post_each_payment_as_the_live_ledger_does(funded: tuple[RunOutcome, object]) -> None:
    done, backtest = funded
    books = backtest.books  # type: ignore[attr-defined]
    assert books.refused == []
    total = sum((p.amount for p in done.tape.funding), D(0))
    lines = books.pnl({})
    assert sum((line.funding for line in lines.values()), D(0)) == total
    # the cash ledger holds what the venue holds, funding included (to the ledger's 1e-12: the
    # sim's average cost divides at 28 digits, the ledger rounds a released cost to 1e-12)
    venue_cash = books.core.books.balance(chart.venue_cash("sim", "USDT")).net_debit
    held = {b.asset: b.total for b in backtest.market.balances()}["USDT"]  # type: ignore[attr-defined]
    assert abs(venue_cash - held) < D("1e-12")
    funding_cash = books.core.books.balance(chart.cash_funding("sim", "USDT")).net_debit
    assert funding_cash == -total  # credit-normal: funding received less paid
    keys = [a.key for a in books.core.accounts.values() if a.key.code == chart.AccountCode.FUNDING_PNL]
    assert {k.strategy for k in keys} <= {"trend", ""} and keys


def test_the_summary_says_what_funding_paid(funded: tuple[RunOutcome, object]) -> None:
    done, _ = funded
    total = sum((p.amount for p in done.tape.funding), D(0))
    line = next(text for text in summary(done) if text.startswith("funding:"))
    count = len(done.tape.funding)
    rates = f"0 at recorded rates, {count} at the sim config's"
    assert line == f"funding: {count} payments ({rates}) · {total.normalize():f} USDT"


def test_the_strategys_equity_carries_its_funding(funded: tuple[RunOutcome, object]) -> None:
    done, backtest = funded
    books = backtest.books  # type: ignore[attr-defined]
    trend = books.pnl({})[("trend", "USDT")]
    assert trend.funding != 0
    # its last curve point: the starting equity plus realised, fees, funding and unrealised
    marks = {("sim", s): p for s, p in backtest.last_price.items()}  # type: ignore[attr-defined]
    last = books.pnl(marks)[("trend", "USDT")]
    start = backtest.settings.starting_equity  # type: ignore[attr-defined]
    assert done.tape.strategy_curves["trend"][-1].equity == start + last.total
