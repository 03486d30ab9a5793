"""Margin and liquidation in the matching engine (trademesh/core/domain/matching/margin_account.py):
initial margin at order time, position margin held and released by fills, the figures at the
mark, and the engine's own liquidation order and fill at the bankruptcy price.

The book is moved by synthetic orders, as the sim's market moves it; the mark is its mid.
Figures are worked by hand in the comments (brackets: Binance USD-M BTCUSDT's, tier 1 0.4 %;
the liquidation fee 0.2 %, counted in the bankruptcy price: the margin pays the loss and the fee).
"""

from __future__ import annotations

import random
from decimal import Decimal, localcontext

import pytest

from trademesh.core.domain.matching.accounts import EXACT
from trademesh.core.domain.matching.exchange import NullListener, SimExchange
from trademesh.core.domain.matching.margin_account import MarginTerms
from trademesh.core.domain.model import (
    Execution,
    Instrument,
    InstrumentKind,
    MarginMode,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
PERP = "BTC/USDT:USDT"
INV = "BTC/USD:BTC"
LINEAR = Instrument(
    "sim", PERP, "BTCUSDT-PERP", InstrumentKind.PERPETUAL, "BTC", "USDT", "USDT", D("0.1"), D("0.001")
)
INVERSE = Instrument(
    "sim", INV, "BTCUSD-INV", InstrumentKind.PERPETUAL, "BTC", "USD", "BTC", D("0.1"), D(1),
    contract_size=D(0), contract_value=D(10), contract_value_asset="USD",
)  # fmt: skip


class Tape(NullListener):
    def __init__(self) -> None:
        self.executions: list[Execution] = []

    def on_execution(self, execution: Execution) -> None:
        self.executions.append(execution)


def make(
    instrument: Instrument = LINEAR, balance: str = "1000", **terms: object
) -> tuple[SimExchange, Tape, list[int]]:
    """An exchange (taker fee 0.1 %, maker 0) with a book 99 / 101 (ticks of 0.1): 5 BTC each side."""
    tape = Tape()
    exchange = SimExchange(
        "sim", [instrument], maker_fee_rate=D(0), taker_fee_rate=D("0.001"),
        balances={instrument.settle_asset: D(balance)}, clock=lambda: 5_000_000_000, listener=tape,
        margin=MarginTerms(**terms),  # type: ignore[arg-type]
    )  # fmt: skip
    ids = [
        exchange.submit_synthetic(instrument.symbol, BUY, 990, 10_000),
        exchange.submit_synthetic(instrument.symbol, SELL, 1010, 10_000),
    ]
    return exchange, tape, ids


def quote(exchange: SimExchange, ids: list[int], bid: int, ask: int, symbol: str = PERP) -> None:
    """The book moved: only a bid and an ask at these ticks (mark: their mid)."""
    for order_id in ids:
        exchange.cancel_synthetic(symbol, order_id)
    ids[:] = [
        exchange.submit_synthetic(symbol, BUY, bid, 5000),
        exchange.submit_synthetic(symbol, SELL, ask, 5000),
    ]


def market(side: Side, size: str, symbol: str = PERP, **kw: object) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, D(size), None, TimeInForce.IOC, **kw)  # type: ignore[arg-type]


def limit(side: Side, price: str, size: str, **kw: object) -> OrderRequest:
    return OrderRequest(PERP, side, OrderType.LIMIT, D(size), D(price), TimeInForce.GTC, **kw)  # type: ignore[arg-type]


def test_the_default_is_1x_cross_and_an_order_beyond_the_balance_is_refused() -> None:
    exchange, _, _ = make()
    setting = exchange.leverage(PERP)
    assert (setting.leverage, setting.mode, setting.max_leverage) == (D(1), MarginMode.CROSS, D(125))
    # 10 BTC at 100 at 1x: 1,000 of margin + 1 of fee (the dearer rate, 0.1 %) > 1,000 free.
    with pytest.raises(FailedPrecondition, match=r"insufficient USDT: need 1001, free 1000"):
        exchange.place(limit(BUY, "100", "10"))
    exchange.place(limit(BUY, "100", "9"))  # 900 + 0.9
    [usdt] = exchange.balances()
    assert (usdt.free, usdt.locked, usdt.position_margin) == (D("99.1"), D("900.9"), D(0))


def test_a_reduce_only_order_needs_no_margin() -> None:
    exchange, _, _ = make(leverage=D(10))
    exchange.place(market(BUY, "5"))  # 5 at 101: margin 50.5, fee 0.505
    [usdt] = exchange.balances()
    assert (usdt.free, usdt.locked, usdt.position_margin) == (D("948.995"), D("50.5"), D("50.5"))
    exchange.place(limit(SELL, "150", "5", reduce_only=True))  # its fee only: 750 x 0.1 %
    [usdt] = exchange.balances()
    assert (usdt.free, usdt.locked) == (D("948.995") - D("0.75"), D("50.5") + D("0.75"))


def test_an_isolated_long_is_liquidated_at_its_bankruptcy_price() -> None:
    exchange, tape, ids = make()
    exchange.set_leverage(PERP, D(10), MarginMode.ISOLATED)
    exchange.place(market(BUY, "5"))  # long 5 at 101: margin 50.5 held, fee 0.505
    resting, _ = exchange.place(limit(SELL, "120", "1"))  # canceled by the liquidation
    [position] = exchange.positions(PERP)
    margin = position.margin
    assert margin is not None
    # LP = (505 - 50.5) / (5 x 0.996) = 91.26506...; bankrupt where the loss and the fee spend the
    # 50.5: (505 - 50.5) / (5 x 0.998) = 91.0821..., a long's on the tick rounded up: 91.1.
    assert (margin.initial_margin, margin.liquidation_price) == (D("50.5"), D("91.265060240963855422"))
    assert (margin.mark_price, margin.unrealized_pnl, margin.maintenance_margin) == (D(100), D(-5), D(2))
    ratios = [margin.margin_ratio]  # 2 / 45.5

    quote(exchange, ids, 913, 915)  # mark 91.4: PnL -48, maintenance 1.828, balance 2.5
    assert exchange.check_liquidations() == []
    [position] = exchange.positions(PERP)
    assert position.margin is not None and position.margin.margin_ratio == D("0.7312")
    assert ratios[0] is not None and ratios[0] < position.margin.margin_ratio, "the ratio grows to 1"

    tape.executions.clear()
    quote(exchange, ids, 911, 913)  # mark 91.2: at or below 91.265: due
    [order] = exchange.check_liquidations()
    assert (order.liquidation, order.client_order_id, order.status, order.side) == (
        True, f"liq-{order.order_id}", OrderStatus.FILLED, SELL,
    )  # fmt: skip
    assert exchange.get(resting.order_id).status is OrderStatus.CANCELED
    fills = [e.fill for e in tape.executions if e.fill is not None]
    assert [(f.liquidation, f.price, f.size, f.fee, f.fee_asset) for f in fills] == [
        (True, D("91.1"), D(5), D("0.911"), "USDT")  # fee: 5 x 91.1 x 0.2 %
    ]
    statuses = [e.order.status for e in tape.executions if e.order.order_id == order.order_id]
    assert statuses == [OrderStatus.OPEN, OrderStatus.FILLED]
    # 1,000 - 0.505 (entry fee) - 49.5 ((91.1 - 101) x 5) - 0.911: of the margin, 0.089 is left
    [usdt] = exchange.balances()
    assert (usdt.free, usdt.locked, usdt.position_margin) == (D("949.084"), D(0), D(0))
    [position] = exchange.positions(PERP)
    assert (position.size, position.realized_pnl) == (D(0), D("-49.5"))


def test_a_cross_long_is_backed_by_the_whole_wallet() -> None:
    exchange, _, _ = make(leverage=D(10))
    exchange.place(market(BUY, "5"))  # wallet 999.495 after the fee
    [position] = exchange.positions(PERP)
    assert position.margin is not None
    # LP = (505 - 999.495) / (5 x 0.996) < 0: the wallet carries the whole notional.
    assert position.margin.liquidation_price is None

    exchange2, tape2, ids2 = make(balance="100", leverage=D(10))
    exchange2.place(market(BUY, "5"))  # wallet 99.495; LP = (505 - 99.495) / 4.98 = 81.4267...
    [position] = exchange2.positions(PERP)
    assert position.margin is not None and position.margin.mode is MarginMode.CROSS
    assert position.margin.liquidation_price == D("81.426706827309236948")
    quote(exchange2, ids2, 815, 817)  # mark 81.6
    assert exchange2.check_liquidations() == []
    quote(exchange2, ids2, 812, 814)  # mark 81.3
    [order] = exchange2.check_liquidations()
    # bankrupt where the wallet is gone: (505 - 99.495) / (5 x 0.998) = 81.2635..., on the tick 81.3
    fills = [e.fill for e in tape2.executions if e.fill is not None and e.fill.liquidation]
    assert [(f.price, f.fee) for f in fills] == [(D("81.3"), D("0.813"))]  # 406.5 x 0.2 %
    [usdt] = exchange2.balances()
    # 99.495 + (81.3 - 101) x 5 - 0.813: what the tick left
    assert (usdt.total, usdt.locked) == (D("0.182"), D(0))
    assert order.liquidation


def test_leverage_is_bounded_and_the_mode_fixed_while_a_position_is_open() -> None:
    exchange, _, _ = make()
    with pytest.raises(InvalidArgument, match="at most 125x"):
        exchange.set_leverage(PERP, D(126), None)
    exchange.set_leverage(PERP, D(5), None)
    exchange.place(market(BUY, "5"))  # margin 505 / 5 = 101
    assert exchange.balances()[0].position_margin == D(101)
    with pytest.raises(FailedPrecondition, match="margin mode"):
        exchange.set_leverage(PERP, D(5), MarginMode.ISOLATED)
    exchange.set_leverage(PERP, D(10), None)  # the position's margin follows: 50.5
    [usdt] = exchange.balances()
    assert (usdt.position_margin, usdt.locked) == (D("50.5"), D("50.5"))
    with pytest.raises(InvalidArgument, match="at least 1x"):
        exchange.set_leverage(PERP, D("0.5"), None)
    exchange.place(market(SELL, "5", reduce_only=True))
    assert exchange.balances()[0].position_margin == D(0)
    exchange.set_leverage(PERP, D(20), MarginMode.ISOLATED)  # flat: the mode may change
    assert exchange.leverage(PERP).mode is MarginMode.ISOLATED


def test_a_lower_leverage_the_free_balance_cannot_hold_is_refused() -> None:
    exchange, _, _ = make(balance="100", leverage=D(10))
    exchange.place(market(BUY, "5"))  # margin 50.5, fee 0.505: 48.995 free
    with pytest.raises(FailedPrecondition, match=r"insufficient USDT: need 50\.5, free 48\.995"):
        exchange.set_leverage(PERP, D(5), None)  # 101 of margin: 50.5 more
    assert exchange.leverage(PERP).leverage == D(10)
    assert exchange.balances()[0].position_margin == D("50.5")


def test_an_inverse_isolated_long_is_liquidated_in_the_coin() -> None:
    exchange, tape, ids = make(INVERSE, "1", leverage=D(10), mode=MarginMode.ISOLATED)
    quote(exchange, ids, 1000, 1010, INV)  # 100 / 101 USD
    exchange.place(market(BUY, "10", INV))  # 10 contracts (100 USD) at 101: worth 0.990099009901 BTC
    [position] = exchange.positions(INV)
    margin = position.margin
    assert margin is not None and margin.settle_asset == "BTC"
    # margin: 0.990099009901 / 10 = 0.0990099009901
    assert margin.initial_margin == D("0.0990099009901")
    quote(exchange, ids, 934, 936, INV)  # mark 93.5: LP = 100.4 / 1.0891089109911 = 92.185...
    assert exchange.check_liquidations() == []
    quote(exchange, ids, 914, 916, INV)  # mark 91.5
    [order] = exchange.check_liquidations()
    fills = [e.fill for e in tape.executions if e.fill is not None and e.fill.liquidation]
    # bankrupt: (100 + 0.2) / 1.0891089109911 = 92.0018..., a long's rounded up: 92.1;
    # fee 100 / 92.1 x 0.2 % in the coin, to 1e-12
    assert [(f.price, f.fee, f.fee_asset) for f in fills] == [(D("92.1"), D("0.00217155266"), "BTC")]
    assert order.liquidation and exchange.positions(INV)[0].size == 0
    assert exchange.balances()[0].position_margin == D(0)


def test_an_order_past_the_position_its_leverage_allows_is_refused() -> None:
    # At 125x the first tier allows notionals up to 50,000: 600 BTC at 100 is 60,000.
    exchange, _, _ = make(balance="100000", leverage=D(125))
    with pytest.raises(FailedPrecondition, match=r"notional 60000 USDT exceeds the 50000 allowed at 125x"):
        exchange.place(limit(BUY, "100", "600"))
    exchange.set_leverage(PERP, D(100), None)  # tier 2's: up to 250,000
    order, _ = exchange.place(limit(BUY, "100", "600"))
    assert order.status is OrderStatus.OPEN


ETH = Instrument(
    "sim",
    "ETH/USDT:USDT",
    "ETHUSDT-PERP",
    InstrumentKind.PERPETUAL,
    "ETH",
    "USDT",
    "USDT",
    D("0.1"),
    D("0.001"),
)


def test_cross_positions_sharing_the_wallet_are_liquidated_together() -> None:
    """A cross long of BTC and a cross short of ETH on 100 USDT at 10x: the BTC market falls, the
    account's equity reaches the two maintenance margins, and both close, the account's equity
    spent (less the dust the tick leaves), never below 0."""
    tape = Tape()
    exchange = SimExchange(
        "sim", [LINEAR, ETH], maker_fee_rate=D(0), taker_fee_rate=D("0.001"), balances={"USDT": D(100)},
        clock=lambda: 5_000_000_000, listener=tape, margin=MarginTerms(leverage=D(10)),
    )  # fmt: skip
    btc = [
        exchange.submit_synthetic(PERP, BUY, 990, 10_000),
        exchange.submit_synthetic(PERP, SELL, 1010, 10_000),
    ]
    exchange.submit_synthetic(ETH.symbol, BUY, 990, 10_000)
    exchange.submit_synthetic(ETH.symbol, SELL, 1010, 10_000)
    exchange.place(market(BUY, "4"))  # long 4 BTC at 101: margin 40.4
    exchange.place(market(SELL, "4", ETH.symbol))  # short 4 ETH at 99: margin 39.6
    # The wallet after the fees: 99.2; ETH's mark 100 (its PnL -4).
    quote(exchange, btc, 900, 902)  # BTC 90.1: equity 99.2 - 43.6 - 4 = 51.6 > 1.44 + 1.6 maintenance
    assert exchange.check_liquidations() == []
    quote(exchange, btc, 770, 772)  # BTC 77.1: equity 99.2 - 95.6 - 4 < 0
    closed = exchange.check_liquidations()
    # BTC first, bankrupt with ETH's PnL counted: (404 - 95.2) / (4 x 0.998) = 77.35.., at 77.4;
    # then ETH on what is left, 4.1808: (396 + 4.1808) / 4.008 = 99.85.., a short's down: 99.8.
    fills = [e.fill for e in tape.executions if e.fill is not None and e.fill.liquidation]
    assert [(f.symbol, f.price) for f in fills] == [(PERP, D("77.4")), (ETH.symbol, D("99.8"))]
    assert [o.symbol for o in closed] == [PERP, ETH.symbol] and all(o.liquidation for o in closed)
    assert [p.size for p in exchange.positions()] == [D(0), D(0)]
    [usdt] = exchange.balances()
    assert (usdt.total, usdt.position_margin) == (D("0.1824"), D(0))  # 4.1808 - 3.2 - 0.7984


@pytest.mark.parametrize("seed", range(6))
def test_the_kept_liquidation_prices_decide_as_the_full_reckoning_does(seed: int) -> None:
    """Random positions (isolated or cross, long or short, 2-50x) and marks: the check against each
    position's kept liquidation price says what reckoning every margin balance in full says."""
    rng = random.Random(seed)
    for _ in range(20):
        mode = rng.choice([MarginMode.CROSS, MarginMode.ISOLATED])
        exchange, _, ids = make(balance=str(rng.randint(60, 400)), leverage=D(rng.randint(2, 50)), mode=mode)
        side = rng.choice([BUY, SELL])
        try:
            exchange.place(market(side, str(rng.randint(1, 5))))
        except FailedPrecondition:
            continue  # more than the balance carries
        for _ in range(5):
            bid = rng.randint(700, 1300)
            quote(exchange, ids, bid, bid + rng.randint(1, 4))
            margin = exchange._margin
            assert margin is not None
            with localcontext(EXACT):
                assert margin.due() == margin._due_in_full()
