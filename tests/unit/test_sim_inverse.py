"""The sim's inverse perpetuals (BTC/USD:BTC, contracts of 10 USD settled in BTC): fees, locks,
realised PnL and funding in the coin, by the arithmetic of trademesh/core/domain/inverse.py.

The figures are the ledger's worked example (docs/ledger.md, "Worked example: an inverse
perpetual"), checked by hand: open 30,000 USD at 50,000, add 20,000 at 40,000, reduce 25,000 at
55,000; taker fee 0.05% of the coin value.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.domain.inverse import coin_pnl
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.funding import FundingTerms
from trademesh.core.domain.matching.inverse import InversePosition, funding_amount
from trademesh.core.domain.model import InstrumentKind, OrderRequest, OrderType, Side, TimeInForce
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.venues.sim.config import load_config
from trademesh.venues.sim.symbols import instruments

D = Decimal
S = 1_000_000_000
BUY, SELL = Side.BUY, Side.SELL
INV = "BTC/USD:BTC"
CONFIG = """
[[symbols]]
symbol = "BTC/USD:BTC"
start_price = "50000"
tick_size = "0.5"
lot_size = "1"
contract_value = "10"
funding_rate = "0.0001"
funding_interval_s = 10
"""


class Clock:
    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def make(tmp_path: Path, clock: Clock, btc: str = "1") -> SimExchange:
    path = tmp_path / "sim.toml"
    path.write_text(CONFIG)
    config = load_config(path)
    return SimExchange(
        "sim", instruments(config), maker_fee_rate=D("0.0002"), taker_fee_rate=D("0.0005"),
        balances={"BTC": D(btc)}, clock=clock, funding={INV: FundingTerms(D("0.0001"), 10)},
    )  # fmt: skip


def ticks(price: str) -> int:
    return int(D(price) / D("0.5"))


def market(side: Side, size: str, **kw: object) -> OrderRequest:
    return OrderRequest(INV, side, OrderType.MARKET, D(size), None, TimeInForce.IOC, **kw)  # type: ignore[arg-type]


def limit(side: Side, price: str, size: str) -> OrderRequest:
    return OrderRequest(INV, side, OrderType.LIMIT, D(size), D(price), TimeInForce.GTC)


def btc(exchange: SimExchange) -> tuple[Decimal, Decimal]:
    balance = next(b for b in exchange.balances() if b.asset == "BTC")
    return balance.free, balance.locked


def test_an_inverse_symbol_is_listed_with_its_face_value(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(CONFIG)
    [inv] = instruments(load_config(path))
    assert (inv.kind, inv.native_symbol, inv.settle_asset) == (InstrumentKind.PERPETUAL, "BTCUSD-INV", "BTC")
    assert (inv.contract_size, inv.contract_value, inv.contract_value_asset, inv.inverse) == (
        D(0),
        D(10),
        "USD",
        True,
    )
    assert inv.notional(D(3), D(50000)) == D(30)  # its face, whatever the price


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (CONFIG.replace("BTC/USD:BTC", "BTC/USD:USD"), r"contract_value: is for inverse perpetuals only"),
        (CONFIG.replace("BTC/USD:BTC", "BTC/USD:ETH"), r"settle in the quote asset .* or in the base"),
        (CONFIG.replace('contract_value = "10"', 'contract_value = "0"'), r"contract_value"),
    ],
)
def test_bad_inverse_symbols_are_refused(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=says):
        load_config(path)


def test_the_worked_example_books_fees_and_realised_pnl_in_the_coin(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    exchange.submit_synthetic(INV, SELL, ticks("50000"), 3000)
    order, _ = exchange.place(market(BUY, "3000"))  # 30,000 USD at 50,000: 0.6 BTC
    assert (order.filled_size, order.average_fill_price) == (D(3000), D(50000))
    assert btc(exchange) == (D(1) - D("0.0003"), D(0))  # the fee 0.6 x 0.0005, no BTC bought
    exchange.submit_synthetic(INV, SELL, ticks("40000"), 2000)
    exchange.place(market(BUY, "2000"))  # 20,000 USD at 40,000: 0.5 BTC, fee 0.00025
    [position] = exchange.positions(INV)
    # 50,000 USD for 1.1 BTC: the harmonic mean 45,454.54..., not the arithmetic 46,000
    assert (position.size, position.entry_price) == (D(5000), D("45454.545454545454545455"))
    exchange.submit_synthetic(INV, BUY, ticks("55000"), 2500)
    exchange.place(market(SELL, "2500"))  # 25,000 USD at 55,000
    [position] = exchange.positions(INV)
    # released 1.1 x 25000 / 50000 = 0.55, worth now 25000 / 55000 = 0.454545454545
    assert position.realized_pnl == D("0.095454545455")
    assert position.size == D(2500) and position.entry_price == D("45454.545454545454545455")
    fees = D("0.0003") + D("0.00025") + D("0.000227272727")
    assert btc(exchange) == (D(1) - fees + D("0.095454545455"), D(0))


def test_a_short_gains_the_coin_when_the_price_falls_and_a_flip_opens_at_the_fill(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    exchange.submit_synthetic(INV, BUY, ticks("55000"), 1500)
    exchange.place(market(SELL, "1500"))  # short 15,000 USD at 55,000
    exchange.submit_synthetic(INV, SELL, ticks("50000"), 2500)
    exchange.place(market(BUY, "2500"))  # closes the short at 50,000, opens a long of 1,000
    [position] = exchange.positions(INV)
    # 15000 x (1/50000 - 1/55000): 0.3 - 0.272727272727
    assert position.realized_pnl == D("0.027272727273") == coin_pnl(D(-15000), D(55000), D(50000))
    assert (position.size, position.entry_price) == (D(1000), D(50000))


def test_a_resting_order_locks_its_worst_fee_in_the_coin(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    buy, _ = exchange.place(limit(BUY, "40000", "100"))  # 1,000 USD: 0.025 BTC at 40,000
    assert btc(exchange) == (D(1) - D("0.0000125"), D("0.0000125"))  # x max(0.0002, 0.0005)
    exchange.cancel(buy.order_id)
    assert btc(exchange) == (D(1), D(0))
    poor = make(tmp_path, Clock(5 * S), btc="0.00001")
    with pytest.raises(FailedPrecondition, match="insufficient BTC"):
        poor.place(limit(BUY, "40000", "100"))


def test_a_maker_fill_pays_the_maker_rate_of_its_coin_worth(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    exchange.place(limit(SELL, "50000", "1000"))  # rests: 10,000 USD
    exchange.submit_synthetic(INV, BUY, ticks("50000"), 1000)  # a synthetic taker lifts it
    [position] = exchange.positions(INV)
    assert position.size == D(-1000) and position.entry_price == D(50000)
    assert btc(exchange) == (D(1) - D("0.00004"), D(0))  # 0.2 BTC x 0.0002, the rest unlocked


def test_an_inverse_position_pays_its_face_times_rate_over_the_mark(tmp_path: Path) -> None:
    clock = Clock(5 * S)
    exchange = make(tmp_path, clock)
    exchange.submit_synthetic(INV, SELL, ticks("50000"), 2500)
    exchange.place(market(BUY, "2500"))  # long 25,000 USD
    exchange.submit_synthetic(INV, BUY, ticks("49000"), 10)
    exchange.submit_synthetic(INV, SELL, ticks("51000"), 10)  # mid 50,000
    before = btc(exchange)[0]
    clock.now_ns = 10 * S
    [payment] = exchange.settle_funding()
    assert (payment.asset, payment.rate, payment.position_size) == ("BTC", D("0.0001"), D(2500))
    assert payment.amount == D("-0.00005")  # 25000 x 0.0001 / 50000, the long pays
    assert btc(exchange)[0] == before + payment.amount
    # a short of 70 USD at 30,000 receives 0.007 / 30000, rounded half-even to 1e-12
    assert funding_amount(D(10), D(-7), D(30000), D("0.0001")) == D("0.000000233333")


def test_the_position_books_as_the_ledger_books_a_reduce() -> None:
    position = InversePosition(D(1))
    position.apply(D(30000), D(50000))
    position.apply(D(20000), D(40000))
    assert position.cost == D("1.1")
    position.apply(D(-25000), D(55000))
    assert (position.cost, position.realized) == (D("0.55"), D("0.095454545455"))
    position.apply(D(-25000), D(60000))  # closes: the whole cost is released
    assert position.cost == 0 and position.size == 0
    assert position.realized == D("0.095454545455") + D("0.55") - D("0.416666666667")


def test_an_orders_average_fill_price_is_the_harmonic_mean_by_face(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    exchange.submit_synthetic(INV, SELL, ticks("40000"), 1000)  # 10,000 USD: 0.25 BTC
    exchange.submit_synthetic(INV, SELL, ticks("50000"), 2000)  # 20,000 USD: 0.4 BTC
    order, _ = exchange.place(market(BUY, "3000"))
    # 30,000 USD for 0.65 BTC, not the arithmetic mean by size (46,666.67)
    assert order.average_fill_price == D("46153.846153846153846154")
    [position] = exchange.positions(INV)
    assert position.entry_price == order.average_fill_price
    one = make(tmp_path, Clock(5 * S))
    one.submit_synthetic(INV, SELL, ticks("65005"), 100)
    single, _ = one.place(market(BUY, "100"))
    assert str(single.average_fill_price) == "65005"  # one fill: its price, no trailing digits
    assert str(one.positions(INV)[0].entry_price) == "65005"  # not the rounded cost's 65004.9999987
