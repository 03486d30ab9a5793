"""A backtest's books margin a perpetual's fill at the leverage in force at the replayed venue, as
the live ledger does with the venue's GetLeverage (docs/ledger.md, "Margin"); without a venue's
leverage (an unmargined replay) at 1x, as before."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.backtest.books import BooksStage
from trademesh.core.domain.model import (
    Execution,
    Fill,
    Instrument,
    InstrumentKind,
    Liquidity,
    Order,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.ledger.engine import chart

D = Decimal
PERP = "BTC/USDT:USDT"
LINEAR = Instrument(
    "sim", PERP, "BTCUSDT-PERP", InstrumentKind.PERPETUAL, "BTC", "USDT", "USDT", D("0.1"), D("0.001")
)


def bought(price: str, size: str) -> Execution:
    fill = Fill("f1", "1", "c1", PERP, Side.BUY, D(price), D(size), D("0.2"), "USDT", Liquidity.TAKER, "", 2)
    order = Order("sim", "1", "c1", PERP, Side.BUY, OrderType.MARKET, TimeInForce.IOC, None, D(size))
    return Execution(2, order, fill)


@pytest.mark.parametrize(("leverage", "held"), [(None, D(200)), (D(10), D(20)), (D("12.5"), D(16))])
def test_a_perpetual_fill_holds_its_notional_over_the_venues_leverage(
    leverage: Decimal | None, held: Decimal
) -> None:
    asked: list[str] = []

    def leverage_of(symbol: str) -> Decimal:
        asked.append(symbol)
        assert leverage is not None
        return leverage

    books = BooksStage("sim", {PERP: LINEAR}, leverage_of=None if leverage is None else leverage_of)
    books.open({"USDT": D(1000)}, 1)
    books.execution(bought("100", "2"))  # 200 USDT of notional
    assert books.refused == []
    assert books.core.books.balance(chart.cash_margin("sim", "USDT")).debits_pending == held
    assert asked == ([] if leverage is None else [PERP])
