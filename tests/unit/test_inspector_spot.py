"""A spot market is never sold short (issue 37's chaos run): the inspector ALLOWed a sell entry
on a spot market with none of the base asset held, the sim filled it from the account's
deposited base, and the ledger refused the fill ("spot cannot be short"): the books no longer
matched the venue. A sell entry on spot sells what its strategy holds there, less its sells
already working; exits stay checked against the position; perpetuals (and markets of unknown
kind) are sold short as before; and a resting sell entry whose holding a stop sold first is
cancelled."""

from __future__ import annotations

from tests.inspector_support import MS, T0, D, cancelled, core, fill, intent, market, placed, update
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import InstrumentKind, OrderStatus, Side
from trademesh.core.inspector.driver import apply_entry
from trademesh.core.inspector.engine.actions import OrderRole
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskVerdict
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.risk.v1 import journal_pb2 as jr

SPOT = InstrumentFacts(lot_size=D("0.00001"), kind=InstrumentKind.SPOT)
PERPETUAL = InstrumentFacts(lot_size=D("0.00001"), kind=InstrumentKind.PERPETUAL)
SELL = Side.SELL


def told(c: InspectorCore, facts: InstrumentFacts | None = SPOT) -> InspectorCore:
    if facts is not None:
        c.on_instruments("sim", {"BTC/USDT": facts}, T0)
    return c


def bought(c: InspectorCore, size: str = "1", strategy: str = "trend") -> None:
    """A long of `size` of `strategy`'s, filled."""
    verdict = c.on_intent(intent(size=size, strategy=strategy), market(), T0)
    c.on_fill("sim", fill(verdict.orders[0]), T0 + MS)


def spot_short(verdict: RiskVerdict) -> dict[str, str]:
    assert verdict.action is RiskAction.BLOCK and verdict.orders == ()
    (event,) = [e for e in verdict.reasons if e.policy == "position.spot_short"]
    assert event.reason.startswith("a spot market cannot be sold short: holding ")
    return dict(event.values)


def test_a_sell_entry_on_spot_with_nothing_held_is_blocked() -> None:
    verdict = told(core()).on_intent(intent(SELL, size="0.01"), market(), T0)
    assert [e.policy for e in verdict.reasons] == ["position.spot_short"]
    assert verdict.reasons[0].reason == (
        "a spot market cannot be sold short: holding 0 of BTC (strategy 'trend'); a sell of 0.01 is more"
    )
    assert spot_short(verdict) == {"holding": "0", "selling": "0", "deliverable": "0", "size": "0.01"}


def test_the_kind_is_the_venues_journaled_instrument() -> None:
    """The shell journals the venue's ListInstruments entry; its kind reaches the core."""
    c = core()
    listed = common.Instrument(
        venue="sim", symbol="BTC/USDT", kind=common.INSTRUMENT_KIND_SPOT, base_asset="BTC", quote_asset="USDT"
    )
    apply_entry(
        c, jr.JournalEntry(now_ns=T0, instruments=jr.JournalInstruments(venue="sim", instruments=[listed]))
    )
    assert c.instruments[("sim", "BTC/USDT")].kind is InstrumentKind.SPOT
    spot_short(c.on_intent(intent(SELL, size="0.01"), market(), T0))


def test_a_sell_that_closes_a_long_is_allowed_and_no_more() -> None:
    c = told(core())
    bought(c, "1")
    first = c.on_intent(intent(SELL, size="0.6", price="101"), market(), T0 + 2 * MS)  # rests
    assert first.action is RiskAction.ALLOW
    values = spot_short(c.on_intent(intent(SELL, size="0.5"), market(), T0 + 3 * MS))
    assert values == {"holding": "1", "selling": "0.6", "deliverable": "0.4", "size": "0.5"}
    assert c.on_intent(intent(SELL, size="0.4"), market(), T0 + 4 * MS).action is RiskAction.ALLOW


def test_a_strategy_sells_only_what_it_holds() -> None:
    """The books are per strategy: a manual sell of the trend strategy's long is refused there."""
    c = told(core())
    bought(c, "1", strategy="trend")
    values = spot_short(c.on_intent(intent(SELL, size="0.5", strategy="manual"), market(), T0 + 2 * MS))
    assert values["holding"] == "0"
    assert c.on_intent(intent(SELL, size="0.5", strategy="trend"), market(), T0 + 3 * MS).allowed


def test_exits_on_spot_stay_allowed_within_the_position() -> None:
    c = told(core())
    bought(c, "1")
    exit_ = c.on_intent(intent(SELL, size="1", price=None, reduce_only=True), market(), T0 + 2 * MS)
    assert exit_.action is RiskAction.ALLOW and exit_.orders[0].reduce_only
    over = c.on_intent(intent(SELL, size="0.1", price=None, reduce_only=True), market(), T0 + 3 * MS)
    assert [e.policy for e in over.reasons] == ["exit.reduce_only"]
    # The working exit takes the holding: no entry sells it again.
    spot_short(c.on_intent(intent(SELL, size="0.1"), market(), T0 + 4 * MS))


def test_perpetuals_and_markets_of_unknown_kind_are_sold_short_as_before() -> None:
    for facts in (PERPETUAL, None):
        verdict = told(core(), facts).on_intent(intent(SELL, size="0.01"), market(), T0)
        assert verdict.action is RiskAction.ALLOW and verdict.orders[0].side is SELL, facts


def test_a_legacy_long_is_not_ours_to_sell() -> None:
    c = told(core())
    c.on_legacy("sim", "BTC/USDT", D("2"), D("100"), T0)
    verdict = c.on_intent(intent(SELL, size="0.5"), market(), T0)
    assert [e.policy for e in verdict.reasons] == ["legacy.opposite", "position.spot_short"]


def test_a_resting_sell_entry_is_cancelled_once_a_stop_sold_the_holding_first() -> None:
    """A limit sell resting above the market and the position's stop below it: the stop fills
    first, and the sell, filling later, would sell what is gone."""
    c = told(core())
    verdict = c.on_intent(intent(size="1", stop="95", target="110"), market(), T0)
    opened = c.on_fill("sim", fill(verdict.orders[0]), T0 + MS)
    stop = next(o for o in placed(opened.actions) if o.role is OrderRole.STOP_LOSS)
    resting = c.on_intent(intent(SELL, size="1", price="105"), market(), T0 + 2 * MS).orders[0]
    # Its own fills keep it: what it sold left the holding as its rest.
    part = c.on_fill("sim", fill(resting, "0.25", price="105"), T0 + 3 * MS)
    assert resting.client_order_id not in cancelled(part.actions)
    out = c.on_fill("sim", fill(stop, "0.75", price="95"), T0 + 4 * MS)
    assert resting.client_order_id in cancelled(out.actions)
    (event,) = [e for e in out.events if e.policy == "position.spot_short"]
    assert event.action is RiskAction.NOTICE and event.strategy_id == "trend"
    assert dict(event.values)["holding"] == "0" and dict(event.values)["size"] == "0.75"
    # Cancelled once: the next fill asks nothing again.
    c.on_order_update(update(resting, OrderStatus.CANCELED, "0.25"), T0 + 5 * MS)
    assert not c.book.orders.entries()


def test_on_a_perpetual_a_resting_sell_outliving_the_long_stays() -> None:
    c = told(core(), PERPETUAL)
    verdict = c.on_intent(intent(size="1", stop="95", target="110"), market(), T0)
    opened = c.on_fill("sim", fill(verdict.orders[0]), T0 + MS)
    stop = next(o for o in placed(opened.actions) if o.role is OrderRole.STOP_LOSS)
    resting = c.on_intent(intent(SELL, size="1", price="105"), market(), T0 + 2 * MS).orders[0]
    out = c.on_fill("sim", fill(stop, price="95"), T0 + 3 * MS)
    assert resting.client_order_id not in cancelled(out.actions)
