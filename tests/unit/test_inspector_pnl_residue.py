"""PnL without Decimal residue (issue 57 item 16d): a position bought at 100 and 101 and sold at
the same prices made exactly 0, not the -1E-26 its average entry (a 28-digit quotient) left:
the answers show "0", the trade is no loss for the loss streak, and a drawdown's risk event shows
plain decimals."""

from __future__ import annotations

from tests.inspector_support import MS, T0, D, core, fill, intent, market
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.policies import LossPolicy, PolicySet
from trademesh.core.inspector.views import positions_view, risk_state


def test_a_trade_closed_at_what_it_cost_made_zero_and_is_no_loss() -> None:
    c = core()
    for size, price in (("1", "100"), ("2", "101")):
        entry = c.on_intent(intent(size=size, price=price), market(price), T0).orders[0]
        c.on_fill("sim", fill(entry, price=price), T0)
    assert c.book.positions.positions[("sim", "BTC/USDT")].avg_price != D(100)  # 302/3, 28 digits
    c.on_mark("sim", "BTC/USDT", D(101), T0 + MS)
    (view,) = positions_view(c, "", {}, set())
    assert len(view.unrealized_pnl.partition(".")[2]) <= 12  # 0.666666666667, not 28 digits
    for size, price in (("1", "100"), ("2", "101")):
        exit_ = c.on_intent(intent(Side.SELL, size=size, price=price, reduce_only=True), market(price), T0)
        c.on_fill("sim", fill(exit_.orders[0], price=price), T0 + 2 * MS)
    answer = risk_state(c, T0 + 3 * MS, {})
    assert answer.realized_pnl == "0"
    assert c.streak.count == 0  # a trade of PnL 0 is not a losing one


def test_a_drawdowns_event_shows_plain_decimals() -> None:
    c = core(PolicySet(loss=LossPolicy(max_drawdown=D("0.01"))), equity=D(1000))
    for size, price in (("1", "100"), ("2", "101")):
        entry = c.on_intent(intent(size=size, price=price), market(price), T0).orders[0]
        c.on_fill("sim", fill(entry, price=price), T0)
    # The peak was 1001 (the first lot marked at 101); 3 x 96.66 - 302 = -12.02: 987.98.
    out = c.on_mark("sim", "BTC/USDT", D("96.66"), T0 + MS)
    event = next(e for e in out.events if e.action is RiskAction.STAND_DOWN)
    shown = (event.value("value"), event.value("limit"), event.value("equity"))
    assert shown == ("0.01300699", "0.01", "987.98")  # 13.02 / 1001 to 8 places
