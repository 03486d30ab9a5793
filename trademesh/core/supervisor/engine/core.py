"""The Supervisor's core: each observation is audited, the deterministic rules' proposals and
any an LLM made are checked (trademesh.core.supervisor.engine.check), and by mode:

- OFF: nothing is proposed (the observations are still audited);
- PROPOSE: a checked proposal waits for an operator's approval or rejection (one open proposal
  per strategy and action: a rule that fires again while its proposal waits adds nothing);
- ACT: a checked proposal is an action at once.

An approval re-checks the proposal against the latest observation (the world may have moved:
a strategy paused by hand meanwhile) before it becomes an action. The shell carries actions out
and reports each outcome (`done`). Ids are the core's own sequence under its `book` (no clock,
no randomness), and every step is an AuditEntry."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import NotFound
from trademesh.core.supervisor.engine.bounds import Bounds
from trademesh.core.supervisor.engine.check import check
from trademesh.core.supervisor.engine.model import Observation, Proposal
from trademesh.core.supervisor.engine.rules import propose

__all__ = ["AuditEntry", "Mode", "Supervisor", "SupervisorOutput"]


class Mode(StrEnum):
    OFF = "off"
    PROPOSE = "propose"
    ACT = "act"


@dataclass(frozen=True)
class AuditEntry:
    ts_ns: int
    kind: str  # observation, proposal, refused, approved, rejected, action, done, mode
    proposal_id: str = ""
    detail: str = ""
    who: str = ""
    id: str = ""  # given by the shell's trail when it keeps the entry (its book and a count)


@dataclass
class SupervisorOutput:
    opened: list[tuple[str, Proposal]] = field(default_factory=list)  # waiting for an operator
    actions: list[tuple[str, Proposal]] = field(default_factory=list)  # to carry out now
    refused: list[tuple[Proposal, str]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


class Supervisor:
    def __init__(self, bounds: Bounds, mode: Mode = Mode.PROPOSE, book: str = "") -> None:
        self.bounds = bounds
        self.mode = mode
        self.book = book
        self.open: dict[str, Proposal] = {}  # id -> proposal waiting for an operator
        self.latest: Observation | None = None
        self._sequence = 0

    def observe(self, seen: Observation, suggested: tuple[Proposal, ...] = ()) -> SupervisorOutput:
        """One look: the rules' proposals and `suggested` (an LLM's), checked, then by mode."""
        out = SupervisorOutput()
        self.latest = seen
        now = seen.now_ns
        out.audit.append(AuditEntry(now, "observation", detail=_summary(seen)))
        if self.mode is Mode.OFF:
            return out
        waiting = {p.key() for p in self.open.values()}
        for proposal in [*propose(seen, self.bounds), *suggested]:
            if proposal.key() in waiting:
                continue
            verdict = check(proposal, seen, self.bounds)
            if not verdict.ok:
                out.refused.append((proposal, verdict.reason))
                out.audit.append(
                    AuditEntry(
                        now, "refused", detail=f"{_said(proposal)}: {verdict.reason}", who=proposal.source
                    )
                )
                continue
            waiting.add(proposal.key())
            self._take(proposal, now, out)
        return out

    def approve(self, proposal_id: str, who: str, now_ns: int, why: str = "") -> SupervisorOutput:
        """An operator's approval (`why`: their reason, on the approval's entry when given)."""
        out = SupervisorOutput()
        proposal = self._closing(proposal_id)
        verdict = check(proposal, self.latest, self.bounds) if self.latest is not None else None
        if verdict is not None and not verdict.ok:
            out.refused.append((proposal, verdict.reason))
            out.audit.append(
                AuditEntry(now_ns, "refused", proposal_id, f"at approval: {verdict.reason}", who)
            )
            return out
        said = f"{_said(proposal)}: {why}" if why else _said(proposal)
        out.audit.append(AuditEntry(now_ns, "approved", proposal_id, said, who))
        out.actions.append((proposal_id, proposal))
        out.audit.append(AuditEntry(now_ns, "action", proposal_id, _said(proposal), who))
        return out

    def reject(self, proposal_id: str, who: str, why: str, now_ns: int) -> SupervisorOutput:
        proposal = self._closing(proposal_id)
        return SupervisorOutput(
            audit=[AuditEntry(now_ns, "rejected", proposal_id, f"{_said(proposal)}: {why}", who)]
        )

    def done(self, proposal_id: str, ok: bool, detail: str, now_ns: int) -> SupervisorOutput:
        """The shell's report of an action carried out (or failed)."""
        said = "done" if ok else "failed"
        return SupervisorOutput(audit=[AuditEntry(now_ns, "done", proposal_id, f"{said}: {detail}")])

    def set_mode(self, mode: Mode, who: str, now_ns: int) -> SupervisorOutput:
        """A mode change; leaving PROPOSE drops the open proposals (audited)."""
        out = SupervisorOutput(
            audit=[AuditEntry(now_ns, "mode", detail=f"{self.mode.value} -> {mode.value}", who=who)]
        )
        if mode is not Mode.PROPOSE:
            for proposal_id in sorted(self.open):
                out.audit.append(
                    AuditEntry(now_ns, "rejected", proposal_id, "dropped: the mode changed", who)
                )
            self.open.clear()
        self.mode = mode
        return out

    def _take(self, proposal: Proposal, now: int, out: SupervisorOutput) -> None:
        self._sequence += 1
        proposal_id = f"{self.book}p{self._sequence}" if self.book else f"p{self._sequence}"
        out.audit.append(
            AuditEntry(now, "proposal", proposal_id, f"{_said(proposal)}: {proposal.reason}", proposal.source)
        )
        if self.mode is Mode.ACT:
            out.actions.append((proposal_id, proposal))
            out.audit.append(AuditEntry(now, "action", proposal_id, _said(proposal), "supervisor"))
        else:
            self.open[proposal_id] = proposal
            out.opened.append((proposal_id, proposal))

    def _closing(self, proposal_id: str) -> Proposal:
        proposal = self.open.pop(proposal_id, None)
        if proposal is None:
            raise NotFound(f"no open proposal {proposal_id!r}")
        return proposal


def _said(p: Proposal) -> str:
    target = p.policy or p.strategy
    value = "" if p.value is None else f" {format_decimal(p.value)}"
    return f"{p.kind.value} {target}{value}"


def _summary(seen: Observation) -> str:
    paused = sum(1 for s in seen.strategies if s.paused)
    strategies = f"{len(seen.strategies)} strategies ({paused} paused)"
    return f"{strategies}, {len(seen.regimes)} regimes, risk {seen.risk_state}"
