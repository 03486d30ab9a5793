"""The Supervisor (`trademesh supervisor`, docs/supervisor.md) against a real mesh: a gateway,
the sim, a detector running the example strategies, an inspector and a ledger as processes, the
supervisor as a process with its own key (read, trade) looking every 0.5 s. A strategy paused by
hand, with no drawdown, is one its rules propose to resume: waiting for an operator in propose
mode (approved over gRPC: the detector's patches active again), resumed by itself in act mode.
What it did is read back from the detector, and from its audit stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import grpc
import pytest

from core.foundations.env import GATEWAY, LLM_BASE_URL, LLM_MODELS, REDIS_URL, SUPERVISOR_API_KEY, TOKEN
from core.foundations.errors import FailedPrecondition, Unauthenticated
from core.foundations.mesh_tools import MeshTools
from core.foundations.process import ServiceProcess, start_service
from core.foundations.rpc.status import bad_request_violations
from tests.forked_services import run_command
from tests.integration.client_mesh import AUTH, ClientMesh, client_mesh
from tests.integration.gateway_support import create_key
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.llm_standin import Standin, start_standin
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.supervisor.v1 import supervisor_pb2_grpc as sv_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "redis_url"]  # fixtures


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


def _supervisor(
    services: ClientMesh,
    llm: Standin | None = None,
    mode: str = "propose",
    redis: bool = False,
    registered: bool = False,
) -> ServiceProcess:
    """A supervisor looking every 0.5 s (asking the stand-in's model `primary` when given; its
    audit trail on the mesh's bus with `redis`; registered with the gateway, as `trademesh up`
    runs it, with `registered`: the gateway's tools and gRPC reach it then)."""
    env = {**os.environ, SUPERVISOR_API_KEY: services.key}
    env.pop(REDIS_URL, None)
    env.pop(GATEWAY, None)
    if registered:  # with the mesh token, as every service of the mesh
        env |= {GATEWAY: f"127.0.0.1:{services.gateway.info['grpc_port']}", TOKEN: TEST_TOKEN}
    if redis:
        env[REDIS_URL] = services.redis
    if llm is not None:
        env |= {LLM_BASE_URL: llm.base_url, LLM_MODELS: "primary"}
    log = (
        services.directory / f"supervisor-{mode}-{llm is not None}-{redis}-{time.monotonic_ns()}.log"
    ).open("w")
    return start_service(
        ["supervisor", "--port", "0", "--metrics-port", "-1", "--gateway-url", services.gateway_url,
         "--every-s", "0.5", "--mode", mode],
        env=env, stderr=log, timeout_s=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("supervisor")
    async with contextlib.AsyncExitStack() as stack:
        services = await stack.enter_async_context(
            client_mesh(directory, redis_url, database_url, ["read", "trade"], ledger=True)
        )
        supervisor = _supervisor(services, registered=True)
        stack.callback(supervisor.terminate)
        found = Mesh(services, supervisor)

        async def observing() -> bool | None:  # the gateway knows the detector, inspector, ledger
            state = await found.state()
            return True if state.observed.startswith(("1 ", "2 ", "3 ", "4 ")) else None

        await until(observing, 60, 0.5, "the supervisor's first whole observation")
        yield found


async def _open_resume(mesh: Mesh, strategy: str) -> sv.Proposal | None:
    state = await mesh.state()
    return next((p for p in state.open if p.kind == sv.ACTION_KIND_RESUME and p.strategy == strategy), None)


async def test_a_paused_strategy_is_proposed_resumed_and_an_approval_resumes_it(mesh: Mesh) -> None:
    await mesh.services.set_patches("trend", paused=True)
    assert await mesh.services.patch_states("trend") == {pb.PATCH_STATE_PAUSED}
    proposal = await until(lambda: _open_resume(mesh, "trend"), 30, 0.2, "a proposal to resume trend")
    assert proposal.reason.startswith("drawdown 0.0% is back under 4.0%"), proposal.reason
    assert {e.name for e in proposal.evidence} >= {"realised_pnl", "drawdown", "capital"}
    looked = sum(1 for e in await mesh.audit() if e.kind == "observation")

    async def three_more_looks() -> bool | None:
        return True if sum(1 for e in await mesh.audit() if e.kind == "observation") >= looked + 3 else None

    # The proposal waits, once. A look is a round of tool calls through the gateway: under a
    # whole run's load (25-30) one took 5-10 s, and three did not fit in 30.
    await until(three_more_looks, 90, 0.2, "three more observations")
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

        await until(resumed, 30, 0.2, "the supervisor to resume trend by itself")
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


async def _not_proposed_again(mesh: Mesh, strategy: str) -> None:
    """Two more looks after an approval resumed `strategy`: none proposes resuming it again (a look
    whose tools answered before the approval acted once did; such a look is now not judged)."""
    looked = sum(1 for e in await mesh.audit() if e.kind == "observation")

    async def two_more_looks() -> bool | None:
        return True if sum(1 for e in await mesh.audit() if e.kind == "observation") >= looked + 2 else None

    await until(two_more_looks, 60, 0.2, "two more observations")  # 30 s a look, as above
    assert await _open_resume(mesh, strategy) is None


async def test_over_mcp_its_proposals_are_shown_and_a_trade_key_decides_one(mesh: Mesh) -> None:
    """The gateway's supervisor_state and supervisor_decide tools (the Supervisor registered with
    it): its state shows the proposals GetState answers; a read key is refused a decision, and
    nothing changes; bad arguments are refused together, each named; a trade key's approval
    resumes the strategy, recorded on the trail with its reason."""
    services = mesh.services
    trader = MeshTools(services.gateway_url, services.key)  # read, trade
    reader = MeshTools(
        services.gateway_url, await create_key(services.database, "supervisor-reader", ["read"])
    )
    await services.set_patches("mean_reversion", paused=True)
    try:
        proposal = await until(
            lambda: _open_resume(mesh, "mean_reversion"), 30, 0.2, "a proposal to resume mean_reversion"
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


@contextlib.contextmanager
def _asking(mesh: Mesh, llm_mode: str) -> Iterator[Mesh]:
    """A second supervisor on the same mesh, asking a stand-in model in `llm_mode` at each look."""
    standin = start_standin(llm_mode)
    supervisor = _supervisor(mesh.services, standin)
    try:
        yield Mesh(mesh.services, supervisor)
    finally:
        supervisor.terminate()
        standin.stop()


async def test_the_models_proposal_is_checked_and_waits_for_the_operator(mesh: Mesh) -> None:
    """The model (the stand-in's `supervise`: pause the first running strategy, quoting its
    drawdown) proposes through its tool; checked, it waits in propose mode; rejected, it is
    dropped and recorded. Its prompt, its call and its answer are in the audit trail."""
    with _asking(mesh, "supervise") as asked:

        async def proposed() -> sv.Proposal | None:
            return next((p for p in (await asked.state()).open if p.source == "primary"), None)

        proposal = await until(proposed, 30, 0.2, "the model's proposal")
        assert proposal.kind == sv.ACTION_KIND_PAUSE and "drawdown is" in proposal.reason, proposal
        rejected = await asked.call(
            "Reject", sv.RejectRequest(proposal_id=proposal.proposal_id, reason="not now")
        )
        assert isinstance(rejected, sv.RejectResponse) and [e.kind for e in rejected.audit] == ["rejected"]
        trail = await asked.audit()
        by_model = {e.kind for e in trail if e.who == "primary"}
        assert {"prompt", "tool_call", "answer", "proposal"} <= by_model, by_model
        prompt = next(e.detail for e in trail if e.kind == "prompt")
        assert '"strategies"' in prompt and proposal.strategy in prompt
    assert await mesh.services.patch_states(proposal.strategy) == {pb.PATCH_STATE_ACTIVE}


async def test_a_model_naming_what_does_not_exist_is_refused_and_recorded(mesh: Mesh) -> None:
    with _asking(mesh, "supervise-lying") as asked:

        async def refusals() -> list[sv.AuditEntry] | None:
            found = [e for e in await asked.audit() if e.kind == "refused" and e.who == "primary"]
            return found if len(found) >= 2 else None

        refused = await until(refusals, 30, 0.2, "the model's two proposals refused")
        details = " | ".join(e.detail for e in refused)
        assert "no strategy 'ghost'" in details and "outside [100, 100000]" in details, details
        assert not [p for p in (await asked.state()).open if p.source == "primary"]


# Each stopped the Supervisor (issue 57 item 12): what its trail then says of the model's answer.
MALFORMED_ANSWERS = {
    "supervise-surrogate-content": "1 tool calls",
    "supervise-surrogate-name": "1 tool calls",
    "supervise-surrogate-arguments": "1 tool calls",
    "supervise-nested-answer": "a malformed answer refused (answer: nested deeper than 64 levels)",
    "supervise-nested-arguments": "1 tool calls",
}


@pytest.mark.parametrize(("llm_mode", "said"), MALFORMED_ANSWERS.items(), ids=MALFORMED_ANSWERS.keys())
async def test_a_malformed_model_answer_is_refused_and_recorded_and_the_supervisor_looks_on(
    mesh: Mesh, llm_mode: str, said: str
) -> None:
    with _asking(mesh, llm_mode) as asked:

        async def answers() -> list[sv.AuditEntry] | None:
            found = [e for e in await asked.audit() if e.kind == "answer" and e.who == "primary"]
            return found if len(found) >= 3 else None  # three looks: it went on looking

        found = await until(answers, 30, 0.2, "the model's answers recorded at three looks")
        assert said in found[0].detail, found[0].detail
        trail = [e for e in await asked.audit() if e.who == "primary"]
        assert all("\ud800" not in e.detail and "\udfff" not in e.detail for e in trail)
        calls = [e.detail for e in trail if e.kind == "tool_call"]
        if llm_mode == "supervise-surrogate-name":
            assert calls and calls[0].startswith("propose\ufffd("), calls
        if llm_mode == "supervise-surrogate-arguments":
            assert calls and "drawdown \\ud800 seen" in calls[0], calls  # the call as made: escaped
            reasons = [p.reason for p in (await asked.state()).open if p.source == "primary"]
            assert reasons == ["drawdown \ufffd seen"], reasons
        if llm_mode == "supervise-nested-arguments":
            refused = [e.detail for e in trail if e.kind == "refused"]
            assert refused and "nested deeper than 64 levels" in refused[0], refused
        assert asked.supervisor.process.poll() is None
    logs = sorted(
        mesh.services.directory.glob("supervisor-propose-True-*.log"), key=lambda p: p.stat().st_mtime
    )
    logged = logs[-1].read_text(errors="replace")
    assert "Traceback" not in logged and "RecursionError" not in logged, logged[-3000:]


async def test_set_capital_changes_that_one_policy_for_an_admin_key_and_is_refused_below(mesh: Mesh) -> None:
    """The tool the Supervisor's capital proposals go through: the inspector's policy set read
    over the one in force (UpdatePolicies over_current), so every other limit keeps its value."""
    services = mesh.services
    trader = MeshTools(services.gateway_url, services.key)  # read, trade
    with pytest.raises(FailedPrecondition, match="admin"):
        await trader.call("set_capital", strategy="trend", amount="800", reason="a test")
    admin = MeshTools(
        services.gateway_url, await create_key(services.database, "supervisor-admin", ["read", "admin"])
    )

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
    mesh: Mesh,
) -> None:
    """The tool the Supervisor's tighten proposals go through: one limit lowered over the set in
    force; the inspector itself refuses a raise, a limit turned off or a key that is no limit."""
    services = mesh.services
    trader = MeshTools(services.gateway_url, services.key)  # read, trade
    with pytest.raises(FailedPrecondition, match="admin"):
        await trader.call("tighten_policy", policy="loss.max_drawdown", limit="0.08", reason="a test")
    admin = MeshTools(
        services.gateway_url, await create_key(services.database, "supervisor-tighten", ["read", "admin"])
    )

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


async def test_the_audit_trail_is_recorded_traced_and_read_back_after_a_restart(mesh: Mesh) -> None:
    """A Supervisor with the mesh's bus puts its trail on `supervisor.audit`; a real recorder keeps
    it in `supervisor_audit`; `trademesh trace <proposal id>` walks the proposal's entries; a
    Supervisor started again reads its earlier trail back from the bus."""
    services = mesh.services
    recorder = start_service(
        ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", services.redis,
         "--database-url", services.database, "--consumer", "c1", "--stream", "supervisor.audit"],
        stderr=(services.directory / "recorder-audit.log").open("w"), timeout_s=60,
    )  # fmt: skip
    recording = Mesh(services, _supervisor(services, redis=True))
    try:
        await services.set_patches("trend", paused=True)
        proposal = await until(
            lambda: _open_resume(recording, "trend"), 30, 0.2, "a proposal to resume trend"
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
        recorder.terminate()
        if await services.patch_states("trend") == {pb.PATCH_STATE_PAUSED}:  # the approval never came
            await services.set_patches("trend", paused=False)
