"""The inspector values a linear contract of a contract value other than one base unit (OKX's
BTC-USDT-SWAP: 0.01 BTC a contract, settled in USDT) as size x contract value x price: order,
position and exposure notional, its PnL size x value x (exit - entry), its unrealised PnL and the
equity it moves. Before, a contract counted as one whole BTC: 100 times its notional."""

from __future__ import annotations

from tests.inspector_support import MS, T0, D, core, fill, intent, market
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.policies import OrderPolicy, PolicySet, PositionPolicy

VENUE, SYMBOL = "okx-swap", "BTC/USDT:USDT"
KEY = (VENUE, SYMBOL)
SWAP = InstrumentFacts(
    tick_size=D("0.1"), lot_size=D("0.1"), min_size=D("0.1"), contract_value=D("0.01"),
    kind=InstrumentKind.PERPETUAL,
)  # fmt: skip


def swap_core(policies: PolicySet | None = None) -> InspectorCore:
    c = core(policies)
    c.on_instruments(VENUE, {SYMBOL: SWAP}, T0)
    return c


def contracts(size: str, price: str = "96000", side: Side = Side.BUY, **fields: object) -> object:
    return intent(side, size, price, venue=VENUE, symbol=SYMBOL, **fields)  # type: ignore[arg-type]


def test_an_orders_notional_is_contracts_times_their_value_times_the_price() -> None:
    c = swap_core(PolicySet(orders=OrderPolicy(max_notional=D(10_000))))
    # 10 contracts of 0.01 BTC at 96,000: 9,600 USDT (it read as 960,000)
    allowed = c.on_intent(contracts("10"), market("96000"), T0)  # type: ignore[arg-type]
    assert allowed.action is RiskAction.ALLOW
    assert dict(allowed.reasons[0].values)["notional"] == "9600"
    over = c.on_intent(contracts("10.5"), market("96000"), T0)  # type: ignore[arg-type]
    assert over.action is RiskAction.BLOCK and dict(over.reasons[0].values)["value"] == "10080"


def test_a_positions_notional_counts_the_contract_value() -> None:
    c = swap_core(PolicySet(position=PositionPolicy(max_notional=D(20_000))))
    first = c.on_intent(contracts("15"), market("96000"), T0)  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(first.orders[0], price="96000"), T0)
    assert c.on_intent(contracts("5"), market("96000"), T0).allowed  # type: ignore[arg-type]
    # 15 + 5 working + 1 = 21 contracts: 20,160 USDT, over the 20,000
    over = c.on_intent(contracts("1"), market("96000"), T0)  # type: ignore[arg-type]
    assert over.action is RiskAction.BLOCK and over.reasons[0].policy == "position.max_notional"


def test_the_pnl_of_a_round_trip_is_contracts_times_value_times_the_move() -> None:
    c = swap_core()
    entry = c.on_intent(contracts("10"), market("96000"), T0).orders[0]  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(entry, price="96000", fee="4.8"), T0)
    position = c.book.positions.positions[KEY]
    # 0.1 BTC long from 96,000 at 97,000: 100 USDT
    assert position.unrealized(D(97000), None, c.book.multiplier(KEY)) == D(100)
    c.on_mark(VENUE, SYMBOL, D(97000), T0 + MS)
    assert c.book.equity(D(100_000), c.fees) == D(100_000) + D(100) - D("4.8")
    exit_ = c.on_intent(contracts("10", "97000", Side.SELL, reduce_only=True), market("97000"), T0).orders[0]  # type: ignore[arg-type]
    c.on_fill(VENUE, fill(exit_, price="97000", fee="4.85"), T0 + MS)
    assert position.realized == D(100) and position.size == 0


def test_spot_and_markets_without_facts_are_valued_as_before() -> None:
    c = core(PolicySet(orders=OrderPolicy(max_notional=D(1000))))
    assert c.on_intent(intent(size="10", price="100"), market(), T0).allowed
    assert c.on_intent(intent(size="10.01", price="100"), market(), T0).action is RiskAction.BLOCK
