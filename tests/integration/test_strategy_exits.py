"""A strategy's own exits with real processes (a sim venue, an inspector, a detector, Redis and
PostgreSQL): the strategy holds a position, hears it back from the inspector, asks to close it
by its own request, and the inspector places the exit (reduce-only, under the intent id the
request makes) and cancels the protective pair; a close for a strategy with no position is
refused with a risk event naming why; and a stand-down is heard by the strategies.

The position is opened by a SubmitIntent in the strategy's name (what the advisor's intent on
its signal would be: the advisor is not part of this test)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterable, AsyncIterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import grpc
import pytest

from tests.integration.inspector_mesh import AUTH, InspectorMesh, inspector_mesh, intent
from tests.integration.mesh import stream_entries
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.inspector.requests import request_intent_id
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import POSITION_REQUESTS
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.patch.v1 import patch_pb2 as patch_pb
from trademesh.patch.v1 import patch_pb2_grpc as patch_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
__all__ = ["database_url", "redis_url"]  # fixtures

WAIT_S = 60.0
LOT = Decimal("0.00001")  # the spot BTC/USDT's
PERP = "BTC/USDT:USDT"  # a flip opens a short: a spot market is never sold short
# The sim's spot BTC/USDT (the inspector mesh's) and a linear perpetual beside it.
# Levels 1 USDT apart and 5-contract makers: at 0.1 USDT a jump past the 20 levels left a side empty.
SIM_CONFIG = f"""
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
level_spacing_ticks = 100
maker_size_lots = 5000
[[symbols]]
symbol = "{PERP}"
start_price = "65000"
tick_size = "0.1"
lot_size = "0.001"
maker_size_lots = 5000
"""
# Closes the position as soon as it hears it holds one.
EXIT_SOON = """
id = "exit_soon"
venues = ["sim"]
symbols = ["BTC/USDT"]
cables = ["position.open -> exit.trigger"]

[[modules]]
id = "position"
type = "strategy_position"

[[modules]]
id = "exit"
type = "position"
params = { action = "close" }
"""
# Takes half its position off as soon as it hears it holds one.
REDUCE_HALF = """
id = "reduce_half"
venues = ["sim"]
symbols = ["BTC/USDT"]
cables = ["position.open -> exit.trigger"]

[[modules]]
id = "position"
type = "strategy_position"

[[modules]]
id = "exit"
type = "position"
params = { action = "reduce", fraction = 0.5 }
"""
# Flips a long to a short as soon as it hears it holds one.
FLIP_SHORT = """
id = "flip_short"
venues = ["sim"]
symbols = ["BTC/USDT:USDT"]
cables = ["position.long -> flip.trigger"]

[[modules]]
id = "position"
type = "strategy_position"

[[modules]]
id = "flip"
type = "position"
params = { action = "flip", side = "short" }
"""
# Asks to close, holding nothing, each time it hears the inspector is not standing down.
GHOST = """
id = "ghost"
venues = ["sim"]
symbols = ["BTC/USDT"]
cables = ["stood_down.value -> calm.a", "calm.out -> exit.trigger"]

[[modules]]
id = "stood_down"
type = "external_flag"
params = { name = "inspector.stood_down" }

[[modules]]
id = "calm"
type = "not"

[[modules]]
id = "exit"
type = "position"
params = { action = "close" }
"""


def _detector(mesh: InspectorMesh, database: str, directory: Path) -> ServiceProcess:
    files = []
    for name, text in (
        ("exit_soon", EXIT_SOON),
        ("reduce_half", REDUCE_HALF),
        ("flip_short", FLIP_SHORT),
        ("ghost", GHOST),
    ):
        path = directory / f"{name}.toml"
        path.write_text(textwrap.dedent(text))
        files += ["--strategy", str(path)]
    assert mesh.process is not None
    args = [
        "detector", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={mesh.venue.address}",
        "--database-url", database, "--inspector", mesh.process.address, "--feedback-every-ms", "200", *files,
    ]  # fmt: skip
    with (directory / "detector.log").open("w") as log_file:
        return start_service(args, env={TOKEN: TEST_TOKEN, REDIS_URL: mesh.bus}, stderr=log_file)


@pytest.fixture
async def mesh(tmp_path: Path, redis_url: str, database_url: str) -> AsyncIterator[tuple[InspectorMesh, str]]:
    async with (
        new_database(database_url, "exits") as database,
        inspector_mesh(tmp_path, redis_url, venue_config=SIM_CONFIG) as inspector,
    ):
        detector = _detector(inspector, database, tmp_path)
        try:
            yield inspector, detector.address
        finally:
            await asyncio.to_thread(detector.terminate)


async def _refusals(mesh: InspectorMesh, strategy: str) -> list[rk.RiskEvent] | None:
    events = await mesh.events(strategy_id=strategy, policy="request.no_position")
    return events or None


async def _requests(bus_url: str, strategy: str) -> list[sig.PositionRequest]:
    entries = await stream_entries(bus_url, POSITION_REQUESTS)
    return [
        r
        for fields in entries
        for r in decode(fields).position_requests.requests
        if r.strategy_id == strategy
    ]


async def _closed(mesh: InspectorMesh) -> dict[str, rk.OrderAudit] | None:
    """Flat at the venue and in the inspector, no order open, and the exit's audit filled: the
    strategy's orders by role."""
    if await mesh.positions() or await mesh.venue_position() != 0 or await mesh.open_orders():
        return None
    audit = await mesh.stub.GetAudit(
        rk.GetAuditRequest(strategy_id="exit_soon"), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    by_role = {o.role: o for o in audit.orders}
    done = "exit" in by_role and by_role["exit"].status == tf.ORDER_STATUS_FILLED
    return by_role if done else None


async def test_a_strategy_closes_its_position_by_its_own_request_and_the_inspector_cancels_its_pair(
    mesh: tuple[InspectorMesh, str],
) -> None:
    inspector, _ = mesh
    opened = await inspector.submit(intent(size="0.01", strategy_id="exit_soon"))
    assert opened.action == rk.RISK_ACTION_ALLOW, opened
    held = Decimal(opened.order.filled_size)  # the IOC's fills (the book's depth may cut them)
    assert held > 0
    # The exit's order and the pair's cancels go out once the detector heard the position.
    by_role = await until(lambda: _closed(inspector), WAIT_S, 0.1, "the position closed, its pair cancelled")
    (request,) = await _requests(inspector.bus, "exit_soon")
    assert request.action == sig.POSITION_ACTION_CLOSE
    exit_ = by_role["exit"]
    assert exit_.intent_id == request_intent_id(request.request_id, "exit")
    assert exit_.status == tf.ORDER_STATUS_FILLED and Decimal(exit_.filled_size) == held
    assert exit_.side != by_role["entry"].side
    # At the venue: the exit the inspector placed (reduce-only), and the pair cancelled.
    venue = inspector.venue_stubs.tf
    placed = await venue.GetOrder(
        tf.GetOrderRequest(client_order_id=exit_.client_order_id), timeout=CALL_TIMEOUT_S
    )
    assert placed.order.reduce_only and placed.order.status == tf.ORDER_STATUS_FILLED
    everything = await inspector.stub.GetAudit(rk.GetAuditRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    pair = [o for o in everything.orders if o.role in ("stop_loss", "take_profit")]
    assert sorted(o.role for o in pair) == ["stop_loss", "take_profit"]
    for order in pair:
        at_venue = await venue.GetOrder(
            tf.GetOrderRequest(client_order_id=order.client_order_id), timeout=CALL_TIMEOUT_S
        )
        assert at_venue.order.status == tf.ORDER_STATUS_CANCELED, order.role


async def _halved(mesh: InspectorMesh, left: Decimal) -> tuple[list[tf.Order], rk.PositionView] | None:
    """The position down to `left`, at the venue and in the inspector (its fills heard), and the
    two protective orders resized to it."""
    orders, positions = await mesh.open_orders(), await mesh.positions()
    if await mesh.venue_position() != left or len(orders) != 2 or len(positions) != 1:
        return None
    resting = {Decimal(o.size) - Decimal(o.filled_size) for o in orders}
    return (orders, positions[0]) if resting == {left} and Decimal(positions[0].size) == left else None


async def test_a_reduce_by_the_strategys_own_request_shrinks_its_pair_to_what_is_left(
    mesh: tuple[InspectorMesh, str],
) -> None:
    inspector, _ = mesh
    opened = await inspector.submit(intent(size="0.02", strategy_id="reduce_half"))
    assert opened.action == rk.RISK_ACTION_ALLOW, opened
    held = Decimal(opened.order.filled_size)
    left = held - (held / 2).quantize(LOT, ROUND_DOWN)  # half off, down to the lot
    assert left > 0
    pair, position = await until(lambda: _halved(inspector, left), WAIT_S, 0.1, "half off, the pair resized")
    assert all(o.reduce_only for o in pair)
    (request,) = await _requests(inspector.bus, "reduce_half")
    assert request.action == sig.POSITION_ACTION_REDUCE and Decimal(request.fraction) == Decimal("0.5")
    assert [(v.name, Decimal(v.value)) for v in position.strategies] == [("reduce_half", left)]
    assert sorted(p.role for p in position.protective) == ["stop_loss", "take_profit"]
    assert {Decimal(p.size) for p in position.protective} == {left}


async def _short(mesh: InspectorMesh, size: Decimal) -> tuple[list[tf.Order], rk.PositionView] | None:
    """Short `size` of the perpetual at the venue and in the inspector, with the short's pair
    (two buys) working."""
    held = await mesh.venue_stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    at_venue = sum((Decimal(p.size) for p in held.positions if p.symbol == PERP), Decimal(0))
    orders = [o for o in await mesh.open_orders() if o.symbol == PERP]
    positions = [p for p in await mesh.positions() if p.symbol == PERP]
    if at_venue != -size or len(orders) != 2 or len(positions) != 1:
        return None
    if Decimal(positions[0].size) != -size or {o.side for o in orders} != {common.SIDE_BUY}:
        return None
    return orders, positions[0]


async def test_a_flip_by_the_strategys_own_request_closes_the_long_then_opens_a_protected_short(
    mesh: tuple[InspectorMesh, str],
) -> None:
    inspector, _ = mesh
    opened = await inspector.submit(intent(size="0.01", symbol=PERP, strategy_id="flip_short"))
    assert opened.action == rk.RISK_ACTION_ALLOW, opened
    held = Decimal(opened.order.filled_size)
    assert held > 0
    pair, position = await until(lambda: _short(inspector, held), WAIT_S, 0.1, "flipped short, protected")
    assert all(o.reduce_only and Decimal(o.size) == held for o in pair)
    assert [(v.name, Decimal(v.value)) for v in position.strategies] == [("flip_short", -held)]
    assert Decimal(position.stop_loss) > Decimal(position.average_price) > Decimal(position.take_profit)
    (request,) = await _requests(inspector.bus, "flip_short")
    audit = await inspector.stub.GetAudit(
        rk.GetAuditRequest(strategy_id="flip_short"), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    legs = {o.intent_id: o for o in audit.orders}
    close, open_ = (legs[request_intent_id(request.request_id, leg)] for leg in ("exit", "open"))
    assert (close.role, open_.role) == ("exit", "entry") and close.placed_ns <= open_.placed_ns
    assert close.side == open_.side == common.SIDE_SELL


async def test_a_close_with_no_position_is_refused_and_a_stand_down_is_heard(
    mesh: tuple[InspectorMesh, str],
) -> None:
    inspector, detector = mesh
    (refused, *_) = await until(lambda: _refusals(inspector, "ghost"), WAIT_S, 0.1, "the ghost's refusal")
    assert refused.action == rk.RISK_ACTION_BLOCK
    assert "holds no position" in refused.reason and "ghost" in refused.reason
    assert (refused.venue, refused.symbol) == ("sim", "BTC/USDT")
    assert await inspector.open_orders() == [] and await inspector.venue_position() == 0
    async with grpc.aio.insecure_channel(detector) as channel:
        probes = patch_grpc.PatchStub(channel).StreamProbes(
            patch_pb.StreamProbesRequest(patch_id="ghost/sim/BTC/USDT", ports=["stood_down.value"]),
            metadata=AUTH,
        )
        await inspector.stub.SetMode(
            rk.SetModeRequest(mode=rk.MODE_STAND_DOWN, reason="test: news"),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )
        await asyncio.wait_for(_told_true(probes), WAIT_S)  # the ghost heard the stand-down
        probes.cancel()
    before = len(await _requests(inspector.bus, "ghost"))
    await inspector.stub.SetMode(
        rk.SetModeRequest(mode=rk.MODE_RESUME, reason="test: calm"), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )

    async def asked_again() -> int | None:
        count = len(await _requests(inspector.bus, "ghost"))
        return count if count > before else None

    await until(asked_again, WAIT_S, 0.1, "the ghost's close once resumed")
    await until(lambda: _more(inspector, before), WAIT_S, 0.1, "its refusal too")


async def _told_true(probes: AsyncIterable[patch_pb.StreamProbesResponse]) -> None:
    async for answer in probes:
        if any(u.value.boolean for u in answer.updates):
            return


async def _more(mesh: InspectorMesh, count: int) -> bool | None:
    events = await mesh.events(strategy_id="ghost", policy="request.no_position")
    return True if len(events) > count else None
