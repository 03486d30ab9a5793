"""The Supervisor (`trademesh supervisor`, docs/supervisor.md) against a real mesh: a gateway,
the sim, a detector running the example strategies, an inspector and a ledger as processes, the
supervisor as a process with its own key (read, trade) looking every 0.5 s. A strategy paused by
hand, with no drawdown, is one its rules propose to resume: waiting for an operator in propose
mode (approved over gRPC: the detector's patches active again), resumed by itself in act mode.
What it did is read back from the detector, and from its audit stream.

The module's set-up starts at once what its tests share: a recorder of the audit stream, the
keys the tool tests use, and the stand-in model (one process, a model per mode). The tests of the
module's own supervisor come last: it starts with the first of them, so it looks only while they
run. The supervisors asking a lying or malformed model only watch: they run together, each
stopped once it has done its looks, and their tests read what they did. A wait for looks gives
each look its own deadline (LOOK_S): it follows the work, not a fixed total a loaded run outlasts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest

from tests.forked_services import run_command
from tests.integration.client_mesh import AUTH, ClientMesh, client_mesh
from tests.integration.gateway_support import at_once, new_key
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.llm_standin import Standin, start_standin
from trademesh.core.platform.config.env import (
    GATEWAY,
    LLM_BASE_URL,
    LLM_MODELS,
    REDIS_URL,
    SUPERVISOR_API_KEY,
    TOKEN,
)
from trademesh.core.platform.errors import FailedPrecondition, Unauthenticated
from trademesh.core.platform.mesh_tools import MeshTools
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.supervisor.v1 import supervisor_pb2_grpc as sv_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
T = TypeVar("T")
__all__ = ["database_url", "redis_url"]  # fixtures


@dataclass
class Shared:
    """The module's mesh and what its tests share: a recorder of `supervisor.audit`, the stand-in
    model, and the keys the tool tests use, by name (made at the set-up: the gateway takes them
    at once)."""

    services: ClientMesh
    recorder: ServiceProcess
    standin: Standin
    keys: dict[str, str]


@dataclass
class Mesh:
    services: ClientMesh
    supervisor: ServiceProcess

    def stub(self, channel: grpc.aio.Channel) -> sv_grpc.SupervisorAsyncStub:
        stub: sv_grpc.SupervisorAsyncStub = sv_grpc.SupervisorStub(channel)
        return stub

    async def state(self) -> sv.GetStateResponse:
        async with grpc.aio.insecure_channel(self.supervisor.address) as channel:
            return await self.stub(channel).GetState(
                sv.GetStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )

    async def call(self, method: str, request: object) -> object:
        async with grpc.aio.insecure_channel(self.supervisor.address) as channel:
            return await getattr(self.stub(channel), method)(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)

    async def audit(self) -> list[sv.AuditEntry]:
        async with grpc.aio.insecure_channel(self.supervisor.address) as channel:
            call = self.stub(channel).StreamAudit(
                sv.StreamAuditRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
            first = await call.read()
            call.cancel()
        assert isinstance(first, sv.StreamAuditResponse)
        return list(first.entries)


# How long one look may take before a wait for looks fails: a look is a round of tool calls
# through the gateway (and the model's answer), 1-3 s here, 5-10 s under a whole run's load
# (25-30), 10-15 s for each of the six supervisors `watched` runs at once at load 30-35. A wait
# for a proposal or an action waits as long (it comes at the next look or the one after).
LOOK_S = 60.0


async def looks_until(
    count: Callable[[], Awaitable[int]], wanted: int, what: str, interval_s: float = 0.2
) -> None:
    """Until `count` (of a supervisor's trail entries, one or more a look) reaches `wanted`; the
    deadline follows the work: each new entry gives the next LOOK_S, so a loaded run's slow looks
    do not fail the wait while no look at all does."""
    seen, deadline = await count(), time.monotonic() + LOOK_S
    while seen < wanted:
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {seen} of {wanted}, none more within {LOOK_S} s")
        await asyncio.sleep(interval_s)
        now = await count()
        if now > seen:
            seen, deadline = now, time.monotonic() + LOOK_S


async def _patient(call: Callable[[], Awaitable[T]]) -> T:
    """`call`'s answer, asked again while the supervisor is too busy to answer within
    CALL_TIMEOUT_S, for up to LOOK_S: the six `watched` starts at once on two loaded cores each
    spend seconds of CPU on their first look (the tool clients' imports)."""
    deadline = time.monotonic() + LOOK_S
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED or time.monotonic() > deadline:
                raise


def _supervisor(
    services: ClientMesh,
    llm: Standin | None = None,
    mode: str = "propose",
    redis: bool = False,
    registered: bool = False,
    model: str = "primary",
) -> ServiceProcess:
    """A supervisor looking every 0.5 s (asking the stand-in's `model` when given; its audit
    trail on the mesh's bus with `redis`; registered with the gateway, as `trademesh up` runs it,
    with `registered`: the gateway's tools and gRPC reach it then). Its log is
    `supervisor-<model>-*.log` when it asks a model."""
    env = {**os.environ, SUPERVISOR_API_KEY: services.key}
    env.pop(REDIS_URL, None)
    env.pop(GATEWAY, None)
    if registered:  # with the mesh token, as every service of the mesh
        env |= {GATEWAY: f"127.0.0.1:{services.gateway.info['grpc_port']}", TOKEN: TEST_TOKEN}
    if redis:
        env[REDIS_URL] = services.redis
    if llm is not None:
        env |= {LLM_BASE_URL: llm.base_url, LLM_MODELS: model}
    asks = model if llm is not None else "rules"
    log = (services.directory / f"supervisor-{asks}-{mode}-{redis}-{time.monotonic_ns()}.log").open("w")
    return start_service(
        ["supervisor", "--port", "0", "--metrics-port", "-1", "--gateway-url", services.gateway_url,
         "--every-s", "0.5", "--mode", mode],
        env=env, stderr=log, timeout_s=60,
    )  # fmt: skip


# Each stopped the Supervisor (issue 57 item 12): what its trail then says of the model's answer.
MALFORMED_ANSWERS = {
    "supervise-surrogate-content": "1 tool calls",
    "supervise-surrogate-name": "1 tool calls",
    "supervise-surrogate-arguments": "1 tool calls",
    "supervise-nested-answer": "a malformed answer refused (answer: nested deeper than 64 levels)",
    "supervise-nested-arguments": "1 tool calls",
}
# The stand-in's models, each named as the mode it answers in (what the trail says is its `who`).
MODELS = ("supervise", "supervise-lying", *MALFORMED_ANSWERS)
# The keys the tool tests use: a reader's, and two admins' (one a test).
KEYS = {"supervisor-reader": ("read",), "supervisor-admin": ("read", "admin"),
        "supervisor-tighten": ("read", "admin")}  # fmt: skip


def _audit_recorder(services: ClientMesh) -> ServiceProcess:
    """A real recorder of the supervisors' trail (the stream `supervisor.audit`)."""
    return start_service(
        ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", services.redis,
         "--database-url", services.database, "--consumer", "c1", "--stream", "supervisor.audit"],
        stderr=(services.directory / "recorder-audit.log").open("w"), timeout_s=60,
    )  # fmt: skip


def _shared(stack: contextlib.ExitStack, services: ClientMesh) -> list[Any]:
    """The start of each of the module's shared processes and keys, for at_once (each process
    stopped by `stack`, whatever the others did)."""

    def started(start: Any, stop: Any) -> Any:
        made = start()
        stack.callback(stop, made)
        return made

    return [
        functools.partial(started, functools.partial(_audit_recorder, services), ServiceProcess.terminate),
        functools.partial(
            started, functools.partial(start_standin, "supervise", {m: m for m in MODELS}), Standin.stop
        ),
        *(functools.partial(new_key, services.database, name, scopes) for name, scopes in KEYS.items()),
    ]


@pytest.fixture(scope="module")
async def shared(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> AsyncIterator[Shared]:
    directory = tmp_path_factory.mktemp("supervisor")
    async with contextlib.AsyncExitStack() as stack:
        services = await stack.enter_async_context(
            client_mesh(directory, redis_url, database_url, ["read", "trade"], ledger=True)
        )
        stops = stack.enter_context(contextlib.ExitStack())
        recorder, standin, *keys = await at_once(*_shared(stops, services))
        yield Shared(services, recorder, standin, dict(zip(KEYS, keys, strict=True)))


@pytest.fixture(scope="module")
async def mesh(shared: Shared) -> AsyncIterator[Mesh]:
    """The module's supervisor, registered with the gateway. Its tests come last in the module:
    it starts when the first of them does, and looks only while they run (the others start
    supervisors of their own)."""
    supervisor = await asyncio.to_thread(_supervisor, shared.services, registered=True)
    try:
        found = Mesh(shared.services, supervisor)

        async def observing() -> bool | None:  # the gateway knows the detector, inspector, ledger
            state = await found.state()
            return True if state.observed.startswith(("1 ", "2 ", "3 ", "4 ")) else None

        await until(observing, 60, 0.5, "the supervisor's first whole observation")
        yield found
    finally:
        await asyncio.to_thread(supervisor.terminate)


@contextlib.contextmanager
def _asking(shared: Shared, model: str) -> Iterator[Mesh]:
    """A second supervisor on the same mesh, asking the stand-in's `model` at each look."""
    supervisor = _supervisor(shared.services, shared.standin, model=model)
    try:
        yield Mesh(shared.services, supervisor)
    finally:
        supervisor.terminate()


async def test_the_models_proposal_is_checked_and_waits_for_the_operator(shared: Shared) -> None:
    """The model (the stand-in's `supervise`: pause the first running strategy, quoting its
    drawdown) proposes through its tool; checked, it waits in propose mode; rejected, it is
    dropped and recorded. Its prompt, its call and its answer are in the audit trail."""
    with _asking(shared, "supervise") as asked:

        async def proposed() -> sv.Proposal | None:
            return next((p for p in (await asked.state()).open if p.source == "supervise"), None)

        proposal = await until(proposed, LOOK_S, 0.2, "the model's proposal")
        assert proposal.kind == sv.ACTION_KIND_PAUSE and "drawdown is" in proposal.reason, proposal
        rejected = await asked.call(
            "Reject", sv.RejectRequest(proposal_id=proposal.proposal_id, reason="not now")
        )
        assert isinstance(rejected, sv.RejectResponse) and [e.kind for e in rejected.audit] == ["rejected"]
        trail = await asked.audit()
        by_model = {e.kind for e in trail if e.who == "supervise"}
        assert {"prompt", "tool_call", "answer", "proposal"} <= by_model, by_model
        prompt = next(e.detail for e in trail if e.kind == "prompt")
        assert '"strategies"' in prompt and proposal.strategy in prompt
    assert await shared.services.patch_states(proposal.strategy) == {pb.PATCH_STATE_ACTIVE}


@dataclass
class Watched:
    """What a supervisor asking one model did by the time it had looked enough: its trail and
    its open proposals then, whether it still ran then, and its log once stopped."""

    trail: list[sv.AuditEntry]
    open: list[sv.Proposal]
    running: bool
    log: str


async def _watch(shared: Shared, model: str, kind: str, count: int) -> Watched:
    """A supervisor asking the stand-in's `model`, until its trail holds `count` entries of
    `kind` by the model; stopped then."""
    supervisor = await asyncio.to_thread(_supervisor, shared.services, shared.standin, model=model)
    asked = Mesh(shared.services, supervisor)
    try:

        async def made() -> int:
            return sum(1 for e in await _patient(asked.audit) if e.kind == kind and e.who == model)

        # Once a second: a look takes longer, and each read is the whole trail (the prompts).
        await looks_until(made, count, f"{model}: {count} {kind} entries by the model", 1.0)
        trail, state = await _patient(asked.audit), await _patient(asked.state)
        running = supervisor.process.poll() is None
    finally:
        await asyncio.to_thread(supervisor.terminate)
    (log,) = shared.services.directory.glob(f"supervisor-{model}-propose-*.log")
    said = await asyncio.to_thread(log.read_text, errors="replace")
    return Watched(trail, list(state.open), running, said)


@pytest.fixture(scope="module")
async def watched(shared: Shared) -> dict[str, Watched]:
    """Supervisors asking the lying model and each malformed one, all at once (they only watch:
    what one does is no other's), each until the lying model's two proposals are refused or the
    malformed model's answers are recorded at three looks (it went on looking)."""
    wanted = {"supervise-lying": ("refused", 2), **{m: ("answer", 3) for m in MALFORMED_ANSWERS}}
    done = await asyncio.gather(
        *(_watch(shared, model, kind, count) for model, (kind, count) in wanted.items()),
        return_exceptions=True,
    )
    failed = next((d for d in done if isinstance(d, BaseException)), None)
    if failed is not None:  # raised once every supervisor is stopped
        raise failed
    return {model: d for model, d in zip(wanted, done, strict=True) if isinstance(d, Watched)}


async def test_a_model_naming_what_does_not_exist_is_refused_and_recorded(
    watched: dict[str, Watched],
) -> None:
    asked = watched["supervise-lying"]
    refused = [e for e in asked.trail if e.kind == "refused" and e.who == "supervise-lying"]
    details = " | ".join(e.detail for e in refused)
    assert "no strategy 'ghost'" in details and "outside [100, 100000]" in details, details
    assert not [p for p in asked.open if p.source == "supervise-lying"]


@pytest.mark.parametrize(("llm_mode", "said"), MALFORMED_ANSWERS.items(), ids=MALFORMED_ANSWERS.keys())
async def test_a_malformed_model_answer_is_refused_and_recorded_and_the_supervisor_looks_on(
    watched: dict[str, Watched], llm_mode: str, said: str
) -> None:
    asked = watched[llm_mode]
    trail = [e for e in asked.trail if e.who == llm_mode]
    found = [e for e in trail if e.kind == "answer"]
    assert len(found) >= 3, found  # three looks: it went on looking
    assert said in found[0].detail, found[0].detail
    assert all("\ud800" not in e.detail and "\udfff" not in e.detail for e in trail)
    calls = [e.detail for e in trail if e.kind == "tool_call"]
    if llm_mode == "supervise-surrogate-name":
        assert calls and calls[0].startswith("propose\ufffd("), calls
    if llm_mode == "supervise-surrogate-arguments":
        assert calls and "drawdown \\ud800 seen" in calls[0], calls  # the call as made: escaped
        reasons = [p.reason for p in asked.open if p.source == llm_mode]
        assert reasons == ["drawdown \ufffd seen"], reasons
    if llm_mode == "supervise-nested-arguments":
        refused = [e.detail for e in trail if e.kind == "refused"]
        assert refused and "nested deeper than 64 levels" in refused[0], refused
    assert asked.running
    assert "Traceback" not in asked.log and "RecursionError" not in asked.log, asked.log[-3000:]


async def test_set_capital_changes_that_one_policy_for_an_admin_key_and_is_refused_below(
    shared: Shared,
) -> None:
    """The tool the Supervisor's capital proposals go through: the inspector's policy set read
    over the one in force (UpdatePolicies over_current), so every other limit keeps its value."""
    services = shared.services
    trader = MeshTools(services.gateway_url, services.key)  # read, trade
    with pytest.raises(FailedPrecondition, match="admin"):
        await trader.call("set_capital", strategy="trend", amount="800", reason="a test")
    admin = MeshTools(services.gateway_url, shared.keys["supervisor-admin"])

    async def policies() -> dict[str, Any] | None:  # the gateway loads a new key within seconds
        with contextlib.suppress(Unauthenticated):
            return tomllib.loads((await admin.call("inspector_policies"))["toml"])
        return None

    before = await until(policies, 30, 0.5, "the gateway to take the new admin key")
    changed = await admin.call("set_capital", strategy="trend", amount="800.50", reason="a test")
    assert changed["changes"] and all("capital.reserved.trend" in c for c in changed["changes"]), changed
    after = tomllib.loads((await admin.call("inspector_policies"))["toml"])
    assert after["capital"]["reserved"]["trend"] == "800.5", after["capital"]
    # Every limit the set in force named keeps its value (the set is now written whole: the
    # sections it left at their shipped values are spelled out).
    for section, values in before.items():
        if section != "capital":
            named = {n: after[section].get(n) for n in values} if isinstance(values, dict) else after[section]
            assert named == values, section
    with pytest.raises(FailedPrecondition) as caught:
        await admin.call("set_capital", strategy="Trend!", amount="-1", reason="")
    assert all(field in str(caught.value) for field in ("strategy", "amount", "reason")), caught.value


async def test_tighten_policy_lowers_one_limit_for_an_admin_key_and_the_inspector_refuses_a_loosening(
    shared: Shared,
) -> None:
    """The tool the Supervisor's tighten proposals go through: one limit lowered over the set in
    force; the inspector itself refuses a raise, a limit turned off or a key that is no limit."""
    services = shared.services
    trader = MeshTools(services.gateway_url, services.key)  # read, trade
    with pytest.raises(FailedPrecondition, match="admin"):
        await trader.call("tighten_policy", policy="loss.max_drawdown", limit="0.08", reason="a test")
    admin = MeshTools(services.gateway_url, shared.keys["supervisor-tighten"])

    async def limits() -> dict[str, str] | None:  # the gateway loads a new key within seconds
        with contextlib.suppress(Unauthenticated):
            status = (await admin.call("inspector_policies"))["status"]
            return {row["key"]: row["limit"] for row in status}
        return None

    before = await until(limits, 30, 0.5, "the gateway to take the new admin key")
    lower = str(Decimal(before["loss.max_drawdown"]) / 2)
    changed = await admin.call("tighten_policy", policy="loss.max_drawdown", limit=lower, reason="a test")
    assert [c.split(":")[0] for c in changed["changes"]] == ["loss.max_drawdown"], changed
    after = await limits()
    assert after is not None and Decimal(after["loss.max_drawdown"]) == Decimal(lower)
    assert {k: v for k, v in after.items() if k != "loss.max_drawdown"} == {
        k: v for k, v in before.items() if k != "loss.max_drawdown"
    }
    for policy, limit, words in (
        ("loss.max_drawdown", "0.5", "does not lower it"),
        ("rate.window_ms", "10", "not a limit"),
    ):
        with pytest.raises(FailedPrecondition, match=words):
            await admin.call("tighten_policy", policy=policy, limit=limit, reason="a test")
    assert await limits() == after  # nothing changed


async def test_the_audit_trail_is_recorded_traced_and_read_back_after_a_restart(shared: Shared) -> None:
    """A Supervisor with the mesh's bus puts its trail on `supervisor.audit`; a real recorder keeps
    it in `supervisor_audit`; `trademesh trace <proposal id>` walks the proposal's entries; a
    Supervisor started again reads its earlier trail back from the bus."""
    services = shared.services
    assert shared.recorder.process.poll() is None  # the module's
    recording = Mesh(services, _supervisor(services, redis=True))
    try:
        await services.set_patches("trend", paused=True)
        proposal = await until(
            lambda: _open_resume(recording, "trend"), LOOK_S, 0.2, "a proposal to resume trend"
        )
        await recording.call(
            "Approve", sv.ApproveRequest(proposal_id=proposal.proposal_id, reason="trace it")
        )
        kinds = ["proposal", "approved", "action", "done"]

        async def recorded() -> list[tuple[str, str]] | None:
            connection = await asyncpg.connect(services.database)
            try:
                rows = await connection.fetch(
                    "SELECT kind, id FROM supervisor_audit WHERE proposal_id = $1 ORDER BY ts_ns, id",
                    proposal.proposal_id,
                )
            except asyncpg.UndefinedTableError:  # the recorder's migrations not run yet
                return None
            finally:
                await connection.close()
            found = [(r["kind"], r["id"]) for r in rows]
            return found if [k for k, _ in found] == kinds else None

        rows = await until(recorded, 30, 0.2, "the proposal's entries recorded")
        traced = await asyncio.to_thread(
            run_command, ["trace", proposal.proposal_id, "--database-url", services.database], timeout_s=60
        )
        assert traced.returncode == 0, traced
        assert f"{proposal.proposal_id} is a proposal; its audit trail, oldest first" in traced.stdout
        for kind, entry_id in rows:
            assert f"{kind:<10} {entry_id}" in traced.stdout, traced.stdout
        assert "trace it" in traced.stdout  # the operator's reason, on the approval

        earlier = {e.id for e in await recording.audit()}
        recording.supervisor.terminate()
        recording = Mesh(services, _supervisor(services, redis=True))
        again = {e.id for e in await recording.audit()}
        assert {entry_id for _, entry_id in rows} <= again and earlier <= again
    finally:
        recording.supervisor.terminate()
        if await services.patch_states("trend") == {pb.PATCH_STATE_PAUSED}:  # the approval never came
            await services.set_patches("trend", paused=False)


async def _open_resume(mesh: Mesh, strategy: str) -> sv.Proposal | None:
    state = await mesh.state()
    return next((p for p in state.open if p.kind == sv.ACTION_KIND_RESUME and p.strategy == strategy), None)


async def test_a_paused_strategy_is_proposed_resumed_and_an_approval_resumes_it(mesh: Mesh) -> None:
    await mesh.services.set_patches("trend", paused=True)
    assert await mesh.services.patch_states("trend") == {pb.PATCH_STATE_PAUSED}
    proposal = await until(lambda: _open_resume(mesh, "trend"), LOOK_S, 0.2, "a proposal to resume trend")
    assert proposal.reason.startswith("drawdown 0.0% is back under 4.0%"), proposal.reason
    assert {e.name for e in proposal.evidence} >= {"realised_pnl", "drawdown", "capital"}
    looked = await _observations(mesh)
    # The proposal waits, once, through three more looks.
    await looks_until(lambda: _observations(mesh), looked + 3, "three more observations")
    assert await mesh.services.patch_states("trend") == {pb.PATCH_STATE_PAUSED}
    assert [p.proposal_id for p in (await mesh.state()).open] == [proposal.proposal_id]
    approved = await mesh.call("Approve", sv.ApproveRequest(proposal_id=proposal.proposal_id))
    assert isinstance(approved, sv.ApproveResponse)
    assert [e.kind for e in approved.audit] == ["approved", "action", "done"], approved.audit
    assert approved.audit[-1].detail.startswith("done:"), approved.audit[-1].detail
    assert await mesh.services.patch_states("trend") == {pb.PATCH_STATE_ACTIVE}
    kinds = [(e.kind, e.proposal_id) for e in await mesh.audit() if e.proposal_id == proposal.proposal_id]
    assert kinds == [(k, proposal.proposal_id) for k in ("proposal", "approved", "action", "done")]


async def test_in_act_mode_it_resumes_a_paused_strategy_by_itself(mesh: Mesh) -> None:
    await mesh.call("SetMode", sv.SetModeRequest(mode=sv.MODE_ACT))
    try:
        await mesh.services.set_patches("trend", paused=True)

        async def resumed() -> bool | None:
            return True if await mesh.services.patch_states("trend") == {pb.PATCH_STATE_ACTIVE} else None

        await until(resumed, LOOK_S, 0.2, "the supervisor to resume trend by itself")
        assert any(e.kind == "action" and "resume trend" in e.detail for e in await mesh.audit())
    finally:
        await mesh.call("SetMode", sv.SetModeRequest(mode=sv.MODE_PROPOSE))


async def test_bad_requests_name_their_field_and_an_unknown_proposal_is_not_found(mesh: Mesh) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.call("SetMode", sv.SetModeRequest(mode=sv.MODE_UNSPECIFIED))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in bad_request_violations(caught.value)] == ["mode"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.call("Reject", sv.RejectRequest(proposal_id="", reason=""))
    assert sorted(name for name, _ in bad_request_violations(caught.value)) == ["proposal_id", "reason"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mesh.call("Approve", sv.ApproveRequest(proposal_id="nosuch"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def _as_tool_shows(p: sv.Proposal) -> dict[str, Any]:
    """A proposal of GetState as the supervisor_state tool shows it."""
    return {
        "proposal_id": p.proposal_id,
        "kind": sv.ActionKind.Name(p.kind).removeprefix("ACTION_KIND_").lower(),
        "strategy": p.strategy or None,
        "value": p.value or None,
        "policy": p.policy or None,
        "reason": p.reason,
        "evidence": {e.name: e.value for e in p.evidence},
        "source": p.source,
    }


async def _observations(mesh: Mesh) -> int:
    """How many looks the supervisor's trail holds."""
    return sum(1 for e in await mesh.audit() if e.kind == "observation")


async def _not_proposed_again(mesh: Mesh, strategy: str) -> None:
    """Two more looks after an approval resumed `strategy`: none proposes resuming it again (a look
    whose tools answered before the approval acted once did; such a look is now not judged)."""
    looked = await _observations(mesh)
    await looks_until(lambda: _observations(mesh), looked + 2, "two more observations")
    assert await _open_resume(mesh, strategy) is None


async def test_over_mcp_its_proposals_are_shown_and_a_trade_key_decides_one(
    mesh: Mesh, shared: Shared
) -> None:
    """The gateway's supervisor_state and supervisor_decide tools (the Supervisor registered with
    it): its state shows the proposals GetState answers; a read key is refused a decision, and
    nothing changes; bad arguments are refused together, each named; a trade key's approval
    resumes the strategy, recorded on the trail with its reason."""
    services = mesh.services
    trader = MeshTools(services.gateway_url, services.key)  # read, trade
    reader = MeshTools(services.gateway_url, shared.keys["supervisor-reader"])
    await services.set_patches("mean_reversion", paused=True)
    try:
        proposal = await until(
            lambda: _open_resume(mesh, "mean_reversion"), LOOK_S, 0.2, "a proposal to resume mean_reversion"
        )

        async def shown() -> dict[str, Any] | None:  # the gateway loads a new key within seconds
            with contextlib.suppress(Unauthenticated):
                state = await reader.call("supervisor_state")
                return state if proposal.proposal_id in {p["proposal_id"] for p in state["open"]} else None
            return None

        state = await until(shown, 30, 0.5, "the proposal in supervisor_state, for a read key")
        assert state["mode"] == "propose" and state["observed"] and state["observed_at"], state
        assert "[supervisor]" in state["bounds"], state["bounds"]
        mine = next(p for p in state["open"] if p["proposal_id"] == proposal.proposal_id)
        assert mine == _as_tool_shows(proposal)
        assert {"realised_pnl", "drawdown", "capital"} <= set(mine["evidence"]), mine

        decide = {"proposal_id": proposal.proposal_id, "decision": "approve", "reason": "via mcp"}
        with pytest.raises(FailedPrecondition, match=r"permission denied: .*Approve needs the 'trade' scope"):
            await reader.call("supervisor_decide", **decide)
        assert await mesh.services.patch_states("mean_reversion") == {pb.PATCH_STATE_PAUSED}
        assert proposal.proposal_id in {p.proposal_id for p in (await mesh.state()).open}

        with pytest.raises(FailedPrecondition) as caught:
            await trader.call("supervisor_decide", proposal_id="", decision="maybe", reason=" ")
        said = str(caught.value)
        assert "invalid argument: " in said and "'maybe' is not approve or reject" in said, said
        assert all(f"{name}: " in said for name in ("proposal_id", "decision", "reason")), said
        with pytest.raises(FailedPrecondition, match="reason: 501 characters: at most 500"):
            await trader.call("supervisor_decide", **{**decide, "reason": "x" * 501})
        with pytest.raises(FailedPrecondition, match="not found: proposal_id: 'nosuch' is no open proposal"):
            await trader.call("supervisor_decide", **{**decide, "proposal_id": "nosuch"})

        decided = await trader.call("supervisor_decide", **decide)
        assert [e["kind"] for e in decided["audit"]] == ["approved", "action", "done"], decided
        assert await mesh.services.patch_states("mean_reversion") == {pb.PATCH_STATE_ACTIVE}
        assert proposal.proposal_id not in {p.proposal_id for p in (await mesh.state()).open}
        approval = next(
            e for e in await mesh.audit() if e.kind == "approved" and e.proposal_id == proposal.proposal_id
        )
        assert approval.who == "operator" and "via mcp" in approval.detail, approval
        after = await trader.call("supervisor_state")
        assert proposal.proposal_id not in {p["proposal_id"] for p in after["open"]}
        await _not_proposed_again(mesh, "mean_reversion")
    finally:
        if await services.patch_states("mean_reversion") == {pb.PATCH_STATE_PAUSED}:  # never approved
            await services.set_patches("mean_reversion", paused=False)
