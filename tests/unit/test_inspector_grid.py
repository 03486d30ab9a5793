"""An intent off its instrument's grid (issue 57 item 16e): a limit price off the tick is BLOCKed
with the reason (the venue refused it after every policy passed); a size off the lot is rounded
down to it (never more than asked), and one below a lot BLOCKed. Facts not known: as before."""

from __future__ import annotations

from tests.inspector_support import T0, D, core, intent, market
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.inspector.engine.checks import ORDER_LOT, ORDER_TICK
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.instruments import InstrumentFacts

FACTS = InstrumentFacts(tick_size=D("0.01"), lot_size=D("0.001"), kind=InstrumentKind.SPOT)


def gridded_core() -> InspectorCore:
    c = core()
    c.on_instruments("sim", {"BTC/USDT": FACTS}, T0)
    return c


def test_a_limit_price_off_the_tick_is_blocked_naming_the_tick() -> None:
    c = gridded_core()
    verdict = c.on_intent(intent(size="0.01", price="100.005"), market(), T0)
    assert verdict.action is RiskAction.BLOCK and verdict.orders == ()
    (reason,) = verdict.reasons
    assert reason.policy == ORDER_TICK
    assert reason.reason == "limit price 100.005 is not a multiple of the tick size 0.01"


def test_a_size_off_the_lot_is_rounded_down_and_one_below_a_lot_blocked() -> None:
    c = gridded_core()
    verdict = c.on_intent(intent(size="0.0129", price="100.01"), market(), T0)
    assert verdict.action is RiskAction.ALLOW and verdict.orders[0].size == D("0.012")
    assert dict(verdict.reasons[0].values)["size"] == "0.012"
    tiny = c.on_intent(intent(Side.BUY, size="0.0009", price="100"), market(), T0)
    assert tiny.action is RiskAction.BLOCK and tiny.reasons[0].policy == ORDER_LOT


def test_without_the_instruments_facts_the_intent_goes_as_it_is() -> None:
    verdict = core().on_intent(intent(size="0.0129", price="100.005"), market(), T0)
    assert verdict.action is RiskAction.ALLOW and verdict.orders[0].size == D("0.0129")
