"""Debian's Prometheus (/usr/bin/prometheus) against a real mesh: it finds every service through
the gateway's HTTP service discovery (GET /prometheus/targets, with a read-only API key), scrapes
each one up with its labels, and every service's scrape passes `promtool check metrics`; with the
recording and alert rules of ops/prometheus/rules loaded, every query of the Grafana dashboards
(ops/grafana/dashboards) returns series, but those this mesh cannot have (`NO_DATA_HERE`)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.grafana_support import (
    LABEL_VALUES,
    PROMETHEUS_UID,
    Query,
    dashboards,
    queries,
    substitute,
    variables,
)
from tests.integration.gateway_support import (
    Gateway,
    Processes,
    at_once,
    both,
    create_key,
    key_taken,
    list_instances,
    module_database,
    new_key,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.prometheus_support import PROMTOOL, expected_labels, get_json, prometheus, up_targets
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, until
from trademesh.registry.v1 import registry_pb2 as reg

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a whole mesh: not in the fast tier
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

FAST = ("--heartbeat-interval-s", "0.5", "--registry-ttl-s", "2")
# Every service here, each exporting metrics on a port of its own (the gateway on its HTTP port):
# the bus's and the trading chain's, so that the dashboards' queries have series to return.
BUS = {"gateway", "sim", "ingest", "recorder", "bars", "bridge"}
MESH = BUS | {"detector", "advisor", "inspector", "ledger"}
# Prometheus's own start (~1-2 s), a discovery refresh and a scrape at 1 s each: well within.
SCRAPED_WITHIN_S = 20.0
RULES = Path(__file__).resolve().parents[2] / "ops/prometheus/rules"
# Grafana's own variables: a minute spans 60 scrapes here (1 s) and 4 in compose (15 s).
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


@dataclass
class Watched:
    gateway: Gateway
    prometheus_url: str
    instances: dict[str, reg.Instance]
    database_url: str


@pytest.fixture(scope="module")
async def watched(
    tmp_path_factory: pytest.TempPathFactory, module_database: str, redis_url: str
) -> AsyncIterator[Watched]:
    directory = tmp_path_factory.mktemp("prometheus")
    processes = Processes(directory, module_database)
    metrics = ("--metrics-port", "0")
    stored = ("--database-url", module_database)
    try:
        async with redis_db(redis_url) as bus:
            gateway, key = await both(
                lambda: processes.gateway(*FAST), lambda: new_key(module_database, "prometheus", ["read"])
            )
            await at_once(
                lambda: processes.sim(gateway, None, 0, *metrics),
                lambda: processes.mesh_service(gateway, "ingest", *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "recorder", *stored, *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "bars", *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "bridge", *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "detector", *stored, *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "advisor", *stored, *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "inspector", *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "ledger", *stored, *metrics, redis_url=bus),
            )
            instances = await until(lambda: _all_registered(gateway), 30, what="the mesh registered")
            with prometheus(directory, gateway, key, sorted(RULES.glob("*.yml"))) as url:
                yield Watched(gateway, url, instances, module_database)
    finally:
        await processes.stop_all()


async def _all_registered(gateway: Gateway) -> dict[str, reg.Instance] | None:
    instances = await list_instances(gateway)
    return instances if set(instances) == MESH else None


async def test_prometheus_finds_every_registered_service_through_the_gateway_and_scrapes_it_up(
    watched: Watched,
) -> None:
    expected = {i.instance_id: expected_labels(i) for i in watched.instances.values()}
    assert all(instance.metrics_port > 0 for instance in watched.instances.values())

    targets = await until(
        lambda: up_targets(watched.prometheus_url, len(expected)),
        SCRAPED_WITHIN_S,
        0.2,
        "every registered service scraped up",
    )
    assert {t["labels"]["instance_id"]: t["labels"] for t in targets} == expected
    assert all(t["scrapeUrl"].endswith("/metrics") for t in targets)

    answer = await get_json(f"{watched.prometheus_url}/api/v1/query", query='up{job="trademesh"}')
    ups = {r["metric"]["instance_id"]: r["value"][1] for r in answer["data"]["result"]}
    assert ups == dict.fromkeys(expected, "1")
    by_service = await get_json(
        f"{watched.prometheus_url}/api/v1/query", query='count by (kind) (up{job="trademesh"} == 1)'
    )
    kinds = {r["metric"]["kind"]: r["value"][1] for r in by_service["data"]["result"]}
    assert kinds == {"gateway": "1", "venue": "1", "core": str(len(MESH) - 2)}


async def test_every_services_scrape_passes_promtool_check_metrics(watched: Watched) -> None:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    problems: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for name, instance in sorted(watched.instances.items()):
            host = instance.address.rpartition(":")[0]
            async with session.get(f"http://{host}:{instance.metrics_port}/metrics") as reply:
                assert reply.status == 200, name
                scrape = await reply.read()
            assert b"# TYPE" in scrape, name
            checked = await asyncio.to_thread(
                subprocess.run,
                [str(PROMTOOL), "check", "metrics"],
                input=scrape,
                capture_output=True,
                timeout=30,
                check=False,
            )
            said = (checked.stdout + checked.stderr).decode().strip()
            if checked.returncode != 0 or said:
                problems[name] = said
    assert problems == {}


async def test_the_targets_need_a_key_with_the_read_scope_and_never_echo_it(watched: Watched) -> None:
    url = f"{watched.gateway.url}/prometheus/targets"
    no_read = await create_key(watched.database_url, "no-read", ["trade"])
    await key_taken(watched.gateway, no_read)  # else a refusal as unknown, not for its scope
    wrong = "tmk_" + "x" * 40
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        answers = {}
        for label, headers in {
            "none": {},
            "unknown": {"Authorization": f"Bearer {wrong}"},
            "no read": {"Authorization": f"Bearer {no_read}"},
        }.items():
            async with session.get(url, headers=headers) as reply:
                answers[label] = (reply.status, await reply.text())
    assert answers["none"][0] == 401
    assert answers["unknown"][0] == 401
    assert wrong not in answers["unknown"][1]
    assert answers["no read"][0] == 403
    assert "'read' scope" in answers["no read"][1]
    assert no_read not in answers["no read"][1]


# The dashboard queries this mesh cannot answer, and why: (dashboard uid, panel title, refId).
# Its detector runs but does not signal within the test (its strategies warm up first), so
# nothing downstream of a signal happens; a labelled counter has no series before its first
# count. A name here that no dashboard has fails the test.
NO_SIGNAL = "no signal in this mesh: no decision, intent or order, so this labelled counter has no series"
NO_ORDER = "no order in this mesh: no exec.* stream, so the ledger's group has no lag or pending"
NO_STUDIO = "no Studio session in this mesh: no mux frame, so gateway_mux_frames_total{frame} has no series"
NO_DATA_HERE: dict[tuple[str, str, str], str] = {
    ("trademesh-bus", "Gateway mux: frames by kind", "A"): NO_STUDIO,
    ("trademesh-chain", "Rates along the chain", "B"): NO_SIGNAL,
    ("trademesh-chain", "Rates along the chain", "C"): NO_SIGNAL,
    ("trademesh-chain", "Rates along the chain", "D"): NO_SIGNAL,
    ("trademesh-chain", "Decisions by outcome", "A"): NO_SIGNAL,
    ("trademesh-chain", "Verdicts on intents", "A"): NO_SIGNAL,
    ("trademesh-chain", "Order calls by outcome", "A"): NO_SIGNAL,
    ("trademesh-chain", "Signal to decision", "A"): NO_SIGNAL,
    ("trademesh-chain", "Signal to decision", "B"): NO_SIGNAL,
    ("trademesh-risk", "Verdicts by action", "A"): NO_SIGNAL,
    ("trademesh-risk", "Venue call failures", "A"): NO_SIGNAL,
    ("trademesh-ledger", "Ledger consumer lag and pending", "A"): NO_ORDER,
    ("trademesh-ledger", "Ledger consumer lag and pending", "B"): NO_ORDER,
}


async def _variable_values(url: str, boards: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]] | None:
    """Per dashboard, a value of each of its variables as Grafana would offer it: its `All`
    value when it has one, else one of the values Prometheus has for it (the sim when it is
    one); None while a variable offers none."""
    values = {}
    for uid, board in boards.items():
        values[uid] = dict(GRAFANA_BUILTINS)
        for name, variable in variables(board).items():
            found = LABEL_VALUES.match(variable["query"]["query"])
            assert found is not None, name
            selector, label = found.groups()
            answer = await get_json(f"{url}/api/v1/label/{label}/values", **{"match[]": selector})
            offered = answer["data"] if answer is not None else []
            if not offered:
                return None
            values[uid][name] = variable.get("allValue") or ("sim" if "sim" in offered else offered[0])
    return values


async def _answered(url: str, query: Query, values: dict[str, str]) -> bool:
    answer = await get_json(f"{url}/api/v1/query", query=substitute(query.expr, values))
    assert answer is not None and answer["status"] == "success", (query.where, answer)
    return bool(answer["data"]["result"])


async def test_every_dashboard_query_returns_series_from_the_real_prometheus(watched: Watched) -> None:
    boards = {board["uid"]: board for board in dashboards().values()}
    url = watched.prometheus_url
    offered = "every dashboard variable offers a value"
    values = await until(lambda: _variable_values(url, boards), SCRAPED_WITHIN_S, 0.2, offered)
    wanted = [q for q in queries() if q.datasource == PROMETHEUS_UID]
    keys = {(q.dashboard, q.panel, q.ref_id) for q in wanted}
    assert set(NO_DATA_HERE) <= keys, "an exception names a query no dashboard has"
    expected = [q for q in wanted if (q.dashboard, q.panel, q.ref_id) not in NO_DATA_HERE]
    # The recording rules' 5m rates need two evaluations of a scraped counter: seconds here.
    deadline = time.monotonic() + SCRAPED_WITHIN_S
    while True:
        silent = [q.where for q in expected if not await _answered(url, q, values[q.dashboard])]
        if not silent or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert silent == [], "no series: " + "; ".join(silent)
    assert len(expected) >= 0.8 * len(wanted), "most queries are checked, few excepted"
