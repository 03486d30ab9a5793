"""Tools over the AI Supervisor (trademesh.supervisor.v1.Supervisor; docs/supervisor.md): its
state, read only; and supervisor_decide, an operator's approval or rejection of one of its open
proposals, which only a caller whose key holds `trade` may make (Approve and Reject are
trade-scoped: trademesh.core.platform.access.scopes; trademesh.core.tools.upstream checks the
key). Its mode is the admin's and stays with Studio and gRPC: no tool sets it.

The arguments are checked here, every bad one named in one InvalidArgument, before any call; a
proposal id that is not open is refused naming `proposal_id`, with the ids that are, from the
Supervisor's own state (the Supervisor answers NOT_FOUND too, for one decided meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from trademesh.core.platform.access.contracts import Principal
from trademesh.core.platform.access.scopes import check_scope
from trademesh.core.platform.errors import InvalidArgument, NotFound, PermissionDenied, shown
from trademesh.core.tools.inputs import all_checked
from trademesh.core.tools.render import enum_word, iso_time
from trademesh.core.tools.upstream import Upstream
from trademesh.supervisor.v1 import supervisor_pb2 as sv

__all__ = ["DECISIONS", "SUPERVISOR", "Decision", "ProposalId", "SupervisorTools", "Verdict", "proposal"]

SUPERVISOR = "trademesh.supervisor.v1.Supervisor"
Json = dict[str, Any]
DECISIONS = ("approve", "reject")
MAX_ID, MAX_REASON = 128, 500  # as the Supervisor's own API checks them (trademesh.core.supervisor.api)
# An approval carries the proposal out through the gateway's tools (a strategy paused on every
# detector, a policy changed): the deadline of the Supervisor's own tool calls, not a read's.
DECIDE_TIMEOUT_S = 30.0
# The schema lists the words, so a model picks one; _decision() checks the value and names it.
Decision = Annotated[str, Field(description="approve or reject", json_schema_extra={"enum": list(DECISIONS)})]
ProposalId = Annotated[str, Field(description="an open proposal's id, from supervisor_state")]
Verdict = Annotated[str, Field(description="why, in a sentence; recorded on the proposal's audit entry")]


def _evidence(items: Any) -> dict[str, str]:
    return {e.name: e.value for e in items}


def proposal(item: sv.Proposal) -> Json:
    return {
        "proposal_id": item.proposal_id,
        "kind": enum_word(sv.ActionKind.Name, item.kind, "ACTION_KIND_"),
        "strategy": item.strategy or None,
        "value": item.value or None,  # a decimal string (set_capital, tighten_policy)
        "policy": item.policy or None,
        "reason": item.reason,
        "evidence": _evidence(item.evidence),
        "source": item.source,
    }


def _audit(entry: sv.AuditEntry) -> Json:
    return {
        "time": iso_time(entry.ts_ns),
        "ts_ns": entry.ts_ns,
        "kind": entry.kind,
        "proposal_id": entry.proposal_id or None,
        "detail": entry.detail,
        "who": entry.who,
        "id": entry.id,
    }


def _decision(value: str) -> str:
    if value not in DECISIONS:
        raise InvalidArgument.field("decision", f"{shown(value)} is not approve or reject")
    return value


def _proposal_id(value: str) -> str:
    if not value or len(value) > MAX_ID:
        raise InvalidArgument.field("proposal_id", f"1-{MAX_ID} characters, not {len(value)}")
    return value


def _reason(value: str) -> str:
    if not value.strip():
        raise InvalidArgument.field("reason", "is required: say why")
    if len(value) > MAX_REASON:
        raise InvalidArgument.field("reason", f"{len(value)} characters: at most {MAX_REASON}")
    return value.strip()


class SupervisorTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def supervisor_state(self) -> Json:
        """The AI Supervisor's state: its `mode` (off: it only watches; propose: each proposal
        waits for an operator's supervisor_decide; act: it carries them out itself, within the
        operator's bounds), its `open` proposals (each with its id, `kind`: pause, resume,
        set_capital or tighten_policy, the strategy, `value` a decimal string for set_capital
        and tighten_policy, the policy, its `reason`, the `evidence` it rests on: what the rule
        or model saw, and its `source`: rules or the model's name), `observed`: what its last
        look at the mesh saw and when, and `bounds`: the operator's bounds (TOML) it keeps to."""
        got = await self._up.unary(SUPERVISOR, None, "GetState", sv.GetStateRequest(), sv.GetStateResponse)
        return {
            "mode": enum_word(sv.Mode.Name, got.mode, "MODE_"),
            "open": [proposal(p) for p in got.open],
            "observed": got.observed or None,
            "observed_at": iso_time(got.observed_ns),
            "observed_ns": got.observed_ns,
            "bounds": got.bounds_toml,
        }

    async def supervisor_decide(
        self, proposal_id: str, decision: str, reason: str, *, caller: Principal | None
    ) -> Json:
        """Decide one of the AI Supervisor's open proposals (supervisor_state lists them), as an
        operator does in Studio: `decision` approve (it is checked again against the latest
        observation, then carried out: a strategy paused or resumed, a capital set, a limit
        lowered) or reject (dropped). `reason` is required and recorded on its audit entry.
        Only for an API key holding `trade`. Answers the audit entries the decision made: the
        approval, the action and its outcome (done or failed), a refusal at approval, or the
        rejection."""
        if caller is None:
            raise PermissionDenied("supervisor_decide acts for an API key holding 'trade': none given")
        checks: list[Callable[[], Any]] = [
            lambda: _proposal_id(proposal_id),
            lambda: _decision(decision),
            lambda: _reason(reason),
        ]
        _, _, why = all_checked(checks)
        method = "Approve" if decision == "approve" else "Reject"
        check_scope(caller, SUPERVISOR, method)  # refused before the Supervisor is asked anything
        await self._open(proposal_id)
        if method == "Approve":
            approve = sv.ApproveRequest(proposal_id=proposal_id, reason=why)
            approved = await self._up.unary(SUPERVISOR, None, method, approve, sv.ApproveResponse,
                                            caller=caller, timeout_s=DECIDE_TIMEOUT_S)  # fmt: skip
            entries = list(approved.audit)
        else:
            reject = sv.RejectRequest(proposal_id=proposal_id, reason=why)
            rejected = await self._up.unary(SUPERVISOR, None, method, reject, sv.RejectResponse,
                                            caller=caller, timeout_s=DECIDE_TIMEOUT_S)  # fmt: skip
            entries = list(rejected.audit)
        return {"proposal_id": proposal_id, "decision": decision, "audit": [_audit(e) for e in entries]}

    async def _open(self, proposal_id: str) -> None:
        """NotFound naming `proposal_id` and the open ones, unless it is open."""
        state = await self._up.unary(SUPERVISOR, None, "GetState", sv.GetStateRequest(), sv.GetStateResponse)
        ids = [p.proposal_id for p in state.open]
        if proposal_id not in ids:
            known = ", ".join(ids) or "none"
            said = f"{shown(proposal_id)} is no open proposal of the Supervisor (open: {known})"
            raise NotFound(f"proposal_id: {said}")
