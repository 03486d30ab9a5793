"""Debian's Prometheus over a running mesh (every service, a trade and a decision), finding every
service through the gateway's HTTP service discovery (GET /prometheus/targets, a read-only key),
with the repository's alert and recording rules (ops/prometheus/rules) loaded and its alerts
routed by Debian's Alertmanager to a webhook receiver of the test: every target up with its
labels, every service's scrape clean for `promtool check metrics`, every recording rule and
every query of the Grafana dashboards (ops/grafana/dashboards) with data, nothing firing in the
quiet mesh, and induced faults (a dead letter, the inspector stood down, the sim venue frozen)
each firing its alert at the webhook, with its labels and runbook, within its `for:` and two
scrapes, and the last two resolved there once mended. One mesh for all: the faults come last.

The production `for:` durations are minutes: the rules are loaded from the repository's files
and dumped with every non-zero `for:` cut to FOR_S (alertmanager_support.rules_shortened); the
expressions, labels and annotations are the files' own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import yaml

from tests.grafana_support import (
    LABEL_VALUES,
    PROMETHEUS_UID,
    Query,
    dashboards,
    queries,
    substitute,
    variables,
)
from tests.integration.alertmanager_support import (
    RULES,
    Received,
    Webhook,
    alertmanager,
    rules_shortened,
    webhook,
)
from tests.integration.gateway_support import (
    MESH_AUTH,
    Gateway,
    Processes,
    at_once,
    both,
    create_key,
    key_taken,
    list_instances,
    module_database,
    mux_add,
    new_key,
    open_mux,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.prometheus_support import (
    EVALUATION_S,
    PROMTOOL,
    SCRAPE_S,
    expected_labels,
    get_json,
    prometheus,
    up_targets,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Venue, best_prices, until
from tests.telegram_standin import bot_api_standin
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus_pb
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.names import DECISIONS, SIGNALS
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import (
    SUPERVISOR_API_KEY,
    TELEGRAM_API_KEY,
    TELEGRAM_BASE_URL,
    TELEGRAM_BOT_TOKEN,
)
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

# A whole mesh: not in the fast tier. Exclusive: its alerts rest on every scrape answering within
# Prometheus's 2 s timeout, a latency the machine must give it whole; beside other tests on a
# slow machine (load 20-30) every service's scrapes took 2-5 s, TargetDown fired and 3 tests failed.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.exclusive]
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

# A frozen venue must stay registered (and so a target, scraped down) for longer than TargetDown
# takes to fire: the registry's ttl at 30 s, heartbeats every 0.5 s.
GATEWAY_ARGS = ("--heartbeat-interval-s", "0.5", "--registry-ttl-s", "30")
# The bridge, the ledger, an advisor and a detector without strategies (--no-examples) cost little
# here and give their rules a series (their counters exist at 0 from the start): every recording
# rule has data in this mesh. Overwatch reads the bars' 1s streams: OverwatchNotClassifying's
# series, quiet while it reads them, and the sim's markets on the Venue dashboard's regime panels
# within seconds (a 1m bar would take a minute to close). The Screener, on the
# shipped screens (a few symbols a minute), costs as little. The Supervisor (looking every second,
# through the gateway's tools) and the Telegram bot (on a Bot API stand-in, no message sent) read
# with the Prometheus key: their counters exist at 0 for every label, the Risk dashboard's panels
# of them have series, and their alerts stay quiet.
MESH = {
    "gateway", "sim", "ingest", "recorder", "bars", "inspector", "bridge", "ledger", "detector", "advisor",
    "overwatch", "screener", "supervisor", "telegram",
}  # fmt: skip
BOT_TOKEN = "4242:prometheus-test"  # the stand-in's; no real bot
FOR_S = 2.0  # every non-zero `for:` of the rules, shortened
# Beyond `for:` and two scrapes: the scrape that sees a frozen target down waits out its
# timeout, Prometheus sends on the next evaluation, and Alertmanager posts at once (group_wait 0s)
# but on a loaded 2-core machine each may take a moment more.
MARGIN_S = 4.0
QUIET_EVALUATIONS = 5  # evaluations of every group with the mesh up, before "nothing fires"
SYMBOL = "BTC/USDT"
MUX_SUBSCRIBE = "trademesh.marketdata.v1.MarketData/Subscribe"
# Grafana's own variables: a minute spans 60 scrapes here (1 s) and 4 in compose (15 s).
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
SCRAPED_WITHIN_S = 20.0
# The account the sim trades for the inspector: enough quote for the one trade (0.01 BTC), not for
# the refused one (0.1 BTC, about 6,500 USDT).
SIM_CONFIG = """
[balances]
USDT = "2000"
"""


@dataclass
class Alerted:
    gateway: Gateway
    prometheus_url: str
    webhook: Webhook
    instances: dict[str, reg.Instance]
    sim: ServiceProcess
    inspector: ServiceProcess
    bus: str
    database_url: str


@pytest.fixture(scope="module")
async def alerted(
    tmp_path_factory: pytest.TempPathFactory, module_database: str, redis_url: str
) -> AsyncIterator[Alerted]:
    directory = tmp_path_factory.mktemp("alerts")
    processes = Processes(directory, module_database)
    metrics = ("--metrics-port", "0")
    sim: ServiceProcess | None = None
    try:
        async with redis_db(redis_url) as bus, webhook() as hook, bot_api_standin(BOT_TOKEN) as bot_api:
            gateway, key = await both(
                lambda: processes.gateway(*GATEWAY_ARGS),
                lambda: new_key(module_database, "prometheus", ["read"]),
            )
            sim = processes.sim(gateway, SIM_CONFIG, 0, *metrics)
            looking = ("--gateway-url", gateway.url, "--every-s", "1")
            polling = ("--gateway-url", gateway.url, "--chat-ids", "42", "--poll-s", "1")
            bot = {TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_API_KEY: key, TELEGRAM_BASE_URL: bot_api.url}
            venue = ("--venue", f"sim={sim.address}")
            database = ("--database-url", module_database)
            started = await at_once(
                lambda: processes.mesh_service(gateway, "inspector", *venue, *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "ingest", *venue, *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "recorder", *database, *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "bars", *venue, *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "bridge", *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "ledger", *venue, *database, *metrics, redis_url=bus),
                lambda: processes.mesh_service(
                    gateway, "detector", "--no-examples", *venue, *database, *metrics, redis_url=bus
                ),
                lambda: processes.mesh_service(
                    gateway, "advisor", *venue, *database, *metrics, redis_url=bus
                ),
                lambda: processes.mesh_service(
                    gateway, "overwatch", "--discover-s", "1", "--timeframe", "1s", *metrics, redis_url=bus
                ),
                lambda: processes.mesh_service(gateway, "screener", *metrics, redis_url=bus),
                lambda: processes.mesh_service(
                    gateway, "supervisor", *looking, *metrics, redis_url=bus, env={SUPERVISOR_API_KEY: key}
                ),
                lambda: processes.mesh_service(
                    gateway, "telegram", *polling, *metrics, redis_url=bus, env=bot
                ),
            )
            inspector = started[0]
            instances = await until(lambda: _all_registered(gateway), 30, what="the mesh registered")
            rules = rules_shortened(directory, FOR_S)
            with (
                alertmanager(directory, hook.url) as manager,
                prometheus(directory, gateway, key, rules, manager) as url,
            ):
                # While Prometheus starts (its storage, the rules, the targets found and first
                # scraped: seconds), the mesh does what gives its series their samples: the chain's
                # counters (a verdict, an order, a fill; a venue's refusal; a decision, in that
                # order: an intent of the advisor's could otherwise take the account's quote
                # first), and the gateway's frames beside them.
                chain = _one_of_each(sim, processes.log_path(sim), inspector, bus)
                await asyncio.gather(chain, _one_mux_frame(gateway, key))
                yield Alerted(gateway, url, hook, instances, sim, inspector, bus, module_database)
    finally:
        if sim is not None and sim.process.poll() is None:
            os.kill(sim.process.pid, signal.SIGCONT)  # a frozen process takes no SIGTERM
        await processes.stop_all()


async def _one_of_each(sim: ServiceProcess, log_path: Path, inspector: ServiceProcess, bus: str) -> None:
    """The chain's counters: a trade, a refusal, a decision, one after another."""
    mark = await _one_trade(sim, log_path, inspector)
    await _one_refusal(inspector, mark)
    await _one_decision(bus)


async def _all_registered(gateway: Gateway) -> dict[str, reg.Instance] | None:
    instances = await list_instances(gateway)
    return instances if set(instances) == MESH else None


def _inspector(inspector: ServiceProcess) -> tuple[grpc.aio.Channel, rk_grpc.InspectorAsyncStub]:
    channel = grpc.aio.insecure_channel(inspector.address)
    return channel, rk_grpc.InspectorStub(channel)


async def _one_trade(sim: ServiceProcess, log_path: Path, inspector: ServiceProcess) -> Decimal:
    """An intent through the inspector, filled at the sim: its verdict, venue call and fill; the
    mid price it was given at."""
    stubs = Venue(sim, log_path).stubs(TEST_TOKEN)
    try:
        bid, ask = await best_prices(stubs, SYMBOL)
    finally:
        await stubs.close()
    mark = (bid + ask) / 2
    await _buy_allowed(inspector, "0.01", mark)
    return mark


async def _one_refusal(inspector: ServiceProcess, mark: Decimal) -> None:
    """An intent the inspector allows and the sim refuses: a purchase of more than the account's
    USDT pays for (about 6,500 USDT, within the order and position limits: the inspector does not
    read the venue's free balance). Its venue call fails (the dashboards' venue call failures)
    with FAILED_PRECONDITION, which is no server error: no alert."""
    await _buy_allowed(inspector, "0.1", mark)


async def _buy_allowed(inspector: ServiceProcess, size: str, mark: Decimal) -> None:
    """A market buy of `size` through the inspector, protected 1,000 away from `mark`: ALLOW."""
    intent = am.Intent(
        venue="sim",
        symbol=SYMBOL,
        side=common.SIDE_BUY,
        size=size,
        entry_type=tf.ORDER_TYPE_MARKET,
        stop_loss=str(mark - Decimal(1000)),
        take_profit=str(mark + Decimal(1000)),
    )
    channel, stub = _inspector(inspector)
    async with channel:
        answer = await stub.SubmitIntent(
            rk.SubmitIntentRequest(intent=intent), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
    assert answer.action == rk.RISK_ACTION_ALLOW, [(r.policy, r.reason) for r in answer.reasons]


async def _one_decision(bus_url: str) -> None:
    """A signal on the bus, decided by the advisor: the chain's decision series (its
    signal-to-decision time among them) have a sample."""
    signal = sig.Signal(
        signal_id=f"watch-{time.time_ns()}", venue="sim", symbol=SYMBOL, direction=sig.DIRECTION_LONG,
        conviction="0.6", score="0.6", threshold="0.5", strategy_id="manual",
    )  # fmt: skip
    signal.ts_signal_ns = signal.ts_event_ns = time.time_ns()
    envelope = bus_pb.Envelope(source="test", ts_publish_ns=signal.ts_signal_ns)
    envelope.signals.signals.append(signal)
    client: Any = open_redis(bus_url)
    try:
        await client.xadd(SIGNALS, {FIELD: envelope.SerializeToString()})

        async def decided() -> bool | None:
            entries = await client.xrange(DECISIONS)
            return True if entries else None

        await until(decided, 30, 0.2, "the advisor's decision of the signal")
    finally:
        await client.aclose()


async def _one_mux_frame(gateway: Gateway, key: str) -> None:
    """A Studio-like Mux session on the gateway (the read key: the Mux needs no more), one market
    data frame through it: the gateway's frame counter."""
    stream = await open_mux(gateway, key)
    try:
        request = md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_BOOK]).SerializeToString()
        added = await mux_add(gateway, key, stream.session_id, "book", MUX_SUBSCRIBE, request, "sim")
        assert added.code == 0, added.message
        await stream.collect(lambda frames: any(f.WhichOneof("frame") == "data" for f in frames))
    finally:
        await stream.close()


async def _query(alerted: Alerted, query: str) -> list[dict[str, Any]]:
    answer = await get_json(f"{alerted.prometheus_url}/api/v1/query", query=query)
    assert answer is not None and answer["status"] == "success", (query, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


async def _scrapes(alerted: Alerted) -> str:
    """What a failed check needs to be read (a target seen down: its scrape too slow on a loaded
    machine, or the service gone): each service's longest scrape of the last two minutes, the
    times it was down, and its target's last error."""
    longest = await _query(alerted, 'max_over_time(scrape_duration_seconds{job="trademesh"}[2m])')
    downs = await _query(alerted, 'count_over_time((up{job="trademesh"} == 0)[2m:])')
    answer = await get_json(f"{alerted.prometheus_url}/api/v1/targets", state="active")
    errors = {
        t["labels"].get("service"): t["lastError"]
        for t in (answer or {}).get("data", {}).get("activeTargets", [])
        if t.get("lastError")
    }
    rows = {r["metric"].get("service"): f"longest scrape {float(r['value'][1]):.2f} s" for r in longest}
    for r in downs:
        rows[r["metric"].get("service")] += f", down {r['value'][1]} time(s)"
    lines = [f"{service}: {row}; {errors.get(service, '')}" for service, row in sorted(rows.items())]
    return "the scrapes (up to 2 min):\n" + "\n".join(lines)


async def _evaluated_since(alerted: Alerted, since: float) -> bool | None:
    """True once every rule group was last evaluated after `since` (a Unix time)."""
    answer = await get_json(f"{alerted.prometheus_url}/api/v1/rules")
    if answer is None:
        return None
    groups = answer["data"]["groups"]
    stamps = [_unix(group["lastEvaluation"]) for group in groups]
    return True if groups and min(stamps) > since else None


def _unix(stamp: str) -> float:
    """An RFC 3339 time of Prometheus's API (nanoseconds, Z) as a Unix time."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    return seconds + (float("0." + fraction[:6]) if fraction else 0.0)


async def _active_alerts(alerted: Alerted) -> list[dict[str, Any]]:
    answer = await get_json(f"{alerted.prometheus_url}/api/v1/alerts")
    assert answer is not None
    alerts: list[dict[str, Any]] = answer["data"]["alerts"]
    return alerts


async def test_every_target_is_up_and_nothing_fires_in_the_quiet_mesh(alerted: Alerted) -> None:
    targets = await until(
        lambda: up_targets(alerted.prometheus_url, len(MESH)), 20, 0.2, "every registered service scraped up"
    )
    expected = {i.instance_id: expected_labels(i) for i in alerted.instances.values()}
    assert {t["labels"]["instance_id"]: t["labels"] for t in targets} == expected
    up_at = time.time()
    # Quiet means: every group evaluated QUIET_EVALUATIONS times with every target up (longer than
    # the shortened `for:`), and no alert pending, firing or posted.
    await until(
        lambda: _evaluated_since(alerted, up_at + QUIET_EVALUATIONS * EVALUATION_S),
        QUIET_EVALUATIONS * EVALUATION_S + 15,
        0.2,
        "the rules evaluated with the mesh up",
    )
    ups = await _query(alerted, 'up{job="trademesh"}')
    ups_by_service = {r["metric"]["service"]: r["value"][1] for r in ups}
    assert ups_by_service == dict.fromkeys(MESH, "1"), await _scrapes(alerted)
    active = await _active_alerts(alerted)
    assert [(a["labels"]["alertname"], a["state"]) for a in active] == []
    assert alerted.webhook.alerts == []


async def test_the_inspector_hears_the_sims_account_stream(alerted: Alerted) -> None:
    """The mesh exercises the account stream the alerts AccountStreamDown and AccountStreamLagHigh
    and the Risk dashboard's account panels read: the inspector follows the sim's StreamAccount
    (up), and the trade's fill reached it as a change (its lag observed), by venue."""

    async def heard() -> dict[str, str] | None:
        up = await _query(alerted, 'trademesh_inspector_account_stream_up{venue="sim"}')
        lag = await _query(alerted, 'trademesh_inspector_account_lag_seconds_count{venue="sim"}')
        if not up or not lag:
            return None
        return {"up": up[0]["value"][1], "changes": lag[0]["value"][1]}

    found = await until(heard, SCRAPED_WITHIN_S, 0.2, "the sim's account stream scraped")
    assert found["up"] == "1" and float(found["changes"]) >= 1, found
    lost = await _query(alerted, 'trademesh_inspector_account_stream_losses_total{venue="sim"}')
    assert [r["value"][1] for r in lost] == ["0"]  # created at 0 with the follower, never lost


def _recording_rules() -> list[str]:
    rules = yaml.safe_load((RULES / "recording.yml").read_text())
    return [rule["record"] for group in rules["groups"] for rule in group["rules"]]


async def test_every_recording_rule_has_a_series(alerted: Alerted) -> None:
    names = _recording_rules()
    # The 1m rates need two scrapes of a counter; the 5m and the increase()s as well.
    started = time.time()
    await until(lambda: _evaluated_since(alerted, started + 2 * EVALUATION_S), 20, 0.2, "two evaluations")

    deadline = time.monotonic() + 15
    while True:  # until every rule has a series, or the deadline: then the ones without
        missing = [name for name in names if not await _query(alerted, name)]
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert missing == []


async def test_every_services_scrape_passes_promtool_check_metrics(alerted: Alerted) -> None:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    problems: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for name, instance in sorted(alerted.instances.items()):
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


async def test_the_targets_need_a_key_with_the_read_scope_and_never_echo_it(alerted: Alerted) -> None:
    url = f"{alerted.gateway.url}/prometheus/targets"
    no_read = await create_key(alerted.database_url, "no-read", ["trade"])
    await key_taken(alerted.gateway, no_read)  # else a refusal as unknown, not for its scope
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


async def test_every_dashboard_query_returns_series_from_the_real_prometheus(alerted: Alerted) -> None:
    boards = {board["uid"]: board for board in dashboards().values()}
    url = alerted.prometheus_url
    offered = "every dashboard variable offers a value"
    values = await until(lambda: _variable_values(url, boards), SCRAPED_WITHIN_S, 0.2, offered)
    expected = [q for q in queries() if q.datasource == PROMETHEUS_UID]
    # The recording rules' 5m rates need two evaluations of a scraped counter: seconds here.
    deadline = time.monotonic() + SCRAPED_WITHIN_S
    while True:
        silent = [q.where for q in expected if not await _answered(url, q, values[q.dashboard])]
        if not silent or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert silent == [], "no series: " + "; ".join(silent)


def _alert_rule(name: str) -> dict[str, Any]:
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    found: list[dict[str, Any]] = [
        rule for group in rules["groups"] for rule in group["rules"] if rule.get("alert") == name
    ]
    assert len(found) == 1, name
    return found[0]


async def _fired(alerted: Alerted, name: str, started: float, **labels: str) -> float:
    """Seconds from `started` (time.monotonic()) to `name` firing at the webhook with `labels`,
    within its `for:` (as shortened), two scrapes and MARGIN_S; its severity and runbook checked
    against the rule's."""
    rule = _alert_rule(name)
    for_s = FOR_S if rule.get("for", "0m") not in ("0m", "0s") else 0.0
    within_s = for_s + 2 * SCRAPE_S + MARGIN_S

    async def posted() -> Received | None:
        return alerted.webhook.firing(name, **labels)

    alert = await until(posted, within_s, 0.05, f"{name} {labels} at the webhook")
    assert alert.labels["severity"] == rule["labels"]["severity"]
    assert alert.annotations["runbook"] == rule["annotations"]["runbook"]
    assert alert.annotations["runbook"] == f"docs/alerts.md#{name.lower()}"
    assert alert.annotations["summary"] and alert.annotations["description"]
    took = alert.at - started
    print(f"{name}: at the webhook {took:.2f} s after the fault (bound {within_s:g} s)")
    return took


async def _resolved(alerted: Alerted, name: str, mended: float, **labels: str) -> float:
    """Seconds from `mended` (time.monotonic()) to `name` resolved at the webhook with `labels`:
    Prometheus resolves an alert on the first evaluation its expression is false (no `for:`), so
    within two scrapes and MARGIN_S."""
    within_s = 2 * SCRAPE_S + MARGIN_S

    async def posted() -> Received | None:
        return alerted.webhook.resolved(name, **labels)

    alert = await until(posted, within_s, 0.05, f"{name} {labels} resolved at the webhook")
    took = alert.at - mended
    print(f"{name}: resolved at the webhook {took:.2f} s after the mend (bound {within_s:g} s)")
    return took


async def test_a_dead_letter_fires_bus_dead_letters(alerted: Alerted) -> None:
    client: Any = open_redis(alerted.bus)
    try:  # the recorder (and the bars) read the sim's trades: this entry is no envelope
        await client.xadd("md.{sim}.trades", {FIELD: b"\xff not an envelope"})

        async def dead_lettered() -> bool | None:  # by the recorder: its counter moved then
            entries = await client.xrange("dlq.md.{sim}.trades")
            return True if any(fields[b"group"] == b"recorder" for _, fields in entries) else None

        # The alert's time counts from the dead letter, not from a loaded recorder's read of it.
        await until(dead_lettered, 30, 0.1, "the recorder's dead letter")
        started = time.monotonic()
    finally:
        await client.aclose()
    await _fired(
        alerted, "BusDeadLetters", started, service="recorder", stream="md.{sim}.trades", group="recorder"
    )
    assert alerted.webhook.names() == {"BusDeadLetters"}, await _scrapes(alerted)


async def test_the_inspector_stood_down_fires_and_resumed_resolves_its_alert(alerted: Alerted) -> None:
    channel, stub = _inspector(alerted.inspector)
    started = time.monotonic()
    async with channel:
        answer = await stub.SetMode(
            rk.SetModeRequest(mode=rk.MODE_STAND_DOWN, reason="test: alerting"),
            metadata=MESH_AUTH,
            timeout=CALL_TIMEOUT_S,
        )
    assert answer.state == rk.RISK_STATE_STANDING_DOWN
    await _fired(alerted, "InspectorStandingDown", started, service="inspector")
    assert alerted.webhook.names() == {"BusDeadLetters", "InspectorStandingDown"}, await _scrapes(alerted)
    channel, stub = _inspector(alerted.inspector)
    async with channel:
        answer = await stub.SetMode(
            rk.SetModeRequest(mode=rk.MODE_RESUME, reason="test: mended"),
            metadata=MESH_AUTH,
            timeout=CALL_TIMEOUT_S,
        )
    mended = time.monotonic()
    assert answer.state != rk.RISK_STATE_STANDING_DOWN
    await _resolved(alerted, "InspectorStandingDown", mended, service="inspector")


async def test_a_frozen_venue_fires_target_down_resolved_on_thaw(alerted: Alerted) -> None:
    # SIGSTOP: the sim stays registered (heartbeats stop, the registry's ttl is 30 s), so its target
    # stays and its scrapes time out: up == 0. A stopped process would leave the registry and the
    # targets at once (it unregisters), and no alert would say so: TargetDown is for the hung.
    started = time.monotonic()
    os.kill(alerted.sim.process.pid, signal.SIGSTOP)
    await _fired(alerted, "TargetDown", started, service="sim", venue="sim")
    os.kill(alerted.sim.process.pid, signal.SIGCONT)  # its next scrape answers: up == 1
    await _resolved(alerted, "TargetDown", time.monotonic(), service="sim", venue="sim")
