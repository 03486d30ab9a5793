"""Fuzz every RPC of every service, the MCP tools and the Mux (issue 12, "in CI from now on";
issue 37, "Bad input that still hurts").

The mesh (tests.integration.fuzz_mesh): a gateway, a sim venue and every mesh service, each a
real process; the Supervisor and the Telegram bot act through the gateway's tools with keys of
their own. For every method each serves (from server reflection), hypothesis builds requests
of its input type and raw bodies; fields named venue, symbol, patch_id, strategy_id, price, ...
draw often from pools of the mesh's real values and known bad ones (tests.integration.fuzz_pools:
unknown venues and symbols, NUL, lone surrogates, very long text, the ends of int64, NaN and
-1e30 as decimals), and the methods that do work start from good requests with one field changed
(tests.integration.fuzz_seeds), so requests get past their checks to the work behind them. Every
MCP tool the gateway lists is called with arguments from its schema, pooled alike, every
stream of every service is subscribed to through the gateway's Mux, and the Telegram bot (no
RPC of its own) is fed fuzzed Bot API updates from its operators' chat and strangers'.

During the fuzz: no answer is UNKNOWN or INTERNAL (no MCP tool crashes), and each server stays
SERVING. After it (the tests at the end), once the callers are gone: no process has a retry loop
failing that it did not have before (a follower of a venue nobody serves, a subscription resent
though the venue refused it), and its tasks, the markets and venues it follows, its open streams
and the backtests running come back within a bound of where they were (no request starts
unbounded work; each the least read over a few seconds: work in flight comes and goes); a good
request to it still answers OK (one bad request wedged nothing); no line of its log repeats more
than a few times a second; its log holds no traceback; its memory grew by less than a bound.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import strategies as st

from tests.fuzz_scale import scaled
from tests.integration.fuzz_edges import edge_bodies
from tests.integration.fuzz_mesh import (
    BOT_TOKEN,
    MESH_SERVICES,
    TRADE_AUTH,
    Fuzzed,
    FuzzMesh,
    Work,
    fuzz_mesh,
    log_repeats,
    probe,
    runs_beyond_history,
    watch_work,
)
from tests.integration.fuzz_oracles import oracles
from tests.integration.fuzz_repeats import repeated_bodies
from tests.integration.fuzz_support import (
    Answer,
    Method,
    body_strategy,
    describe,
    fuzz_methods,
    methods_of,
    read_rss_kib,
    sample,
)
from tests.integration.gateway_support import MuxStream, mux_add, mux_remove, open_mux
from tests.integration.mcp_fuzz import mcp_post, tool_arguments, tool_call, tool_outcome
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.integration.telegram_fuzz import NESTED_UPDATES, OPS, STRANGER, seeded
from tests.integration.telegram_fuzz import updates as telegram_updates

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

__all__ = ["database_url", "fuzz_mesh", "redis_url"]  # fixtures

FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
# Methods whose effect would end the fuzzing itself: a drained venue refuses the rest.
SKIPPED = {"/trademesh.admin.v1.Admin/Drain"}
# Methods that make what the others act on (patches to activate): fuzzed before the others.
FIRST = {"/trademesh.patch.v1.Patch/CreatePatch"}
# Methods whose effect changes what the others meet (the inspector halted or its limits
# changed, the real patches deleted, a venue's streams reconnected): fuzzed after the others.
LAST = {
    "/trademesh.risk.v1.Inspector/SetMode",
    "/trademesh.risk.v1.Inspector/UpdatePolicies",
    "/trademesh.risk.v1.Inspector/CancelAllOrders",
    "/trademesh.patch.v1.Patch/DeletePatch",
    "/trademesh.patch.v1.Patch/ArchivePatch",
    "/trademesh.patch.v1.Patch/PausePatch",
    "/trademesh.registry.v1.Registry/Unregister",
    "/trademesh.admin.v1.Admin/Reconnect",
    "/trademesh.supervisor.v1.Supervisor/SetMode",
}
SERVICES = ("venue", *MESH_SERVICES, "registry")
# The processes checked after the fuzz: those fuzzed over gRPC and the Telegram bot (fed fuzzed
# Bot API updates instead: it serves no RPC of its own).
AFTER = (*SERVICES, "telegram")
# Methods that must be among those reflection finds and fuzzed (a service that stopped serving
# one, or one added to SKIPPED, would shrink the fuzz silently): the venue's newest, amending an
# order and streaming the account; the Supervisor's that act and its stream.
FUZZED_FOR_SURE = {
    "venue": {
        "/trademesh.tradeflow.v1.TradeFlow/AmendOrder",
        "/trademesh.tradeflow.v1.TradeFlow/StreamAccount",
    },
    "supervisor": {
        "/trademesh.supervisor.v1.Supervisor/Approve",
        "/trademesh.supervisor.v1.Supervisor/Reject",
        "/trademesh.supervisor.v1.Supervisor/StreamAudit",
    },
}
EXAMPLES_PER_METHOD = scaled(30)
SEEDED_TIMES = 3
EXAMPLES_PER_TOOL = scaled(12)
EXAMPLES_PER_STREAM = scaled(8)
EXAMPLES_OF_UPDATES = scaled(160)
# A server's resident memory may grow this much over the whole run (caches warming up).
RSS_GROWTH_KIB = 150 * 1024
# Once the fuzz is over, a process's tasks come back to within this many of where they were
# before it (the markets of the patches and positions the fuzz made legitimately), and each
# gauge of what it follows or holds open to within this many; its failing retry loops to none
# more than before.
TASK_SLACK = 20
HELD_SLACK = 8
SETTLE_S = 45.0
# Each process's work is read over and over for up to this long, and what it holds after the
# fuzz is the least of those readings (Work.least): a moment's work in flight (the gateway's
# services board checks every instance every 2 s for 60 s after the fuzz's last look at it) is
# in some readings; work left behind is in all. The reading ends once every least is within its
# bound (it could only fall further). The logs from the fuzz's end are watched at least this
# long: no line (numbers and quoted values aside) more than LINES_PER_S times in one second.
WATCH_S = 3.0
LINES_PER_S = 5


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


# ---------------------------------------------------------------- every RPC of every service


@pytest.mark.parametrize("name", SERVICES)
async def test_fuzzed_requests_to_every_method_get_no_unknown_or_internal_and_no_work_they_should_be_refused(
    fuzz_mesh: FuzzMesh, name: str
) -> None:
    service = fuzz_mesh.services[name]
    methods = [m for m in await asyncio.to_thread(methods_of, service.address) if m.path not in SKIPPED]
    assert len(methods) >= 3, [m.path for m in methods]  # health, reflection and its own
    assert FUZZED_FOR_SURE.get(name, set()) <= {m.path for m in methods}, [m.path for m in methods]
    answers: list[Answer] = []
    groups = (
        [m for m in methods if m.path in FIRST],
        [m for m in methods if m.path not in FIRST | LAST],
        [m for m in methods if m.path in LAST],
    )
    for group in groups:
        bodies = [(m, b) for m in group for b in _bodies(m, fuzz_mesh)]
        answers += await fuzz_methods(service.address, bodies, service.auth)
    forbidden = [str(a) for a in answers if a.code in FORBIDDEN]
    took = _took_what_it_should_refuse(answers, fuzz_mesh)
    failures = []
    if forbidden:
        failures += [f"{len(forbidden)} of {len(answers)} answers UNKNOWN or INTERNAL:", *forbidden[:10]]
    if took:
        failures += [f"{len(took)} of {len(answers)} took work it should have refused:", *took[:10]]
    if not await asyncio.to_thread(_serving, service.address):
        failures.append(f"{name} is not SERVING")
    assert not failures, "\n".join(failures)
    # The fuzzing reached the handlers: some calls were refused as bad input, some went through.
    codes = {a.code for a in answers}
    assert grpc.StatusCode.INVALID_ARGUMENT in codes and grpc.StatusCode.OK in codes, codes


# While a service takes requests naming one value thousands of times, each of its health checks
# is answered within this (the backtest hub, naming one strategy 10,000 times, answered nothing
# for four minutes: issue 57, item 8).
ANSWERING_S = 10.0


@pytest.mark.parametrize("name", SERVICES)
async def test_one_value_named_thousands_of_times_is_answered_or_refused_and_the_service_answers_others(
    fuzz_mesh: FuzzMesh, name: str
) -> None:
    service = fuzz_mesh.services[name]
    methods = [
        m for m in await asyncio.to_thread(methods_of, service.address) if m.path not in SKIPPED | LAST
    ]
    bodies = [(m, b) for m in methods for b in repeated_bodies(m, fuzz_mesh.pools)]
    if not bodies:
        pytest.skip(f"{name}'s requests hold no list")
    slowest: list[float] = []
    probing = asyncio.create_task(_answering(service.address, slowest))
    try:
        answers = await fuzz_methods(service.address, bodies, service.auth)
        assert not probing.done(), probing  # a health check failed, or waited past ANSWERING_S
    finally:
        probing.cancel()
    forbidden = [str(a) for a in answers if a.code in FORBIDDEN]
    assert not forbidden, f"{len(forbidden)} of {len(answers)} answers UNKNOWN or INTERNAL:\n" + "\n".join(
        forbidden[:10]
    )
    assert max(slowest, default=0.0) < ANSWERING_S, slowest
    assert await asyncio.to_thread(_serving, service.address)  # and still, once they were all answered


async def _answering(address: str, slowest: list[float]) -> None:
    """Health checks one after another, each within ANSWERING_S; the slowest so far in `slowest`."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            began = time.monotonic()
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=ANSWERING_S)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            slowest[:] = [max([*slowest, time.monotonic() - began])]
            await asyncio.sleep(0.2)


def _took_what_it_should_refuse(answers: list[Answer], mesh: FuzzMesh) -> list[str]:
    """The work a service took on that it should have refused (tests.integration.fuzz_oracles)."""
    checks = oracles(mesh.pools.venues, mesh.listed)
    found = []
    for answer in answers:
        check = checks.get(answer.method.path)
        problems = (
            [] if check is None or answer.code != grpc.StatusCode.OK else check(answer.body, answer.reply)
        )
        if problems:
            found.append(f"{answer.method.path} took {describe(answer)}: {'; '.join(problems)}")
    return found


def _bodies(method: Method, mesh: FuzzMesh) -> list[bytes]:
    """Its edges (tests.integration.fuzz_edges), and hypothesis' requests: more for a method with
    seeds, those do the work (place, decide, create, register)."""
    seeded = method.descriptor.input_type.full_name in mesh.pools.seeds
    count = EXAMPLES_PER_METHOD * (SEEDED_TIMES if seeded else 1)
    return edge_bodies(method, mesh.pools) + sample(body_strategy(method, mesh.pools), count)


# ---------------------------------------------------------------- the MCP tools


async def test_every_mcp_tool_called_with_fuzzed_arguments_answers_or_refuses_and_never_crashes(
    fuzz_mesh: FuzzMesh,
) -> None:
    url = f"http://127.0.0.1:{fuzz_mesh.port}"
    timeout = aiohttp.ClientTimeout(total=60)
    # A connection per call: the gateway closes one after refusing an oversized body unread.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        status, body = await mcp_post(
            session, url, fuzz_mesh.key, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        )
        assert status == 200, body[:500]
        tools = json.loads(body)["result"]["tools"]
        assert len(tools) >= 30, [t["name"] for t in tools]
        calls = [
            tool_call(tool["name"], arguments)
            for tool in tools
            for arguments in sample(tool_arguments(tool, fuzz_mesh.pools), EXAMPLES_PER_TOOL)
        ]
        gate = asyncio.Semaphore(8)

        async def one(message: dict[str, Any]) -> tuple[dict[str, Any], int, bytes]:
            async with gate:
                return (message, *await mcp_post(session, url, fuzz_mesh.key, message))

        answers = await asyncio.gather(*(one(m) for m in calls))
    failed = [(m["params"], s, b[:500]) for m, s, b in answers if s >= 500]
    assert not failed, failed[:5]
    outcomes: dict[str, dict[str, int]] = {}
    crashes = []
    for message, status, body in answers:
        outcome = "refused" if status == 413 else tool_outcome(json.loads(body))
        per_tool = outcomes.setdefault(message["params"]["name"], {})
        per_tool[outcome] = per_tool.get(outcome, 0) + 1
        if outcome == "crash":
            crashes.append((message["params"], body[:500]))
    assert not crashes, f"{len(crashes)} crashes:\n" + "\n".join(map(repr, crashes[:10]))
    # Every tool was reached, and some answered: the pools got calls past their arguments' checks.
    assert {t["name"] for t in tools} == set(outcomes)
    # A call its service did not answer in time went past its arguments' checks too (at load
    # 20-30, 8 of 46 tools' calls waited past their deadlines).
    assert sum(o.get("answer", 0) + o.get("unanswered", 0) for o in outcomes.values()) >= len(tools), outcomes


# ---------------------------------------------------------------- the Mux


@dataclass(frozen=True)
class _Stream:
    target: str  # the instance that serves it
    method: Method


async def test_mux_subscriptions_to_every_stream_of_every_service_end_without_unknown_or_internal(
    fuzz_mesh: FuzzMesh,
) -> None:
    """One Mux session; each service's streams subscribed with fuzzed requests (most of them
    left open), then the session dropped: what they started ends with it (the tests below)."""
    streams = await _streams(fuzz_mesh)
    assert len({s.method.path for s in streams}) >= 10, streams
    targets = st.sampled_from(["", "nope", "sim\x00"])
    adds = [
        (stream, body, target)
        for stream in streams
        for body, target in sample(
            st.tuples(
                body_strategy(stream.method, fuzz_mesh.pools), st.one_of(st.just(stream.target), targets)
            ),
            EXAMPLES_PER_STREAM,
        )
    ]
    mux = await open_mux(fuzz_mesh.gateway, fuzz_mesh.key)
    frames: list[Any] = []
    reader = asyncio.create_task(_read(mux, frames))
    try:
        codes = await _add_all(fuzz_mesh, mux, adds)
    finally:
        reader.cancel()
        await mux.close()  # the client hangs up: every subscription it holds ends
    assert 0 in codes and 3 in codes, codes
    ends = [f.end for f in frames if f.WhichOneof("frame") == "end"]
    forbidden = [e for e in ends if e.code in (2, 13)]
    assert not forbidden, forbidden[:10]


async def _streams(mesh: FuzzMesh) -> list[_Stream]:
    found = []
    for name, service in mesh.services.items():
        target = {"venue": "sim", "registry": "gateway"}.get(name, name)
        for method in await asyncio.to_thread(methods_of, service.address):
            if method.server_streaming and not method.client_streaming:
                found.append(_Stream(target, method))
    return found


async def _read(mux: MuxStream, frames: list[Any]) -> None:
    """Reads the session's frames as they come (a session that is not read counts as slow)."""
    while True:
        try:
            frames.extend(await mux.frames(timeout_s=3600))
        except AssertionError:  # the stream ended
            return


async def _add_all(mesh: FuzzMesh, mux: MuxStream, adds: list[tuple[_Stream, bytes, str]]) -> dict[int, int]:
    codes: dict[int, int] = {}
    gate = asyncio.Semaphore(8)

    async def one(index: int, stream: _Stream, body: bytes, target: str) -> None:
        async with gate:
            subscription = f"f{index}"
            answer = await mux_add(
                mesh.gateway, mesh.key, mux.session_id, subscription, stream.method.path, body, target
            )
            assert answer.code not in (2, 13), (stream.method.path, target, body[:300], answer.message)
            codes[answer.code] = codes.get(answer.code, 0) + 1
            if answer.code == 0 and index % 2:
                removed = await mux_remove(mesh.gateway, mesh.key, mux.session_id, subscription)
                assert removed.code not in (2, 13), removed.message

    await asyncio.gather(*(one(i, *add) for i, add in enumerate(adds)))
    return codes


# ---------------------------------------------------------------- the Telegram bot


async def test_the_telegram_bot_fed_fuzzed_updates_answers_each_operators_message_once_and_no_other(
    fuzz_mesh: FuzzMesh,
) -> None:
    """Updates from the operators' chat and others' (tests.integration.telegram_fuzz), then an
    operator's commands that reach the mesh's tools, then a marker: the bot reads its updates in
    order, so once the marker is answered every update before it was handled. Each text message
    from the operators' chat got one reply, nothing else got any (updates nested thousands deep
    among them); no reply shows a traceback or a secret; each command reached its tool."""
    standin = fuzz_mesh.telegram
    updates = sample(telegram_updates(fuzz_mesh.pools), EXAMPLES_OF_UPDATES)
    commands = seeded(fuzz_mesh.strategy)
    sent = len(standin.sent)
    for index, update in enumerate(updates):
        await standin.push(update.body)
        if index % max(1, len(updates) // len(NESTED_UPDATES)) == 0:  # among the others
            await standin.push_raw(NESTED_UPDATES[index % len(NESTED_UPDATES)])
    await standin.say(STRANGER, "/status")
    for text, _ in commands:
        await standin.say(OPS, text)
    marker = f"/m{uuid.uuid4().hex[:12]}"
    await standin.say(OPS, marker)

    async def marker_answered() -> bool | None:
        return True if any(marker in text for _, text in standin.sent[sent:]) else None

    await until(marker_answered, 120, interval_s=0.2, what="the bot's answer to the marker")
    replies = standin.sent[sent:]
    answered = sum(1 for update in updates if update.answered) + len(commands) + 1
    assert [chat for chat, _ in replies] == [OPS] * answered, (
        f"{answered} operators' messages of {len(updates)} updates, replies to {[c for c, _ in replies]}"
    )
    secrets = (BOT_TOKEN, fuzz_mesh.bot_key, "Traceback")
    shown = [text for _, text in replies if not text.strip() or any(s in text for s in secrets)]
    assert not shown, shown[:5]
    acted = [text for _, text in replies[-len(commands) - 1 : -1]]
    unreached = [(c, r) for (c, begins), r in zip(commands, acted, strict=True) if not r.startswith(begins)]
    assert not unreached, unreached


# ---------------------------------------------------------------- after the fuzz


@dataclass(frozen=True)
class After:
    before: Work
    after: Work
    grown: list[str]  # what did not come back within its bound
    repeats: tuple[int, str]  # the most one line was logged in a second after the fuzz, and it
    rss_grown_kib: int
    serving: bool
    probed: str | None  # what went wrong with a good request to it after the fuzz, if anything
    beyond: list[str]  # the backtester's runs beyond any recorded history


@pytest.fixture(scope="module")
async def aftermath(fuzz_mesh: FuzzMesh) -> Mapping[str, After]:
    """Each process once the fuzz is over: its work when every one has settled within its bound
    (or SETTLE_S has passed), the least of it over a window of up to WATCH_S, its log's repeats
    from the fuzz's end to the settling (WATCH_S at least), and its answer to a good request."""
    services = fuzz_mesh.services
    offsets = {name: len(s.log().encode()) for name, s in services.items()}
    # Settled: a window of readings in which nothing stayed above its bound (ended as soon as
    # none did), taken again until one is or SETTLE_S has passed. One reading was not enough: a
    # retry loop between two of its tries reads as not failing (ingest following the venue a
    # fuzzed Register named, until the registry loses it 4 s on), and the window after it still
    # found the loop failing.
    began = time.monotonic()

    def settled(least: Mapping[str, Work]) -> bool:
        return not any(_grown(services[name], work) for name, work in least.items())

    while True:
        logged_s = max(0.0, began + WATCH_S - time.monotonic())
        watched = await watch_work(services, WATCH_S, settled, at_least_s=logged_s)
        grown = {name: _grown(services[name], Work.least(w)) for name, w in watched.items()}
        if not any(grown.values()) or time.monotonic() > began + SETTLE_S:
            break
    found = {}
    for name, service in services.items():
        now = Work.least(watched[name])
        assert service.before is not None
        after_log = service.log_path.read_bytes()[offsets[name] :].decode(errors="replace")
        found[name] = After(
            service.before, now, _grown(service, now), log_repeats(after_log),
            read_rss_kib(service.pid) - service.rss_kib, await asyncio.to_thread(_serving, service.address),
            await probe(service, fuzz_mesh),
            await runs_beyond_history(service, fuzz_mesh) if name == "backtester" else [],
        )  # fmt: skip
    return found


def _grown(service: Fuzzed, now: Work) -> list[str]:
    assert service.before is not None
    return now.over(service.before, TASK_SLACK, HELD_SLACK)


@pytest.mark.parametrize("name", AFTER)
def test_after_the_fuzz_no_work_a_request_started_is_left_and_the_log_is_quiet_and_clean(
    fuzz_mesh: FuzzMesh, aftermath: Mapping[str, After], name: str
) -> None:
    after, service = aftermath[name], fuzz_mesh.services[name]
    failures = [] if after.serving else ["not SERVING"]
    failures += [] if service.probed is None else [f"before the fuzz: {service.probed}"]
    failures += [] if after.probed is None else [f"after the fuzz: {after.probed}"]
    failures += [f"within {SETTLE_S} s of the fuzz's end: {', '.join(after.grown)}"] if after.grown else []
    most, line = after.repeats
    failures += [f"logged {most} times in a second after the fuzz: {line}"] if most > LINES_PER_S else []
    log = service.log()
    if "Traceback" in log:
        at = log.index("Traceback")
        failures.append(f"logged a traceback:\n{log[max(0, at - 500) : at + 4000]}")
    failures += [f"a backtest beyond the recorded history: {run}" for run in after.beyond]
    if after.rss_grown_kib >= RSS_GROWTH_KIB:
        failures.append(f"its memory grew by {after.rss_grown_kib} KiB")
    assert not failures, f"{name}: " + "\n".join(failures)


# ---------------------------------------------------------------- the end: the venue drained


async def test_fuzzed_drains_of_the_venue_at_the_end_get_no_unknown_or_internal(fuzz_mesh: FuzzMesh) -> None:
    """Admin/Drain, left out above (a drained venue refuses the rest), on the mesh's venue once
    everything else is done (the checks after the fuzz above; no other venue to start for it)."""
    venue = fuzz_mesh.services["venue"]
    drain = [m for m in await asyncio.to_thread(methods_of, venue.address) if m.path in SKIPPED]
    assert [m.path for m in drain] == sorted(SKIPPED)
    bodies = [(m, b) for m in drain for b in _bodies(m, fuzz_mesh)]
    answers = await fuzz_methods(venue.address, bodies, TRADE_AUTH)
    forbidden = [str(a) for a in answers if a.code in FORBIDDEN]
    assert not forbidden, forbidden[:10]
    codes = {a.code for a in answers}
    assert grpc.StatusCode.OK in codes, codes  # some drained it; the rest were refused as bad
    assert "Traceback" not in venue.log()
