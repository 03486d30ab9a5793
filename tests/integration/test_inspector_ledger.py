"""The inspector reconciles each venue's balances with the ledger's books (real gateway, sim,
ingest, inspector and ledger processes; Redis; PostgreSQL): while ingest is down the venue
trades and the books fall behind, and the inspector says so (a `reconcile.ledger` NOTICE naming
the asset, the venue's total and the books'); ingest back, the ledger catches up and a second
NOTICE says they agree again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.integration.gateway_support import Processes
from tests.integration.inspector_mesh import reconciliations
from tests.integration.mesh import redis_db, venue_link
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, until
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

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
TRADE = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
WAIT_S = 60.0


async def _ledger_notices(inspector: ServiceProcess) -> list[rk.RiskEvent]:
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        stub = rk_grpc.InspectorStub(channel)
        answer = await stub.ListRiskEvents(
            rk.ListRiskEventsRequest(policy="reconcile.ledger", page_size=100), metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )  # fmt: skip
    return list(answer.events)


async def _opened(ledger: ServiceProcess) -> bool | None:
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        stub = lg_grpc.LedgerStub(channel)
        try:
            answer = await stub.GetBalances(
                lg.GetBalancesRequest(venue="sim", ledger=lg.LEDGER_KIND_CASH), metadata=AUTH,
                timeout=CALL_TIMEOUT_S,
            )  # fmt: skip
        except grpc.aio.AioRpcError:
            return None
    return True if answer.balances else None


async def test_the_inspector_notices_books_behind_the_venue_and_their_catching_up(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with new_database(database_url, "inspledger") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            sim = processes.sim(gateway)
            ingest = processes.mesh_service(
                gateway, "ingest", *venue_link("ingest", sim.address), redis_url=bus
            )
            inspector = processes.mesh_service(
                gateway, "inspector", *venue_link("inspector", sim.address), "--deadman-ttl-ms", "0",
                "--reconcile-every-s", "0.5", "--metrics-port", "0", redis_url=bus,
            )  # fmt: skip
            ledger = processes.mesh_service(
                gateway,
                "ledger",
                *venue_link("ledger", sim.address),
                "--database-url",
                database,
                redis_url=bus,
            )
            await until(lambda: _opened(ledger), WAIT_S, what="the books opened")
            # Several checks that agree, all after the books opened: no notice.
            checked = await reconciliations(inspector)

            async def several() -> bool | None:
                return True if await reconciliations(inspector) >= checked + 5 else None

            await until(several, WAIT_S, 0.1, "five reconciliations")
            assert await _ledger_notices(inspector) == []

            ingest.terminate()  # the books stop hearing of fills
            async with grpc.aio.insecure_channel(sim.address) as channel:
                order = tf.PlaceOrderRequest(
                    symbol="BTC/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="0.01",
                    client_order_id="behind-the-books",
                )  # fmt: skip
                await tf_grpc.TradeFlowStub(channel).PlaceOrder(order, metadata=TRADE, timeout=CALL_TIMEOUT_S)
            behind = await until(
                lambda: _found(inspector, "in the ledger's books"), WAIT_S, what="the notice of books behind"
            )
            values = {v.name: v.value for v in behind.values}
            assert behind.venue == "sim" and values["asset"] in {"BTC", "USDT"}
            assert Decimal(values["venue_total"]) != Decimal(values["ledger_total"])

            processes.mesh_service(gateway, "ingest", *venue_link("ingest", sim.address), redis_url=bus)
            await until(
                lambda: _found(inspector, "agrees with the ledger again"), WAIT_S, what="books caught up"
            )
        finally:
            await processes.stop_all()


async def _found(inspector: ServiceProcess, words: str) -> rk.RiskEvent | None:
    return next((e for e in await _ledger_notices(inspector) if words in e.reason), None)
