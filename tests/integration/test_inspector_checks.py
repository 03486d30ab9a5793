"""The inspector's checks through its real API (a real sim and inspector process, real Redis):
the shipped policy file and long reasons fit their fields; a policy update never switches limits
off by leaving them out, only by naming them, recorded and replayed; every intent's field is
checked for its meaning; a venue stood down by the reconciliation refuses intents from every way
in (issue 37, items 5, 6, 20, 21); a spot market is never sold short, from every way in."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.bus_signing import signed
from tests.integration.inspector_mesh import AUTH, InspectorMesh, inspector_mesh, intent
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.inspector.config import DEFAULT_POLICIES
from trademesh.core.inspector.engine.ids import entry_order_id
from trademesh.core.platform.bus.names import INTENTS
from trademesh.core.platform.rpc.limits import MAX_STRING_CHARS
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # sims and inspectors: not the fast tier
__all__ = ["redis_url"]  # fixtures

WAIT_S = 30
# For the tests that kill -9 and restart the inspector: the killed one's leader lease lapses
# within its ttl, and the restart leads only then (at the default 5000 ms, 5 to 7 s a restart).
RESTARTS = ("--leader-ttl-ms", "1500")


async def _update(mesh: InspectorMesh, toml: str, reason: str = "test") -> rk.UpdatePoliciesResponse:
    request = rk.UpdatePoliciesRequest(toml=toml, reason=reason)
    answer: rk.UpdatePoliciesResponse = await mesh.stub.UpdatePolicies(
        request, metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    return answer


def _limits(policies: rk.GetPoliciesResponse) -> dict[str, str]:
    return {s.key: s.limit for s in policies.status}


async def _policies(mesh: InspectorMesh) -> rk.GetPoliciesResponse:
    answer: rk.GetPoliciesResponse = await mesh.stub.GetPolicies(
        rk.GetPoliciesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    return answer


async def test_the_shipped_policy_file_and_long_reasons_fit_their_fields(
    tmp_path: Path, redis_url: str
) -> None:
    shipped = DEFAULT_POLICIES.read_text()
    assert len(shipped) > MAX_STRING_CHARS  # the blanket cap refused it
    reason = "A reason an operator writes at length. " * 25  # 975 characters
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        answer = await _update(mesh, shipped, reason)
        assert list(answer.changes) == []  # the set in force is the shipped one
        assert (await _policies(mesh)).toml == shipped
        mode = await mesh.stub.SetMode(
            rk.SetModeRequest(mode=rk.MODE_STAND_DOWN, reason=reason), metadata=AUTH
        )
        assert mode.events[0].reason == reason
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _update(mesh, "#" * (64 * 1024 + 1), "x" * 1025)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad_request_violations(caught.value)] == ["toml", "reason"]


async def test_a_policy_update_keeps_what_it_leaves_out_and_turns_off_only_what_it_names(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, *RESTARTS) as mesh:
        shipped = _limits(await _policies(mesh))
        assert shipped["orders.max_notional"] == "10000" and shipped["loss.max_drawdown"] == "0.1"
        # An empty file, or one of a single key: every other limit stays as shipped.
        assert list((await _update(mesh, "")).changes) == []
        changed = await _update(mesh, "[orders]\nmax_open = 7\n")
        assert list(changed.changes) == ["orders.max_open: 50 -> 7"]
        limits = _limits(await _policies(mesh))
        assert {k: v for k, v in limits.items() if k != "orders.max_open"} == {
            k: v for k, v in shipped.items() if k != "orders.max_open"
        }
        big = await mesh.submit(intent(size="1"))  # ~65,000 USDT: over the shipped 10,000 an order
        assert "orders.max_notional" in {r.policy for r in big.reasons}
        # Named in `remove`: off, and said so on the POLICY_CHANGE event.
        removed = await _update(mesh, 'remove = ["loss.max_drawdown"]\n[orders]\nmax_open = 7\n')
        assert list(removed.changes) == ["loss.max_drawdown: 0.10 -> off"]
        (event,) = [e for e in await mesh.events(policy="policies") if "turned off" in e.reason]
        assert event.action == rk.RISK_ACTION_POLICY_CHANGE
        assert event.reason == "1 policy keys changed; turned off: loss.max_drawdown"
        # A bad removal changes nothing.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _update(mesh, 'remove = ["rate.window_ms", "loss.max_gain"]\n')
        assert [f for f, _ in bad_request_violations(caught.value)] == ["remove[0]", "remove[1]"]
        # The journal holds the complete set: a restart replays it exactly, then applies the
        # policy file it starts with (here the shipped one) as a change from the replayed set.
        assert "loss.max_drawdown" not in _limits(await _policies(mesh))
        await mesh.stop(kill=True)
        mesh.start()
        at_start = await until(lambda: _change_at_start(mesh), WAIT_S, 0.2, "the restarted inspector")
        assert {v.name: v.value for v in at_start.values} == {
            "loss.max_drawdown": "off -> 0.10",
            "orders.max_open": "7 -> 50",
        }
        assert _limits(await _policies(mesh)) == shipped


async def _change_at_start(mesh: InspectorMesh) -> rk.RiskEvent | None:
    try:
        changes = await mesh.events(action=rk.RISK_ACTION_POLICY_CHANGE)
    except grpc.aio.AioRpcError:
        return None
    return next((e for e in changes if any(v.value.startswith("off ->") for v in e.values)), None)


# ---- every field of an intent checked for its meaning (item 20)

# The intents that were ALLOWed, each with the field it names.
MEANINGLESS: list[tuple[dict[str, Any], str]] = [
    ({"entry_type": tf.ORDER_TYPE_LIMIT, "entry_price": "PRICE", "stop_loss": "ABOVE"}, "intent.stop_loss"),
    (
        {"entry_type": tf.ORDER_TYPE_LIMIT, "entry_price": "PRICE", "take_profit": "BELOW"},
        "intent.take_profit",
    ),
    ({"side": common.SIDE_SELL, "entry_price": "PRICE", "stop_loss": "BELOW"}, "intent.stop_loss"),
    ({"time_in_force": 99}, "intent.time_in_force"),
    ({"conviction": "NaN"}, "intent.conviction"),
    ({"risk_amount": "-1e30"}, "intent.risk_amount"),
]


def _meaningless(mark: Decimal, given: dict[str, Any], **more: Any) -> am.Intent:
    prices = {"PRICE": str(mark), "ABOVE": str(mark + 100), "BELOW": str(mark - 100)}
    fields = {k: prices.get(v, v) if isinstance(v, str) else v for k, v in given.items()}
    side = "sell" if fields.pop("side", common.SIDE_BUY) == common.SIDE_SELL else "buy"
    return intent(side, **fields, **more)


async def test_an_intent_whose_fields_mean_nothing_is_refused_naming_them(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        mark = await mesh.mark()
        for given, field in MEANINGLESS:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await mesh.submit(_meaningless(mark, given))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, given
            assert [f for f, _ in bad_request_violations(caught.value)] == [field], given
        assert await mesh.open_orders() == [] and await mesh.venue_position() == 0
        assert await mesh.events(action=rk.RISK_ACTION_ALLOW) == []


async def test_from_the_bus_such_an_intent_is_a_block_naming_its_fields(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        mark = await mesh.mark()
        ids = []
        for index, (given, _) in enumerate(MEANINGLESS):
            ids.append(f"bus-{index}")
            await _on_the_bus(
                mesh, _meaningless(mark, given, intent_id=ids[-1], strategy_id="s1", expires_at_ns=2**62)
            )
        blocked = await until(lambda: _blocks(mesh, len(ids)), WAIT_S, 0.2, "the bus intents refused")
        assert sorted(e.intent_id for e in blocked) == sorted(ids)
        named = {e.intent_id: [v.name for v in e.values] for e in blocked}
        assert [named[i] for i in ids] == [[field] for _, field in MEANINGLESS]
        assert await mesh.open_orders() == [] and await mesh.venue_position() == 0
        # The bus goes on: a good intent after them is placed.
        await _on_the_bus(mesh, intent(intent_id="bus-good", strategy_id="s1", expires_at_ns=2**62))
        await until(lambda: _placed(mesh), WAIT_S, 0.2, "the good intent placed")


async def _on_the_bus(mesh: InspectorMesh, message: am.Intent) -> None:
    client: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        envelope = bus.Envelope(source="test")
        envelope.intents.intents.append(message)
        await client.xadd(INTENTS, signed(INTENTS, envelope.SerializeToString()))  # as the advisor
    finally:
        await client.aclose()


async def _blocks(mesh: InspectorMesh, count: int) -> list[rk.RiskEvent] | None:
    found = await mesh.events(policy="intent.invalid")
    return found if len(found) >= count and all(e.action == rk.RISK_ACTION_BLOCK for e in found) else None


async def _placed(mesh: InspectorMesh) -> bool | None:
    return True if await mesh.venue_position() > 0 else None


# ---- a venue stood down by the reconciliation, from every way in (item 6)


async def test_a_venue_whose_positions_diverged_refuses_entries_from_the_api_and_the_bus(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, "--reconcile-every-s", "0.5", *RESTARTS) as mesh:
        assert (await mesh.submit(intent())).action == rk.RISK_ACTION_ALLOW
        # A fill the inspector never hears of (it is down): the venue holds 0.03, the book 0.01.
        await mesh.stop(kill=True)
        await _at_the_venue(mesh, common.SIDE_BUY, "0.02")
        mesh.start()
        await until(lambda: _stood_down(mesh), WAIT_S, 0.2, "the venue stood down")
        # SubmitIntent: an entry is refused for it; an exit is still checked (it only reduces).
        entry = await mesh.submit(intent())
        assert entry.action == rk.RISK_ACTION_BLOCK
        assert [r.policy for r in entry.reasons] == ["reconcile.position"]
        exit_ = await mesh.submit(intent("sell", size="0.01", reduce_only=True))
        assert exit_.action == rk.RISK_ACTION_ALLOW, exit_.reasons
        # From the bus, the same check, by the same core: a BLOCK on the risk stream.
        await _on_the_bus(mesh, intent(intent_id="bus-entry", strategy_id="s1", expires_at_ns=2**62))
        refused = await until(lambda: _verdict(mesh, "bus-entry"), WAIT_S, 0.2, "the bus intent's verdict")
        assert (refused.action, refused.policy) == (rk.RISK_ACTION_BLOCK, "reconcile.position")
        # Journaled: a restart replays the stand-down (before any reconciliation has run again).
        await mesh.stop(kill=True)
        mesh.start(*("--reconcile-every-s", "3600"))
        assert [v.name for v in (await _ready_state(mesh)).venues_stood_down] == ["sim"]
        assert [r.policy for r in (await mesh.submit(intent())).reasons] == ["reconcile.position"]


async def test_a_stood_down_venue_is_taken_up_again_once_its_positions_agree(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, "--reconcile-every-s", "0.5", *RESTARTS) as mesh:
        await mesh.stop(kill=True)  # a journal begun; then a fill it never hears of
        await _at_the_venue(mesh, common.SIDE_BUY, "0.01")
        mesh.start()
        await until(lambda: _stood_down(mesh), WAIT_S, 0.2, "the venue stood down")
        await mesh.stop(kill=True)  # and one that undoes it: flat again, as the book has it
        await _at_the_venue(mesh, common.SIDE_SELL, "0.01")
        mesh.start()
        await until(lambda: _taken_up(mesh), WAIT_S, 0.2, "the venue taken up again")
        resolved = await mesh.events_listed(policy="reconcile.resolved")
        assert [e.policy for e in resolved] == ["reconcile.resolved"]
        assert (await mesh.submit(intent())).action == rk.RISK_ACTION_ALLOW


async def _at_the_venue(mesh: InspectorMesh, side: int, size: str) -> None:
    order = tf.PlaceOrderRequest(symbol="BTC/USDT", side=side, type=tf.ORDER_TYPE_MARKET, size=size)  # type: ignore[arg-type]
    await mesh.venue_stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)


async def _ready_state(mesh: InspectorMesh) -> rk.GetRiskStateResponse:
    async def state() -> rk.GetRiskStateResponse | None:
        try:
            return await mesh.state()
        except grpc.aio.AioRpcError:
            return None

    return await until(state, WAIT_S, 0.2, "the restarted inspector")


async def _stood_down(mesh: InspectorMesh) -> bool | None:
    return True if [v.name for v in (await _ready_state(mesh)).venues_stood_down] == ["sim"] else None


async def _taken_up(mesh: InspectorMesh) -> bool | None:
    return True if not (await _ready_state(mesh)).venues_stood_down else None


async def _verdict(mesh: InspectorMesh, intent_id: str) -> rk.RiskEvent | None:
    found = [e for e in await mesh.events() if e.intent_id == intent_id]
    return found[0] if found else None


# ---- a spot market is never sold short (the chaos run: a spot sell with no base held was
# ALLOWed, the sim filled it from the account's deposited BTC, and the ledger refused the fill)

PERP = "BTC/USDT:USDT"
SPOT_AND_PERP = f"""
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
book_updates_per_s = 100
[[symbols]]
symbol = "{PERP}"
start_price = "65000"
tick_size = "0.1"
lot_size = "0.001"
book_updates_per_s = 100
"""


async def test_a_spot_sell_of_nothing_held_is_blocked_from_every_way_in_and_one_closing_a_long_is_not(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        btc = await _free(mesh, "BTC")
        assert btc > 0  # the sim's account holds deposited BTC: the venue itself would fill a sell
        # SubmitIntent as Studio's order ticket sends it (no id, no strategy: "manual").
        blocked = await mesh.submit(intent("sell", size="0.01"))
        assert blocked.action == rk.RISK_ACTION_BLOCK and not blocked.client_order_id
        (reason,) = blocked.reasons
        assert reason.policy == "position.spot_short"
        assert reason.reason.startswith(
            "a spot market cannot be sold short: holding 0 of BTC (strategy 'manual')"
        )
        # From the bus, the same check: a BLOCK on the risk stream.
        await _on_the_bus(mesh, intent("sell", intent_id="bus-sell", strategy_id="s1", expires_at_ns=2**62))
        refused = await until(lambda: _verdict(mesh, "bus-sell"), WAIT_S, 0.2, "the bus intent's verdict")
        assert (refused.action, refused.policy) == (rk.RISK_ACTION_BLOCK, "position.spot_short")
        # Nothing reached the venue: no such order, no position, the base balance untouched.
        for intent_id in (blocked.intent_id, "bus-sell"):
            await _never_placed(mesh, entry_order_id(intent_id))
        assert await mesh.venue_position() == 0 and await _free(mesh, "BTC") == btc
        # A sell that closes a long of the same strategy is allowed, and reaches the venue.
        bought = await mesh.submit(intent("buy", size="0.01"))
        assert bought.action == rk.RISK_ACTION_ALLOW, bought.reasons
        await until(lambda: _held(mesh, "0.01"), WAIT_S, 0.2, "the long's fill heard by the inspector")
        sold = await mesh.submit(intent("sell", size="0.01"))
        assert sold.action == rk.RISK_ACTION_ALLOW, sold.reasons
        await until(lambda: _venue_at(mesh, Decimal(0)), WAIT_S, 0.2, "the long closed at the venue")
        # And no more: flat again, the next sell is blocked.
        again = await mesh.submit(intent("sell", size="0.01"))
        assert [r.policy for r in again.reasons] == ["position.spot_short"]


async def test_a_perpetual_of_the_sim_is_still_sold_short(tmp_path: Path, redis_url: str) -> None:
    async with inspector_mesh(tmp_path, redis_url, venue_config=SPOT_AND_PERP) as mesh:
        short = await mesh.submit(intent("sell", size="0.01", symbol=PERP))
        assert short.action == rk.RISK_ACTION_ALLOW, short.reasons
        await until(lambda: _perp_at(mesh, Decimal("-0.01")), WAIT_S, 0.2, "the short at the venue")
        spot = await mesh.submit(intent("sell", size="0.01"))  # the same venue's spot pair: blocked
        assert [r.policy for r in spot.reasons] == ["position.spot_short"]


async def _free(mesh: InspectorMesh, asset: str) -> Decimal:
    answer = await mesh.venue_stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    return sum((Decimal(b.free) + Decimal(b.locked) for b in answer.balances if b.asset == asset), Decimal(0))


async def _never_placed(mesh: InspectorMesh, client_order_id: str) -> None:
    request = tf.GetOrderRequest(client_order_id=client_order_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.venue_stubs.tf.GetOrder(request, timeout=CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def _held(mesh: InspectorMesh, size: str) -> bool | None:
    return True if [(p.size, p.legacy) for p in await mesh.positions()] == [(size, False)] else None


async def _venue_at(mesh: InspectorMesh, size: Decimal) -> bool | None:
    return True if await mesh.venue_position() == size else None


async def _perp_at(mesh: InspectorMesh, size: Decimal) -> bool | None:
    answer = await mesh.venue_stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    held = sum((Decimal(p.size) for p in answer.positions if p.symbol == PERP), Decimal(0))
    return True if held == size else None


async def test_an_intent_off_the_grid_is_blocked_or_rounded_before_the_venue_sees_it(
    tmp_path: Path, redis_url: str
) -> None:
    """A size off the lot reaches the venue rounded down to it; a limit price off the sim's tick,
    near the market, is BLOCKed by the inspector with the reason, and the venue never gets the
    order (before, every policy passed and the venue refused it) (issue 57 item 16e)."""
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        stubs = mesh.venue_stubs
        listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
        item = next(i for i in listed.instruments if i.symbol == "BTC/USDT")
        tick, lot = Decimal(item.tick_size), Decimal(item.lot_size)
        asked = Decimal("0.01") + lot / 2
        rounded = await mesh.submit(intent("buy", size=format_decimal(asked)))
        assert rounded.action == rk.RISK_ACTION_ALLOW, rounded.reasons
        request = tf.GetOrderRequest(client_order_id=rounded.client_order_id)
        placed = (await stubs.tf.GetOrder(request, timeout=CALL_TIMEOUT_S)).order
        assert Decimal(placed.size) == Decimal("0.01")
        # 1% under the price it filled at (within the policies' band): a bid that would rest.
        under = (Decimal(placed.average_fill_price) * Decimal("0.99") / tick).to_integral_value() * tick
        price = format_decimal(under + tick / 2)
        limit = intent("buy", size="0.01", entry_type=tf.ORDER_TYPE_LIMIT, entry_price=price)
        blocked = await mesh.submit(limit)
        assert blocked.action == rk.RISK_ACTION_BLOCK and not blocked.client_order_id
        (reason,) = blocked.reasons
        assert reason.policy == "orders.tick"
        said = f"limit price {price} is not a multiple of the tick size {format_decimal(tick)}"
        assert reason.reason == said
        await _never_placed(mesh, entry_order_id(blocked.intent_id))
