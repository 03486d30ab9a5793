"""A backtest on an inverse perpetual (BTC/USD:BTC, 10 USD contracts, settled in BTC): the sim's
matching engine fills it in the coin (trademesh/core/domain/matching/inverse.py), and the run's books
(the live ledger's core, posting the same fills) agree with the venue to the coin: realised PnL,
fees, funding and cash, none of them refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.outcome import RunOutcome, outcome
from trademesh.core.backtest.run import Backtest
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.summary import summary
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.domain.matching.inverse import contract_fee
from trademesh.core.domain.model import Fill
from trademesh.core.ledger.engine import chart

D = Decimal
INV = "BTC/USD:BTC"
TREND = Path("trademesh/core/detector/strategies/trend.toml")
# 30 minutes of 1 s steps; the book 5,000 contracts (50,000 USD) a level, a dollar apart.
SPEC = Walk(
    symbol=INV, steps=1800, volatility=0.001, tick=D(1), level_size=D(5000), trade_size=D(100)
)  # fmt: skip
SIM = """
maker_fee_rate = "0.0002"
taker_fee_rate = "0.0005"
[balances]
BTC = "10"
[[symbols]]
symbol = "BTC/USD:BTC"
tick_size = "0.5"
lot_size = "1"
min_size = "1"
contract_value = "10"
funding_rate = "0.001"
funding_interval_s = 60
"""


def _venue_fills(done: RunOutcome) -> list[Fill]:
    """The venue's fills as it reported them (fees in BTC)."""
    return [e.fill for e in done.tape.orders if e.fill is not None]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunOutcome, Backtest]:
    path = tmp_path_factory.mktemp("inverse") / "sim.toml"
    path.write_text(SIM)
    config = BacktestConfig(
        strategies=(TREND,), start_ns=SPEC.start_ns, end_ns=SPEC.start_ns + SPEC.steps * SPEC.step_ns,
        symbols=(INV,), sample_s=60, sim_config=path,
    )  # fmt: skip
    backtest = build(config)
    return outcome(drive_sync(backtest, walk(SPEC)), backtest.settings.sample_ns), backtest


def test_the_run_trades_the_inverse_perpetual_with_fees_in_the_coin(run: tuple[RunOutcome, Backtest]) -> None:
    done, _ = run
    fills = _venue_fills(done)
    assert len(fills) >= 2, "the trend strategy opened and closed a position"
    for fill in fills:
        assert fill.symbol == INV and fill.fee_asset == "BTC"
        # the maker (0.02%) or taker (0.05%) rate of the fill's coin worth, contracts x 10 USD / price
        rates = (D("0.0002"), D("0.0005"))
        assert fill.fee in {contract_fee(D(10), fill.price, fill.size, rate) for rate in rates}
    # the run's fill records (its metrics' fees) value the coin at the fill's price, in USD
    assert [r.fee for r in done.fills] == [f.fee * f.price for f in fills]


def test_the_books_realise_what_the_venue_realised(run: tuple[RunOutcome, Backtest]) -> None:
    done, backtest = run
    books = backtest.books
    assert books.refused == []
    [position] = backtest.market.positions(INV)
    lines = books.pnl({})
    assert set(asset for _, asset in lines) == {"BTC"}
    assert position.realized_pnl != 0
    assert sum((line.realised for line in lines.values()), D(0)) == position.realized_pnl
    assert sum((line.fees for line in lines.values()), D(0)) == -sum(
        (f.fee for f in _venue_fills(done)), D(0)
    )
    assert sum((line.funding for line in lines.values()), D(0)) == sum(
        (p.amount for p in done.tape.funding), D(0)
    )


def test_the_books_cash_is_the_venues_to_the_coin(run: tuple[RunOutcome, Backtest]) -> None:
    _, backtest = run
    books = backtest.books
    venue_cash = books.core.books.balance(chart.venue_cash("sim", "BTC")).net_debit
    held = {b.asset: b.total for b in backtest.market.balances()}["BTC"]
    assert venue_cash == held
    fees = -sum((line.fees for line in books.pnl({}).values()), D(0))
    realised = sum((line.realised for line in books.pnl({}).values()), D(0))
    funding = sum((line.funding for line in books.pnl({}).values()), D(0))
    assert held == D(10) + realised - fees + funding


def test_inverse_funding_is_paid_in_the_coin(run: tuple[RunOutcome, Backtest]) -> None:
    done, _ = run
    assert done.tape.funding, "a position was held across a funding time"
    for payment in done.tape.funding:
        assert payment.asset == "BTC" and payment.rate == D("0.001")
        size = payment.position_size
        assert size is not None and payment.amount * size < 0  # longs pay, shorts receive
        # face x rate / mark: a coin amount to 1e-12, at most the face x rate over the lowest price seen
        assert payment.amount == payment.amount.quantize(D("1e-12"))
    line = next(text for text in summary(done) if text.startswith("funding:"))
    assert line.endswith(" BTC")


def test_the_strategys_equity_values_its_coin_pnl_at_the_coins_price(
    run: tuple[RunOutcome, Backtest],
) -> None:
    done, backtest = run
    marks = {("sim", s): p for s, p in backtest.last_price.items()}
    line = backtest.books.pnl(marks)[("trend", "BTC")]
    start, price = backtest.settings.starting_equity, backtest.last_price[INV]
    assert line.total != 0
    assert done.tape.strategy_curves["trend"][-1].equity == start + line.total * price
    # the account's curve: its BTC at the last price (USD is the quote: nothing else held)
    btc = {b.asset: b.total for b in backtest.market.balances()}["BTC"]
    assert done.tape.curve[-1].equity == btc * price
