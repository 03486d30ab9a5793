"""The inspector's reconciliation reads each venue's positions and balances from its account
stream (TradeFlow.StreamAccount), not by asking every round: real processes (a sim venue and an
inspector on a real Redis)."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

from tests.integration.inspector_mesh import InspectorMesh, inspector_mesh, intent
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, metric_samples, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # sims and inspectors: not the fast tier
__all__ = ["redis_url"]  # fixtures

WAIT_S = 30


async def _metrics(mesh: InspectorMesh, name: str) -> dict[str, float]:
    assert mesh.process is not None
    url = f"http://127.0.0.1:{mesh.process.info['metrics_port']}/metrics"

    def get() -> str:
        with urllib.request.urlopen(url, timeout=CALL_TIMEOUT_S) as response:
            body: bytes = response.read()
        return body.decode()

    return metric_samples(await asyncio.to_thread(get), name)


STREAMED = '{source="stream",what="positions"}'
SIM = '{venue="sim"}'
ASKED = '{source="asked",what="positions"}'


async def _reads(mesh: InspectorMesh, streamed: float) -> dict[str, float] | None:
    """The account reads once the positions were read from the stream `streamed` times (the
    balances are read only to compare with a ledger's books: none runs here)."""
    reads = await _metrics(mesh, "trademesh_inspector_account_reads_total")
    return reads if reads.get(STREAMED, 0) >= streamed else None


async def _diverged(mesh: InspectorMesh) -> rk.RiskEvent | None:
    events = await mesh.events(policy="reconcile.position")
    return events[0] if events else None


async def test_the_reconciliation_reads_the_account_stream_and_finds_a_fill_missed_while_down(
    tmp_path: Path, redis_url: str
) -> None:
    args = ("--reconcile-every-s", "0.5", "--metrics-port", "0")
    async with inspector_mesh(tmp_path, redis_url, *args) as mesh:
        entered = await mesh.submit(intent())
        assert entered.action == rk.RISK_ACTION_ALLOW, entered
        reads = await until(lambda: _reads(mesh, 3), WAIT_S, 0.2, "account reads from the stream")
        # Three rounds more: each read the stream, none asked the venue.
        later = await until(lambda: _reads(mesh, reads[STREAMED] + 3), WAIT_S, 0.2, "three rounds more")
        assert later.get(ASKED) == reads.get(ASKED), (reads, later)
        lag = await _metrics(mesh, "trademesh_inspector_account_lag_seconds_count")
        assert lag.get(SIM, 0) >= 1  # the entry's fill reached the inspector on the stream
        # A fill the inspector missed while it was down: after its restart, the reconciliation
        # finds it in the account stream's snapshot.
        await mesh.stop(kill=True)
        market = tf.PlaceOrderRequest(
            symbol="BTC/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="0.02"
        )
        await mesh.venue_stubs.tf.PlaceOrder(market, timeout=CALL_TIMEOUT_S)
        mesh.start()
        diverged = await until(lambda: _diverged(mesh), WAIT_S, 0.2, "the divergence")
        assert {v.name: v.value for v in diverged.values} == {"venue_size": "0.03", "book_size": "0.01"}
        await until(lambda: _reads(mesh, 2), WAIT_S, 0.2, "the restarted inspector's reads of the stream")


async def _stream(mesh: InspectorMesh, up: float) -> dict[str, float] | None:
    """The sim's account stream gauge and losses, once the gauge reads `up`."""
    gauge = await _metrics(mesh, "trademesh_inspector_account_stream_up")
    losses = await _metrics(mesh, "trademesh_inspector_account_stream_losses_total")
    return {"up": gauge[SIM], "losses": losses[SIM]} if gauge.get(SIM) == up else None


async def test_the_account_stream_is_up_by_venue_and_its_loss_counted_when_the_venue_drains(
    tmp_path: Path, redis_url: str
) -> None:
    """What the alert AccountStreamDown and the Risk dashboard read: 1 while the stream is live, 0
    once the venue ends it (a drain ends every stream, then refuses them), each loss counted."""
    async with inspector_mesh(tmp_path, redis_url, "--metrics-port", "0") as mesh:
        live = await until(lambda: _stream(mesh, 1.0), WAIT_S, 0.2, "the sim's account stream up")
        assert live == {"up": 1.0, "losses": 0.0}
        await mesh.venue_stubs.admin.Drain(admin.DrainRequest(), timeout=CALL_TIMEOUT_S)
        down = await until(lambda: _stream(mesh, 0.0), WAIT_S, 0.2, "the sim's account stream down")
        assert down["losses"] >= 1, down
        assert "sim account stream lost" in mesh.log()
