"""`trademesh up --venue-account sim=desk-a` (docs/accounts.md), its start as `up` does it: the
gateway, the mesh's sim, then the account as its own supervised child, each a real process.
The account registers with the gateway as the venue sim.desk-a and says so itself; the
services that follow venues are given it beside the mesh's; the account is restarted on its
ports when it dies; a live account without credentials stops `up`.
(tests/integration/test_up.py runs the whole mesh without accounts: a second sim there would
add its start to the suite's slowest file.)"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import pytest

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.cli.mesh.up import UpOptions, _Mesh, _stop_all
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, SESSION_SECRET, TOKEN, TRADE_TOKEN
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import SERVICES, start_order
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.registry.v1 import registry_pb2_grpc as reg_grpc

__all__ = ["database_url", "redis_url"]  # the fixtures, for pytest

pytestmark = pytest.mark.integration

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
# A small market: the sims start in a second or two (the demo market's history takes longer).
MARKET = 'tick_interval_ms = 50\n[balances]\nUSDT = "1000"\n'


async def _status(address: str) -> admin.GetStatusResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        answer: admin.GetStatusResponse = await admin_grpc.AdminStub(channel).GetStatus(
            admin.GetStatusRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return answer


async def _registered(gateway: str) -> dict[str, str]:
    async with grpc.aio.insecure_channel(gateway) as channel:
        answer = await reg_grpc.RegistryStub(channel).ListServices(
            reg.ListServicesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return {instance.name: instance.address for instance in answer.instances}


async def test_up_runs_a_venue_account_as_its_own_venue_beside_the_mesh(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    market = tmp_path / "market.toml"
    market.write_text(MARKET)
    accounts = (("sim", "desk-a"),)
    options = UpOptions(tmp_path / "data", free_ports=True, sim_config=market, venue_accounts=accounts)
    async with new_database(database_url, "up_accounts") as database, redis_db(redis_url) as bus:
        env = {REDIS_URL: bus, DATABASE_URL: database, TOKEN: TEST_TOKEN, SESSION_SECRET: "s" * 48}
        mesh = _Mesh(options, env, {TRADE_TOKEN: TEST_TRADE_TOKEN})
        try:
            for entry in start_order(["gateway", "venue"]):
                await mesh.start(entry, load_command(entry))
            gateway, sim, account = mesh.children
            assert (sim.spec.name, account.spec.name) == ("sim", "sim.desk-a")
            assert sim.address != account.address

            status = await _status(account.address)
            assert (status.venue, status.exchange, status.account) == ("sim.desk-a", "sim", "desk-a")
            assert (await _status(sim.address)).account == ""

            async def both() -> dict[str, str] | None:
                found = await _registered(gateway.grpc_address)
                return found if {"sim", "sim.desk-a"} <= set(found) else None

            registered = await until(both, 30, what="the sim and its account registered")
            assert registered["sim.desk-a"].rsplit(":", 1)[1] == str(account.info["port"])
            # What the services that follow venues are given (ingest, the ledger, the inspector ...).
            for name in ("ingest", "ledger", "inspector"):
                args = load_command(SERVICES[name]).mesh_args(mesh.view)
                assert f"sim.desk-a={account.address}" in args and f"sim={sim.address}" in args, name

            # Killed, it is restarted on the address it had (the gateway and the others know it).
            address, first = account.address, account.pid
            stop = asyncio.Event()
            supervising = asyncio.create_task(account.supervise(stop))
            os.kill(first, signal.SIGKILL)

            async def serving_again() -> admin.GetStatusResponse | None:
                if account.pid in (0, first):
                    return None
                try:
                    return await _status(address)
                except grpc.aio.AioRpcError:
                    return None

            again = await until(serving_again, 30, what="the account restarted on its address")
            assert again.account == "desk-a"
            stop.set()
            supervising.cancel()
        finally:
            await _stop_all(mesh.children)


async def test_up_stops_when_a_live_account_has_no_credentials(
    tmp_path: Path, database_url: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live account refuses to start without its key and secret, naming the variables (never
    a value); `up` does not go on without it."""
    market = tmp_path / "market.toml"
    market.write_text(MARKET)
    accounts = (("binance", "desk-z"),)
    options = UpOptions(tmp_path / "data", free_ports=True, sim_config=market, venue_accounts=accounts)
    async with new_database(database_url, "up_accounts") as database, redis_db(redis_url) as bus:
        env = {REDIS_URL: bus, DATABASE_URL: database, TOKEN: TEST_TOKEN, SESSION_SECRET: "s" * 48}
        env |= {"TRADEMESH_BINANCE__DESK_Z_API_KEY": "", "TRADEMESH_BINANCE__DESK_Z_API_SECRET": ""}
        mesh = _Mesh(options, env, {TRADE_TOKEN: TEST_TRADE_TOKEN})
        try:
            with pytest.raises(Unavailable, match=r"binance\.desk-z exited with 2 before serving"):
                for entry in start_order(["gateway", "venue"]):
                    await mesh.start(entry, load_command(entry))
        finally:
            await _stop_all(mesh.children)
    said = capsys.readouterr().out
    assert "account desk-z at binance has no credentials" in said, said
    assert "TRADEMESH_BINANCE__DESK_Z_API_KEY" in said and "TRADEMESH_BINANCE__DESK_Z_API_SECRET" in said
