"""The inspector moves a position's protective orders by TradeFlow.AmendOrder where the venue
amends in place (the sim): real processes (a sim venue and an inspector on a real Redis)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.inspector_mesh import InspectorMesh, inspector_mesh, intent
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # sims and inspectors: not the fast tier
__all__ = ["redis_url"]  # fixtures

D = Decimal
WAIT_S = 30


async def _protection(mesh: InspectorMesh, layers: int, named_not: set[str]) -> list[tf.Order] | None:
    """The venue's reduce-only orders once they are exactly those the inspector's position names
    (a stop and a target per layer), and none of the client order ids in `named_not`."""
    positions = await mesh.positions()
    orders = [o for o in await mesh.open_orders() if o.reduce_only]
    if len(positions) != 1 or len(orders) != 2 * layers:
        return None
    named = {p.client_order_id for p in positions[0].protective}
    ids = {o.client_order_id for o in orders}
    return orders if ids == named and not ids & named_not else None


async def test_the_inspector_moves_its_stop_and_target_in_place_by_amending_them(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        mark = (await mesh.mark()).quantize(D(1))  # levels on the tick grid as they are
        first = await mesh.submit(intent(stop_loss=str(mark - 1000), take_profit=str(mark + 1000)))
        assert first.action == rk.RISK_ACTION_ALLOW, first
        before = await until(lambda: _protection(mesh, 1, set()), WAIT_S, 0.05, "the protective pair")
        # A second entry on the same side with levels of its own: the first layer is moved to
        # them by amendments, and a second layer protects the second entry.
        second = await mesh.submit(intent(stop_loss=str(mark - 900), take_profit=str(mark + 900)))
        assert second.action == rk.RISK_ACTION_ALLOW, second
        old_ids = {o.client_order_id for o in before}
        protection = await until(lambda: _protection(mesh, 2, old_ids), WAIT_S, 0.05, "the layers moved")
        # The first layer's orders still at the venue (amended in place, renamed): a cancelled
        # order never opens again, so they were never missing.
        by_id = {o.order_id: o for o in protection}
        moved = [by_id[o.order_id] for o in before]
        old_stop, stop = (next(o for o in pair if o.trigger_price) for pair in (before, moved))
        old_target, target = (
            next(o for o in pair if o.type == tf.ORDER_TYPE_LIMIT) for pair in (before, moved)
        )
        assert D(stop.trigger_price) == mark - 900 and D(old_stop.trigger_price) == mark - 1000
        assert D(target.price) == mark + 900 and D(old_target.price) == mark + 1000
        assert all(o.status == tf.ORDER_STATUS_OPEN and "amended" in o.status_reason for o in moved)
        stops = sum(D(o.size) for o in protection if o.trigger_price)
        assert stops == await mesh.venue_position()
