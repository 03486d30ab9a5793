"""The advisor's shell feeds the inspector's limits to its core (issue 57 item 4; docs/advisor.md,
"Within the inspector's limits"): a real inspector registered with a real gateway (a sim venue,
Redis, PostgreSQL), read by trademesh.core.advisor.policies through the gateway's registry with the mesh's
token, as the advisor's process reads them. The demo's shipped limits reach the core; a policy
file tightened on disk (the inspector rereads it) reaches it within a few polls; an intent the
core then makes stays within the tightened limit."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from tests.advisor_support import NOW_NS, context, signal
from tests.integration.gateway_support import Processes
from tests.integration.mesh import redis_db, venue_link
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, until
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.config import (
    AdvisorConfig,
    SizingConfig,
    SynthesisConfig,
    ValidationConfig,
)
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision
from trademesh.core.advisor.engine.limits import RiskLimits
from trademesh.core.advisor.policies import InspectorLimits
from trademesh.core.domain.model import Balance, Position
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.tools.resolver import MeshResolver
from trademesh.core.tools.upstream import Upstream

pytestmark = [pytest.mark.integration]
__all__ = ["database_url", "redis_url"]  # fixtures

D = Decimal
WAIT_S = 30.0
SHIPPED = Path(__file__).parents[2] / "trademesh" / "core" / "inspector" / "default_policies.toml"
DEMO = AdvisorConfig(
    validation=ValidationConfig(cap_target_at_swing=False),
    synthesis=SynthesisConfig(llm_enabled=False),
    sizing=SizingConfig(max_notional_share=D("0.008")),  # the demo's: 8,000 of 1,000,000 USDT
)


async def test_the_inspectors_limits_reach_the_advisors_core_and_follow_a_change(
    tmp_path: Path, database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN, TEST_TOKEN)  # the mesh's token, as the advisor holds it
    policies = tmp_path / "policies.toml"
    policies.write_text(SHIPPED.read_text())
    async with new_database(database_url, "limits") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            sim = processes.sim(gateway)
            processes.mesh_service(
                gateway, "inspector", *venue_link("inspector", sim.address), "--deadman-ttl-ms", "0",
                "--policies", str(policies), redis_url=bus,
            )  # fmt: skip
            resolver = MeshResolver(gateway.grpc_address)
            upstream = Upstream(resolver, 2.0)
            core = AdvisorCore(DEMO, None, Calibration.identity())
            stop = asyncio.Event()
            follow = asyncio.create_task(resolver.follow(stop, every_s=0.2))
            feeding = asyncio.create_task(InspectorLimits(upstream, every_s=0.2).run(stop, core.on_limits))
            try:
                await _limits_become(core, RiskLimits(D("10000"), D("20000")))
                policies.write_text(
                    SHIPPED.read_text().replace('max_notional = "20000"', 'max_notional = "12000"')
                )
                await _limits_become(core, RiskLimits(D("10000"), D("12000")))
                decided = core.on_signal(signal(), context(balances=(Balance("USDT", D("1000000")),)), NOW_NS)
                assert isinstance(decided, Decision) and decided.intent is not None
                assert decided.intent.entry_price is not None
                held = D("50")  # a position of 5,100.5 USDT: 11,880 less it leaves 6,779.5
                rich = context(balances=(Balance("USDT", D("1000000")),), positions=(_long(held),))
                again = core.on_signal(dataclasses.replace(signal(), signal_id="sig-2"), rich, NOW_NS)
                assert isinstance(again, Decision) and again.intent is not None
                assert (held + again.intent.size) * decided.intent.entry_price <= D("12000")
            finally:
                stop.set()
                for task in (follow, feeding):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await upstream.close()
                await resolver.close()
        finally:
            await processes.stop_all()


async def _limits_become(core: AdvisorCore, expected: RiskLimits) -> None:
    async def reached() -> bool | None:
        return True if core.limits == expected else None

    await until(reached, WAIT_S, 0.1, f"the core's limits {expected}")


def _long(size: Decimal) -> Position:
    return Position("BTC/USDT", size, D("102.01"))
