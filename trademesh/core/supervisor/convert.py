"""The Supervisor's engine values as its contract's messages (trademesh.supervisor.v1)."""

from __future__ import annotations

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.supervisor.engine import ActionKind, AuditEntry, Mode, Proposal
from trademesh.supervisor.v1 import supervisor_pb2 as sv

__all__ = ["MODE_FROM_PB", "MODE_TO_PB", "audit_to_pb", "proposal_to_pb"]

MODE_TO_PB = {Mode.OFF: sv.MODE_OFF, Mode.PROPOSE: sv.MODE_PROPOSE, Mode.ACT: sv.MODE_ACT}
MODE_FROM_PB = {v: k for k, v in MODE_TO_PB.items()}
_KIND_TO_PB = {
    ActionKind.PAUSE: sv.ACTION_KIND_PAUSE,
    ActionKind.RESUME: sv.ACTION_KIND_RESUME,
    ActionKind.SET_CAPITAL: sv.ACTION_KIND_SET_CAPITAL,
    ActionKind.TIGHTEN_POLICY: sv.ACTION_KIND_TIGHTEN_POLICY,
}


def proposal_to_pb(proposal_id: str, p: Proposal) -> sv.Proposal:
    return sv.Proposal(
        proposal_id=proposal_id,
        kind=_KIND_TO_PB[p.kind],
        strategy=p.strategy,
        value="" if p.value is None else format_decimal(p.value),
        policy=p.policy,
        reason=p.reason,
        evidence=[sv.Evidence(name=n, value=v) for n, v in p.evidence],
        source=p.source,
    )


def audit_to_pb(entry: AuditEntry) -> sv.AuditEntry:
    return sv.AuditEntry(
        ts_ns=entry.ts_ns, kind=entry.kind, proposal_id=entry.proposal_id, detail=entry.detail, who=entry.who,
        id=entry.id,
    )  # fmt: skip


def audit_from_pb(entry: sv.AuditEntry) -> AuditEntry:
    return AuditEntry(entry.ts_ns, entry.kind, entry.proposal_id, entry.detail, entry.who, entry.id)
