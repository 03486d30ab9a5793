"""The ledger through the gateway, as real processes (gateway, sim venue, ingest, recorder,
inspector, ledger, Redis, PostgreSQL): an order placed through the inspector fills at the sim,
the ledger posts its fill, and the MCP tools show it: the balances it moved, the transfers
linked to the order, the PnL, the books' self-check, and the trace from the fill back to the
inspector's verdict on the intent and forward to the transfers; every Ledger method answers a
read key over gRPC-web; bad arguments are tool errors naming each one. One mesh for the module;
the tests run in order (the first places the order the others read)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.gateway_support import Gateway, Processes, both, grpcweb_call, new_key, run_at_once
from tests.integration.mesh import redis_db, venue_link
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "redis_url"]  # fixtures

LEDGER = "trademesh.ledger.v1.Ledger"
INSPECTOR = "trademesh.risk.v1.Inspector"
OK = grpc.StatusCode.OK.value[0]
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SYMBOL = "BTC/USDT"
SIZE = Decimal("0.01")
LEDGER_TOOLS = {"ledger_balances", "ledger_transfers", "ledger_pnl", "ledger_verify", "ledger_trace"}
WAIT_S = 60
QUANTITY = {"spot_quantity", "perp_quantity"}


@dataclass
class Mesh:
    processes: Processes
    gateway: Gateway
    sim: ServiceProcess
    ledger: ServiceProcess
    reader: str
    trader: str


@dataclass
class Placed:
    """The order the module placed, as the inspector answered, and its first fill's id."""

    intent_id: str
    client_order_id: str
    fill_id: str


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("ledger-gw")
    async with new_database(database_url, "ledgergw") as database, redis_db(redis_url) as bus_url:
        processes = Processes(directory, database)

        def start() -> tuple[Gateway, ServiceProcess, ServiceProcess]:
            gateway = processes.gateway()
            sim = processes.sim(gateway)

            def service(name: str, *args: str) -> Callable[[], ServiceProcess]:
                link = venue_link(name, sim.address)
                return lambda: processes.mesh_service(gateway, name, *link, *args, redis_url=bus_url)

            *_, ledger = run_at_once(
                service("ingest"),
                # The recorder's tables (intents, executions) are where the trace finds its steps.
                service("recorder", "--database-url", database),
                service("inspector", "--deadman-ttl-ms", "0"),
                service("ledger", "--database-url", database),
            )
            return gateway, sim, ledger

        try:
            # The keys are made (their CLI's starts) while the mesh starts, its services at once.
            (reader, trader), (gateway, sim, ledger) = await both(
                lambda: run_at_once(
                    lambda: new_key(database, "ledger-reader", ["read"]),
                    lambda: new_key(database, "ledger-trader", ["read", "trade"]),
                ),
                start,
            )
            mesh = Mesh(processes, gateway, sim, ledger, reader, trader)
            await until(lambda: _reachable(mesh), 60, interval_s=0.5, what="the ledger through the gateway")
            yield mesh
        finally:
            await processes.stop_all()


async def _reachable(mesh: Mesh) -> bool | None:
    """The ledger and the inspector registered with the gateway, both keys in its cache."""
    for key in (mesh.reader, mesh.trader):
        books = await _web(mesh, LEDGER, "Verify", lg.VerifyRequest(), key)
        state = await _web(mesh, INSPECTOR, "GetRiskState", rk.GetRiskStateRequest(), key)
        if books.code != OK or state.code != OK:
            return None
    return True


async def _web(mesh: Mesh, service: str, method: str, request: Any, key: str) -> Any:
    return await grpcweb_call(mesh.gateway, f"{service}/{method}", request.SerializeToString(), key=key)


async def _ledger_transfers(mesh: Mesh) -> list[lg.Transfer]:
    """The newest transfers, asked of the ledger itself (not through the gateway)."""
    async with grpc.aio.insecure_channel(mesh.ledger.address) as channel:
        stub: lg_grpc.LedgerAsyncStub = lg_grpc.LedgerStub(channel)
        reply = await stub.ListTransfers(
            lg.ListTransfersRequest(page_size=1000, newest_first=True), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return list(reply.transfers)


@pytest.fixture(scope="module")
async def placed(mesh: Mesh) -> Placed:
    """A market buy of SIZE BTC/USDT through the inspector (a trade key over gRPC-web), once
    the ledger has posted its fill."""
    intent = am.Intent(
        venue="sim", symbol=SYMBOL, side=common.SIDE_BUY, size=str(SIZE), entry_type=tf.ORDER_TYPE_MARKET
    )
    answer = await _web(mesh, INSPECTOR, "SubmitIntent", rk.SubmitIntentRequest(intent=intent), mesh.trader)
    assert answer.code == OK, answer.message
    done = rk.SubmitIntentResponse.FromString(answer.messages[0])
    assert done.action == rk.RISK_ACTION_ALLOW, done.reasons

    async def posted() -> str | None:
        for transfer in await _ledger_transfers(mesh):
            if transfer.links.client_order_id == done.client_order_id and transfer.links.fill_id:
                return transfer.links.fill_id
        return None

    fill_id = await until(posted, WAIT_S, interval_s=0.5, what="the ledger's transfers of the order's fill")
    return Placed(done.intent_id, done.client_order_id, fill_id)


def _connected(mesh: Mesh, key: str) -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return http, Client(streamable_http_client(f"{mesh.gateway.url}/mcp", http_client=http))


async def _tools(mesh: Mesh, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    http, client = _connected(mesh, mesh.reader)
    async with http, client:
        return [await client.call_tool(name, arguments) for name, arguments in calls]


def _answer(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    got: dict[str, Any] = result.structured_content or {}
    return got


async def test_every_ledger_method_answers_a_read_key_over_grpcweb(mesh: Mesh, placed: Placed) -> None:
    for method, request in (
        ("GetBalances", lg.GetBalancesRequest(venue="sim")),
        ("ListTransfers", lg.ListTransfersRequest(page_size=5)),
        ("GetPnl", lg.GetPnlRequest()),
        ("Verify", lg.VerifyRequest()),
        ("Trace", lg.TraceRequest(id=placed.fill_id)),
    ):
        answer = await _web(mesh, LEDGER, method, request, mesh.reader)
        assert answer.code == OK, f"{method}: {answer.message}"


async def test_the_mcp_tools_are_listed_read_only(mesh: Mesh) -> None:
    http, client = _connected(mesh, mesh.reader)
    async with http, client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) >= LEDGER_TOOLS
    for name in LEDGER_TOOLS:
        annotations = listed[name].annotations
        assert annotations is not None and annotations.read_only_hint and not annotations.destructive_hint
        assert listed[name].description and "\n    " not in (listed[name].description or "")
    ledger = listed["ledger_balances"].input_schema["properties"]["ledger"]
    assert "realised_pnl" in str(ledger)


async def test_balances_and_transfers_show_the_fill(mesh: Mesh, placed: Placed) -> None:
    balances, transfers = await _tools(
        mesh,
        [
            ("ledger_balances", {"venue": "sim"}),
            ("ledger_transfers", {"venue": "sim", "limit": 1000}),
        ],
    )
    rows = _answer(balances)["balances"]
    assert rows and all(r["venue"] in ("sim", None) for r in rows)
    for row in rows:
        Decimal(row["balance"])  # a decimal string
        assert isinstance(row["balance"], str)
    # The inspector's strategy of an intent given without one (Studio's ticket, this test's).
    held = [
        r
        for r in rows
        if r["code_name"] in QUANTITY and r["symbol"] == SYMBOL and r["strategy_id"] == "manual"
    ]
    assert held and sum(Decimal(r["balance"]) for r in held) >= SIZE, rows
    ours = [
        t
        for t in _answer(transfers)["transfers"]
        if t["links"].get("client_order_id") == placed.client_order_id
    ]
    assert ours, "no transfer links the order"
    assert {t["links"]["fill_id"] for t in ours} >= {placed.fill_id}
    assert {t["ledger"] for t in ours} >= {"cash", "position"}
    for t in ours:
        assert Decimal(t["amount"]) > 0 and t["time"].endswith("Z") and t["debit"]["id"] != t["credit"]["id"]


async def test_pnl_and_verify_agree_with_the_books(mesh: Mesh, placed: Placed) -> None:
    pnl, verify = await _tools(
        mesh, [("ledger_pnl", {"venue": "sim", "curve_points": 10}), ("ledger_verify", {})]
    )
    got = _answer(pnl)
    total = got["total"]
    assert total["fills"] >= 1 and total["asset"]
    parts = (total["realised"], total["fees"], total["funding"], total["unrealised"])
    assert sum(Decimal(p) for p in parts) == Decimal(total["total"])
    assert len(total["curve"]) <= 10
    assert sum(s["fills"] for s in got["strategies"]) == total["fills"]
    books = _answer(verify)
    assert books["ok"] is True and books["mismatches"] == [] and books["problems"] == []
    assert books["transfers"] >= 2 and books["accounts"] >= 2


async def _traced(mesh: Mesh, placed: Placed) -> list[Any] | None:
    """The traces by the fill and by the order once the fill's trace holds its order and fill steps:
    they come from the recorder's executions, which may be written after the ledger's transfers."""
    both = await _tools(
        mesh, [("ledger_trace", {"id": placed.fill_id}), ("ledger_trace", {"id": placed.client_order_id})]
    )
    kinds = {step["kind"] for step in _answer(both[0]).get("steps", [])}
    return both if {"order", "fill"} <= kinds else None


async def test_the_trace_of_the_fill_reaches_back_to_the_intent(mesh: Mesh, placed: Placed) -> None:
    by_fill, by_order = await until(
        lambda: _traced(mesh, placed), 30, interval_s=0.5, what="the fill's trace holds its order and fill"
    )
    chain = _answer(by_fill)
    assert chain["kind"] == "fill" and chain["id"] == placed.fill_id
    kinds = [step["kind"] for step in chain["steps"]]
    # A manual intent: no signal or decision before it, and never on the bus (so not in the
    # recorder's intents): the chain starts at the inspector's verdict on it.
    assert {"risk_check", "order", "fill", "transfer"} <= set(kinds), kinds
    assert not {"signal", "decision"} & set(kinds), kinds
    order = ["signal", "decision", "intent", "risk_check", "order", "fill", "transfer"]
    assert kinds == sorted(kinds, key=order.index), kinds
    check = next(step for step in chain["steps"] if step["kind"] == "risk_check")
    assert check["fields"]["intent_id"] == placed.intent_id and check["time"]
    assert check["fields"]["client_order_id"] == placed.client_order_id
    # The order's fills (it may fill in parts), the one asked about among them.
    fills = [step for step in chain["steps"] if step["kind"] == "fill"]
    assert placed.fill_id in {f["id"] for f in fills} and all(f["summary"] for f in fills)
    same = _answer(by_order)
    assert [s["id"] for s in same["steps"]] == [s["id"] for s in chain["steps"]]


async def test_bad_arguments_and_unknown_ids_are_tool_errors(mesh: Mesh) -> None:
    bad, late, unknown = await _tools(
        mesh,
        [
            ("ledger_transfers", {"venue": "Not A Venue", "account_id": "xyz", "since": "soon", "limit": 0}),
            ("ledger_pnl", {"since": "2026-11-20T00:00:00Z", "until": "2026-11-19T00:00:00Z"}),
            ("ledger_trace", {"id": "no-such-id-anywhere"}),
        ],
    )
    text = str(bad.content)
    assert bad.is_error and "invalid argument" in text
    assert all(name in text for name in ("venue", "account_id", "since", "limit")), text
    assert late.is_error and "until" in str(late.content)
    assert unknown.is_error and "not found" in str(unknown.content)
