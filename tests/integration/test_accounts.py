"""Two accounts at one exchange (docs/accounts.md), as real processes: a gateway, two sim venue
processes run as `trademesh venue sim --account desk-a` / `--account desk-b` (each its own
balances from its config; desk-a with its own trading credential), ingest, the ledger and the
inspector following them through the gateway's registry. The inspector trades both: its
positions, each account's policy, the venues' own positions and the ledger's books and PnL stay
apart, and desk-a takes its own credential only."""

from __future__ import annotations

import functools
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.integration.gateway_support import Gateway, Processes, list_instances
from tests.integration.inspector_mesh import intent
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a whole mesh
__all__ = ["database_url", "redis_url"]  # fixtures

DESK_A, DESK_B = "sim.desk-a", "sim.desk-b"
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
DESK_A_TOKEN = "desk-a-own-trading-credential-5d1b"
DESK_A_ENV = {"TRADEMESH_SIM__DESK_A_TRADE_TOKEN": DESK_A_TOKEN}
WAIT_S = 60.0
CONFIGS = {
    DESK_A: '[balances]\nUSDT = "50000"\nBTC = "0"\n',
    DESK_B: '[balances]\nUSDT = "20000"\nBTC = "0"\n',
}
# desk-b's orders are capped at 300 USDT (about 0.0046 BTC); desk-a has no such cap.
POLICIES = """
[account.venues."sim.desk-b"]
max_order_notional = "300"
"""


async def _positions(inspector: ServiceProcess) -> dict[str, Decimal]:
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        answer = await rk_grpc.InspectorStub(channel).ListPositions(
            rk.ListPositionsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return {p.venue: Decimal(p.size) for p in answer.positions if p.symbol == "BTC/USDT"}


async def _venue(
    address: str, call: str, request: object, metadata: tuple[tuple[str, str], ...] = AUTH
) -> object:
    async with grpc.aio.insecure_channel(address) as channel:
        return await getattr(tf_grpc.TradeFlowStub(channel), call)(
            request, metadata=metadata, timeout=CALL_TIMEOUT_S
        )


async def _venue_totals(address: str) -> dict[str, Decimal]:
    answer = await _venue(address, "GetBalances", tf.GetBalancesRequest())
    assert isinstance(answer, tf.GetBalancesResponse)
    return {b.asset: Decimal(b.total) for b in answer.balances if Decimal(b.total) != 0}


async def _books(ledger: ServiceProcess, venue: str) -> dict[str, Decimal]:
    """The ledger's venue cash of `venue` by asset (what it says the account holds there)."""
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        answer = await lg_grpc.LedgerStub(channel).GetBalances(
            lg.GetBalancesRequest(venue=venue, ledger=lg.LEDGER_KIND_CASH), metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )  # fmt: skip
    return {
        b.account.asset: Decimal(b.balance)
        for b in answer.balances
        if b.account.code_name == "venue_cash" and b.account.venue == venue and Decimal(b.balance) != 0
    }


async def _pnl(ledger: ServiceProcess, venue: str) -> lg.StrategyPnl:
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        answer = await lg_grpc.LedgerStub(channel).GetPnl(
            lg.GetPnlRequest(venue=venue), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return answer.total


async def _pnl_apart(ledger: ServiceProcess) -> tuple[lg.StrategyPnl, lg.StrategyPnl, lg.StrategyPnl] | None:
    """Each account's PnL and the whole book's, once each account counts its fill and the whole
    counts both."""
    pnl_a, pnl_b, every = await _pnl(ledger, DESK_A), await _pnl(ledger, DESK_B), await _pnl(ledger, "")
    apart = pnl_a.fills >= 1 and pnl_b.fills >= 1 and every.fills == pnl_a.fills + pnl_b.fills
    return (pnl_a, pnl_b, every) if apart and Decimal(every.fees) != 0 else None


async def _submit(inspector: ServiceProcess, message: am.Intent) -> rk.SubmitIntentResponse | None:
    """The inspector's answer; None while it does not know the venue yet (NOT_FOUND: it follows
    the registry, and has not read it since the venue registered)."""
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        try:
            answer: rk.SubmitIntentResponse = await rk_grpc.InspectorStub(channel).SubmitIntent(
                rk.SubmitIntentRequest(intent=message), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
    return answer


async def _registered(gateway: Gateway) -> bool | None:
    return True if {DESK_A, DESK_B} <= set(await list_instances(gateway)) else None


async def test_two_sim_accounts_are_traded_booked_and_limited_apart(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with new_database(database_url, "accounts") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            desk_a = processes.sim(gateway, CONFIGS[DESK_A], 0, "--account", "desk-a", env=DESK_A_ENV)
            desk_b = processes.sim(gateway, CONFIGS[DESK_B], 0, "--account", "desk-b")
            await until(lambda: _registered(gateway), WAIT_S, what="both accounts registered")
            policies = tmp_path / "policies.toml"
            policies.write_text(POLICIES)
            # Pointed at both accounts as `trademesh up` points them at its venues: the inspector
            # reads their executions' streams from its start.
            links = ("--venue", f"{DESK_A}={desk_a.address}", "--venue", f"{DESK_B}={desk_b.address}")
            processes.mesh_service(gateway, "ingest", *links, redis_url=bus)
            ledger = processes.mesh_service(
                gateway, "ledger", *links, "--database-url", database, redis_url=bus
            )
            inspector = processes.mesh_service(
                gateway, "inspector", *links, "--deadman-ttl-ms", "0", "--policies", str(policies),
                redis_url=bus, env=DESK_A_ENV,
            )  # fmt: skip
            # Each account's books open from its own venue's balances (before any fill).
            for venue, opening in ((DESK_A, {"USDT": Decimal(50000)}), (DESK_B, {"USDT": Decimal(20000)})):
                await until(
                    functools.partial(_books_are, ledger, venue, opening),
                    WAIT_S,
                    what=f"{venue}'s books opened",
                )

            # desk-a trades with its own credential (the inspector sends it there alone).
            entered_a = await until(
                lambda: _submit(inspector, intent(venue=DESK_A, size="0.01", intent_id="acct-a-1")),
                WAIT_S, what="the inspector trading desk-a",
            )  # fmt: skip
            assert entered_a.action == rk.RISK_ACTION_ALLOW, entered_a
            # desk-b's own cap: 0.01 BTC (~650 USDT) is over it, the same order at desk-a was not.
            over = await until(
                lambda: _submit(inspector, intent(venue=DESK_B, size="0.01", intent_id="acct-b-1")),
                WAIT_S, what="the inspector trading desk-b",
            )  # fmt: skip
            assert over.action == rk.RISK_ACTION_BLOCK
            assert [r.policy for r in over.reasons] == ["account.max_order_notional"]
            entered_b = await _submit(inspector, intent(venue=DESK_B, size="0.004", intent_id="acct-b-2"))
            assert entered_b is not None and entered_b.action == rk.RISK_ACTION_ALLOW, entered_b

            # The inspector's positions, one per account.
            seen: list[dict[str, Decimal]] = [{}]

            async def both_positions() -> dict[str, Decimal] | None:
                seen[0] = await _positions(inspector)
                return seen[0] if seen[0] == {DESK_A: Decimal("0.01"), DESK_B: Decimal("0.004")} else None

            await until(both_positions, WAIT_S, what="a position at each account")
            # Each venue holds its own account's position, and its protective pair (placed with
            # the account's credential: desk-a's own).
            for address, size in ((desk_a.address, "0.01"), (desk_b.address, "0.004")):
                held = await _venue(address, "GetPositions", tf.GetPositionsRequest())
                assert isinstance(held, tf.GetPositionsResponse)
                assert {(p.symbol, p.size) for p in held.positions} == {("BTC/USDT", size)}
                await until(functools.partial(_protected, address), WAIT_S, what=f"the pair at {address}")

            # desk-a takes only its own trading credential: the mesh-wide one is no token of its,
            # and the mesh token is refused its order RPCs, naming the variable to hold.
            order = tf.PlaceOrderRequest(
                symbol="BTC/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="0.001"
            )
            mesh_wide = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await _venue(desk_a.address, "PlaceOrder", order, mesh_wide)
            assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _venue(desk_a.address, "PlaceOrder", order)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "TRADEMESH_SIM__DESK_A_TRADE_TOKEN" in (refused.value.details() or "")
            assert DESK_A_TOKEN not in (refused.value.details() or "")

            # The ledger books each account's fills to its own accounts: each venue's balances.
            for venue, address in ((DESK_A, desk_a.address), (DESK_B, desk_b.address)):
                totals = await _venue_totals(address)
                await until(
                    functools.partial(_books_are, ledger, venue, totals), WAIT_S, what=f"{venue} booked"
                )
            a_usdt, b_usdt = (await _books(ledger, DESK_A))["USDT"], (await _books(ledger, DESK_B))["USDT"]
            assert Decimal(49000) < a_usdt < Decimal(50000) and Decimal(19500) < b_usdt < Decimal(20000)
            # PnL per account: each its own fill and fees, together the whole book's. (The PnL is
            # read from the books' tables, which may trail the balances by a moment.)
            pnl_a, pnl_b, every = await until(lambda: _pnl_apart(ledger), WAIT_S, what="each account's PnL")
            assert Decimal(pnl_a.fees) < 0 and Decimal(pnl_b.fees) < 0
            assert Decimal(every.fees) == Decimal(pnl_a.fees) + Decimal(pnl_b.fees)
        finally:
            await processes.stop_all()


async def _books_are(ledger: ServiceProcess, venue: str, expected: dict[str, Decimal]) -> bool | None:
    try:
        found = await _books(ledger, venue)
    except grpc.aio.AioRpcError:
        return None  # not serving yet
    return True if found == expected else None


async def _protected(address: str) -> bool | None:
    answer = await _venue(address, "ListOpenOrders", tf.ListOpenOrdersRequest())
    assert isinstance(answer, tf.ListOpenOrdersResponse)
    reduce_only = [o for o in answer.orders if o.reduce_only]
    return True if len(reduce_only) == 2 else None
