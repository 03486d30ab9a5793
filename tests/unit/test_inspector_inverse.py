"""The inspector values an inverse contract (Deribit's BTC-PERPETUAL: 1 USD a unit of size,
settled in BTC) by its face value, not size x price: order and position notional, exposure and
capital in use in the quote asset (the ALLOW event adds the notional in the coin); its PnL is
size x value x (1/entry - 1/exit) of the coin, valued in the quote at the price it is taken at,
its fee in the coin valued at the fill's price, its average entry the harmonic mean. Drawdown
and the loss streak follow from those."""

from __future__ import annotations

from decimal import Decimal

from tests.inspector_support import MS, T0, D, core, fill, intent, market, state
from trademesh.core.domain.inverse import coin_pnl
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskState
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.policies import (
    CapitalPolicy,
    ExposurePolicy,
    LossPolicy,
    OrderPolicy,
    PolicySet,
    PositionPolicy,
)

VENUE, SYMBOL = "deribit", "BTC/USD:BTC"
KEY = (VENUE, SYMBOL)
PERPETUAL = InstrumentFacts(
    tick_size=D("0.5"), lot_size=D(10), min_size=D(10), contract_value=D(1), inverse=True,
    kind=InstrumentKind.PERPETUAL,
)  # fmt: skip


def inverse_core(policies: PolicySet | None = None, equity: Decimal | None = None) -> InspectorCore:
    c = core(policies, D(100_000) if equity is None else equity)
    c.on_instruments(VENUE, {SYMBOL: PERPETUAL}, T0)
    return c


def usd(size: str, price: str = "50000", side: Side = Side.BUY, **fields: object) -> object:
    return intent(side, size, price, venue=VENUE, symbol=SYMBOL, **fields)  # type: ignore[arg-type]


def test_an_orders_notional_is_its_face_value_and_the_allow_says_it_in_the_coin() -> None:
    c = inverse_core(PolicySet(orders=OrderPolicy(max_notional=D(1000))))
    allowed = c.on_intent(usd("1000"), market("50000"), T0)  # type: ignore[arg-type]
    assert allowed.action is RiskAction.ALLOW
    values = dict(allowed.reasons[0].values)
    assert (values["notional"], values["notional_coin"]) == ("1000", "0.02")  # 1000 USD at 50,000
    blocked = c.on_intent(usd("1010"), market("50000"), T0)  # type: ignore[arg-type]
    assert blocked.action is RiskAction.BLOCK
    assert dict(blocked.reasons[0].values) == {"value": "1010", "limit": "1000", "notional_coin": "0.0202"}


def test_position_exposure_and_capital_count_the_face_value() -> None:
    for policies, policy in (
        (PolicySet(position=PositionPolicy(max_notional=D(5000))), "position.max_notional"),
        (PolicySet(exposure=ExposurePolicy(max_gross=D(5000))), "exposure.max_gross"),
        (PolicySet(exposure=ExposurePolicy(max_net=D(5000))), "exposure.max_net"),
        (PolicySet(capital=CapitalPolicy(reserved={"trend": D(5000)})), "capital.reserved"),
    ):
        c = inverse_core(policies)
        first = c.on_intent(usd("3000"), market("50000"), T0)  # type: ignore[arg-type]
        assert first.allowed, policy
        c.on_fill(VENUE, fill(first.orders[0], price="50000"), T0)
        assert c.on_intent(usd("2000", "60000"), market("60000"), T0).allowed, policy  # type: ignore[arg-type]
        over = c.on_intent(usd("10", "60000"), market("60000"), T0)  # type: ignore[arg-type]
        assert over.action is RiskAction.BLOCK and over.reasons[0].policy == policy
        assert dict(over.reasons[0].values)["value"] == "5010"


def test_the_pnl_of_a_round_trip_is_the_coin_gained_valued_at_the_exit() -> None:
    c = inverse_core()
    entry = c.on_intent(usd("30000"), market("50000"), T0).orders[0]  # type: ignore[arg-type]
    # Deribit's taker fee, 0.05% of 0.6 BTC: 0.0003 BTC, 15 USD at 50,000
    c.on_fill(VENUE, fill(entry, price="50000", fee="0.0003"), T0)
    assert c.fees == D(15)
    position = c.book.positions.positions[KEY]
    # at 60,000: 30000 x (1/50000 - 1/60000) = 0.1 BTC, 6,000 USD there
    assert position.unrealized(D(60000), c.book.inverse(KEY)) == D(6000)
    assert coin_pnl(D(30000), D(50000), D(60000)) * 60000 == D(6000)
    exit_ = c.on_intent(usd("30000", "60000", Side.SELL, reduce_only=True), market("60000"), T0).orders[0]  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(exit_, price="60000", fee="0.00025"), T0 + MS)
    assert position.realized == D(6000) and position.size == 0
    assert c.fees == D(15) + D(15)  # 0.00025 BTC at 60,000
    assert c.book.equity(D(100_000), c.fees) == D(100_000) + D(6000) - D(30)


def test_the_average_entry_of_an_inverse_position_is_the_harmonic_mean() -> None:
    c = inverse_core()
    first = c.on_intent(usd("30000"), market("50000"), T0).orders[0]  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(first, price="50000"), T0)
    second = c.on_intent(usd("20000", "40000"), market("40000"), T0).orders[0]  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(second, price="40000"), T0)
    position = c.book.positions.positions[KEY]
    # 50,000 USD for 0.6 + 0.5 BTC: 45,454.54...
    assert position.avg_price == D(50000) / D("1.1")
    # selling all at 55,000 realises 50000 x (1.1/50000 - 1/55000) = 1.1 - 0.9090... = 0.1909...
    # BTC, 10,500 USD there
    exit_ = c.on_intent(usd("50000", "55000", Side.SELL, reduce_only=True), market("55000"), T0).orders[0]  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(exit_, price="55000"), T0)
    assert position.realized.quantize(D("0.000001")) == D(10500)


def test_a_drawdown_in_the_face_value_stands_down() -> None:
    c = inverse_core(PolicySet(loss=LossPolicy(max_drawdown=D("0.1"))), equity=D(100_000))
    entry = c.on_intent(usd("200000"), market("50000"), T0).orders[0]  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(entry, price="50000"), T0)
    # 200,000 USD long from 50,000 at 47,500: 200000 x -2500 / 50000 = -10,000: 10%, at the limit
    assert c.on_mark(VENUE, SYMBOL, D(47500), T0 + MS).events == ()
    assert state(c) is RiskState.ACTIVE
    # a linear valuation (size x price) would have stood down on the first move: 200000 x -2500
    c.on_mark(VENUE, SYMBOL, D("47499.5"), T0 + 2 * MS)
    assert state(c) is RiskState.STANDING_DOWN


def test_markets_without_inverse_facts_are_valued_as_before() -> None:
    c = core(PolicySet(orders=OrderPolicy(max_notional=D(1000))))
    assert c.on_intent(intent(size="10", price="100"), market(), T0).allowed
    assert c.on_intent(intent(size="10.01", price="100"), market(), T0).action is RiskAction.BLOCK


def test_okx_contracts_are_valued_at_their_100_usd_face() -> None:
    c = core(PolicySet(orders=OrderPolicy(max_notional=D(1000))))
    swap = InstrumentFacts(lot_size=D(1), min_size=D(1), contract_value=D(100), inverse=True)
    c.on_instruments("okx-swap", {SYMBOL: swap}, T0)
    okx = intent(size="10", price="50000", venue="okx-swap", symbol=SYMBOL)
    allowed = c.on_intent(okx, market("50000"), T0)
    assert allowed.allowed and dict(allowed.reasons[0].values)["notional_coin"] == "0.02"
    over = c.on_intent(intent(size="11", price="50000", venue="okx-swap", symbol=SYMBOL), market("50000"), T0)
    assert dict(over.reasons[0].values) == {"value": "1100", "limit": "1000", "notional_coin": "0.022"}
