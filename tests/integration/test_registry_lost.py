"""A crashed venue alerts (issue 56 item 8): a real gateway and a real sim venue; the venue killed
with -9 leaves the registry's listing but stays in its Prometheus targets labelled lost, and a real
Prometheus over them, with the repository's rules (their `for:` shortened), fires TargetDown for it
and InstanceLost; drained with the Unregister docs/alerts.md gives, it is gone from the targets and
the alert resolves. A graceful stop is never lost. Two gateways sharing the registry both keep it
lost, and a drain at one reaches the other."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.alertmanager_support import rules_shortened
from tests.integration.gateway_support import (
    BUF,
    PROTO,
    Gateway,
    Processes,
    create_key,
    key_taken,
    list_instances,
    module_database,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.prometheus_support import SCRAPE_S, get_json, prometheus
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, metric_samples, metrics_page, until
from trademesh.core.platform.service.process import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "module_database", "redis_url"]  # fixtures, for pytest

TTL_S = 2.0
FAST = ("--heartbeat-interval-s", "0.5", "--registry-ttl-s", str(TTL_S))
FOR_S = 2.0  # every alert's `for:`, shortened
# The kill to an alert: the ttl, a discovery refresh (1 s), two scrapes, `for:`, an evaluation
# (1 s) and a loaded machine's slack.
ALERTED_WITHIN_S = TTL_S + 1 + 2 * SCRAPE_S + FOR_S + 1 + 15


async def targets(gateway: Gateway, key: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)) as http,
        http.get(f"{gateway.url}/prometheus/targets", headers=headers) as reply,
    ):
        assert reply.status == 200, await reply.text()
        groups: list[dict[str, Any]] = await reply.json()
        return groups


async def sim_labels(gateway: Gateway, key: str) -> dict[str, str] | None:
    """The labels of the sim's target group, None when it has none."""
    found = [g["labels"] for g in await targets(gateway, key) if g["labels"]["service"] == "sim"]
    assert len(found) <= 1, found
    return found[0] if found else None


async def lost_sim(gateway: Gateway, key: str) -> dict[str, str] | None:
    labels = await sim_labels(gateway, key)
    return labels if labels is not None and labels.get("lost") == "true" else None


def kill_9(sim: ServiceProcess) -> float:
    sim.process.send_signal(signal.SIGKILL)
    sim.process.wait()
    return time.monotonic()


async def lost_counted(gateway: Gateway) -> dict[str, float]:
    page = await metrics_page(gateway.service.port)  # the gateway's metrics: its HTTP port
    return metric_samples(page, "trademesh_registry_lost_instances")


def drain(gateway: Gateway, instance_id: str) -> subprocess.CompletedProcess[str]:
    """docs/alerts.md (InstanceLost): Registry/Unregister with the mesh token on the gRPC port."""
    command = [
        str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--schema", str(PROTO),
        "-H", f"Authorization: Bearer {TEST_TOKEN}", "-d", json.dumps({"instance_id": instance_id}),
        f"http://{gateway.grpc_address}/trademesh.registry.v1.Registry/Unregister",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


async def firing(prometheus_url: str, alert_name: str, **labels: str) -> dict[str, Any] | None:
    """The alert `alert_name` firing with `labels` at Prometheus, None while it is not."""
    answer = await get_json(f"{prometheus_url}/api/v1/alerts")
    if answer is None:
        return None
    wanted = {"alertname": alert_name, **labels}
    for alert in answer["data"]["alerts"]:
        if alert["state"] == "firing" and all(alert["labels"].get(k) == v for k, v in wanted.items()):
            found: dict[str, Any] = alert
            return found
    return None


@pytest.fixture
async def processes(tmp_path: Path, module_database: str) -> AsyncIterator[Processes]:
    started = Processes(tmp_path, module_database)
    try:
        yield started
    finally:
        await started.stop_all()


async def read_key(database: str, gateways: list[Gateway], name: str) -> str:
    key = await create_key(database, name, ["read"])
    for gateway in gateways:
        await key_taken(gateway, key)
    return key


async def test_a_killed_venue_stays_a_lost_target_fires_target_down_and_instance_lost_until_drained(
    processes: Processes, tmp_path: Path, module_database: str
) -> None:
    gateway = processes.gateway(*FAST)
    key = await read_key(module_database, [gateway], "lost-read")
    sim = processes.sim(gateway, None, 0, "--metrics-port", "0")
    live = await until(lambda: sim_labels(gateway, key), 30, 0.1, "the sim among the targets")
    assert "lost" not in live
    rules = rules_shortened(tmp_path, FOR_S)
    with prometheus(tmp_path, gateway, key, rules) as url:

        async def scraped_up() -> bool | None:
            answer = await get_json(f"{url}/api/v1/query", query='up{service="sim"}')
            result = [] if answer is None else answer["data"]["result"]
            return True if [r["value"][1] for r in result] == ["1"] else None

        await until(scraped_up, 30, 0.2, "Prometheus scraping the sim")
        killed = kill_9(sim)
        lost = await until(lambda: lost_sim(gateway, key), TTL_S + 10, 0.1, "the sim a lost target")
        assert lost["instance_id"] == live["instance_id"] and lost["venue"] == "sim"
        assert "sim" not in await list_instances(gateway)  # not listed, not followed, not routed to
        assert (await lost_counted(gateway)).get('{name="sim"}') == 1
        down = await until(
            lambda: firing(url, "TargetDown", service="sim", lost="true"), ALERTED_WITHIN_S, 0.2,
            "TargetDown for the lost sim",
        )  # fmt: skip
        print(f"TargetDown fired {time.monotonic() - killed:.1f} s after the kill")
        assert down["labels"]["instance_id"] == live["instance_id"]
        await until(
            lambda: firing(url, "InstanceLost", name="sim", service="gateway"), ALERTED_WITHIN_S, 0.2,
            "InstanceLost for the sim",
        )  # fmt: skip
        print(f"InstanceLost fired {time.monotonic() - killed:.1f} s after the kill")

        drained = await asyncio.to_thread(drain, gateway, live["instance_id"])
        assert drained.returncode == 0, drained.stderr
        assert await sim_labels(gateway, key) is None
        assert '{name="sim"}' not in await lost_counted(gateway)

        async def resolved() -> bool | None:
            return True if await firing(url, "InstanceLost", name="sim") is None else None

        await until(resolved, 3 * SCRAPE_S + 10, 0.2, "InstanceLost resolved once drained")
    assert "forgot lost instance sim" in gateway.log()


async def test_a_venue_stopped_gracefully_leaves_the_targets_at_once_and_is_never_lost(
    processes: Processes, module_database: str
) -> None:
    gateway = processes.gateway(*FAST)
    key = await read_key(module_database, [gateway], "graceful-read")
    sim = processes.sim(gateway, None, 0, "--metrics-port", "0")
    await until(lambda: sim_labels(gateway, key), 30, 0.1, "the sim among the targets")
    assert await processes.stop(sim) == 0
    assert await sim_labels(gateway, key) is None
    await asyncio.sleep(TTL_S + 1)  # past the ttl: what a lost one would be by now
    assert await sim_labels(gateway, key) is None
    assert '{name="sim"}' not in await lost_counted(gateway)


async def test_gateways_sharing_the_registry_both_keep_the_killed_venue_lost_and_a_drain_reaches_both(
    processes: Processes, module_database: str, redis_url: str
) -> None:
    async with redis_db(redis_url) as bus:
        shared = (*FAST, "--shared-registry", "--redis-url", bus)
        first, second = processes.gateway(*shared), processes.gateway(*shared)
        key = await read_key(module_database, [first, second], "shared-lost-read")
        sim = processes.sim(first, None, 0, "--metrics-port", "0")
        live = await until(lambda: sim_labels(second, key), 30, 0.1, "the sim listed by the second gateway")
        kill_9(sim)
        for gateway in (first, second):
            lost = await until(partial(lost_sim, gateway, key), TTL_S + 10, 0.1, "the sim lost at each")
            assert lost["instance_id"] == live["instance_id"]
        drained = await asyncio.to_thread(drain, second, live["instance_id"])
        assert drained.returncode == 0, drained.stderr

        async def gone_at_first() -> bool | None:
            return True if await sim_labels(first, key) is None else None

        await until(gone_at_first, 5, 0.1, "the drain at the second reaching the first")
        assert '{name="sim"}' not in await lost_counted(first)
