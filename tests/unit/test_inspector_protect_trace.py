"""Issue 37, item 10: a stop's or a target's fill traces back to its signal. Every protective
order carries its position's intent and strategy: those of the latest entry that opened or added
to the position (a position built by several entries is protected at the latest one's levels,
so its orders are that entry's)."""

from __future__ import annotations

from tests.inspector_support import MS, T0, amended, core, fill, intent, market, placed
from trademesh.core.inspector.engine.actions import OrderRole

SL, TP = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT


def test_protective_orders_carry_their_positions_latest_entrys_intent_and_strategy() -> None:
    c = core()
    first = c.on_intent(intent(size="1", stop="95", target="110", intent_id="i-trend"), market(), T0)
    protected = c.on_fill("sim", fill(first.orders[0]), T0 + MS)
    assert [(o.role, o.intent_id, o.strategy_id) for o in placed(protected.actions)] == [
        (SL, "i-trend", "trend"),
        (TP, "i-trend", "trend"),
    ]
    second = c.on_intent(
        intent(size="1", stop="96", target="111", intent_id="i-break", strategy="breakout"), market(), T0
    )
    added = c.on_fill("sim", fill(second.orders[0]), T0 + 2 * MS)
    # The first layer amended to the new levels, and the new layer: both the latest entry's.
    assert len(amended(added.actions)) == 2 and len(placed(added.actions)) == 4
    assert {(o.intent_id, o.strategy_id) for o in placed(added.actions)} == {("i-break", "breakout")}
