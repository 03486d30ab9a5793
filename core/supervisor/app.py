"""The Supervisor service: every `every_s` it looks at the mesh through its tools (with its own
key: core.foundations.mesh_tools), hands the observation to the engine (core.supervisor.engine),
carries out the actions the mode allows, and keeps and streams the audit trail; operators
approve, reject and set the mode over gRPC (core.supervisor.api).

Actions go through the same tools and scopes as a person's: pause_strategy and resume_strategy
(`trade`), set_capital (`admin`: a key without it gets the refusal as the outcome). A tighter
policy is proposed and checked but has no tool to carry it out yet: its outcome says so (failed),
for an operator to apply (docs/supervisor.md)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.foundations.decimals import format_decimal
from core.foundations.errors import InvalidArgument, TrademeshError
from core.foundations.mesh_tools import MeshTools
from core.foundations.retry import sleep_unless
from core.foundations.rpc.server import Service
from core.foundations.service import ServiceContext
from core.supervisor import metrics
from core.supervisor.api import supervisor_service
from core.supervisor.audit import AuditTrail
from core.supervisor.engine import (
    ActionKind,
    AuditEntry,
    Bounds,
    Mode,
    Observation,
    Output,
    Proposal,
    Supervisor,
)
from core.supervisor.llm import SupervisorLlm
from core.supervisor.observe import observation

__all__ = ["DEFAULT_BOUNDS", "SupervisorApp", "SupervisorConfig"]

log = logging.getLogger(__name__)

DEFAULT_BOUNDS = Path(__file__).with_name("bounds.toml")
# What it reads each look, and the arguments each takes.
_LOOKS: dict[str, dict[str, Any]] = {
    "list_strategies": {},
    "ledger_pnl": {"curve_points": 200},
    "inspector_state": {},
    "inspector_policies": {},
    "regimes": {},
}
# Without these the strategies' figures or the risk state are unknown: such a look proposes nothing
# (a ledger away must not read as every strategy at 0 drawdown, fit to resume).
_NEEDED = ("list_strategies", "ledger_pnl", "inspector_state")
_TOOLS = {ActionKind.PAUSE: "pause_strategy", ActionKind.RESUME: "resume_strategy"}


@dataclass(frozen=True)
class SupervisorConfig:
    gateway_url: str
    api_key: str
    bounds_path: Path = DEFAULT_BOUNDS
    mode: Mode = Mode.PROPOSE
    every_s: float = 60.0
    # The LLM endpoint (the advisor's settings): base URL, model, API key; None: the rules alone.
    llm: tuple[str, str, str | None] | None = None
    book: str = field(default_factory=lambda: f"{socket.gethostname()}-{time.time_ns() // 1_000_000}-")

    def __post_init__(self) -> None:
        if not 0.2 <= self.every_s <= 3600:
            raise InvalidArgument.field("every-s", f"{self.every_s} is not in 0.2..3600 seconds")


class SupervisorApp:
    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        try:
            text = config.bounds_path.read_text()
        except OSError as exc:
            raise InvalidArgument.field("bounds", f"{config.bounds_path}: {exc.strerror}") from None
        self.bounds_toml = text
        self.engine = Supervisor(Bounds.from_toml(text), config.mode, config.book)
        self.tools = MeshTools(config.gateway_url, config.api_key)
        self.trail = AuditTrail()
        self.lock = asyncio.Lock()
        self.llm = None if config.llm is None else SupervisorLlm(*config.llm)

    @property
    def name(self) -> str:
        return "supervisor"

    def grpc_services(self) -> Sequence[Service]:
        return (supervisor_service(self),)

    async def run(self, ctx: ServiceContext) -> None:
        await ctx.ready()
        while not ctx.stop.is_set():
            await self.look()
            if await sleep_unless(ctx.stop, self.config.every_s):
                return

    async def look(self) -> None:
        """One observation through the engine, its actions carried out."""
        answers: dict[str, Any] = {}
        for tool, arguments in _LOOKS.items():
            try:
                answers[tool] = await self.tools.call(tool, **arguments)
            except TrademeshError as exc:
                answers[tool] = None
                log.info("supervisor: %s: %s", tool, exc)
        missing = [tool for tool in _NEEDED if answers.get(tool) is None]
        metrics.OBSERVATIONS.labels("partial" if None in answers.values() else "complete").inc()
        if missing:  # a strategy's figures or the risk state unknown: nothing judged on a guess
            detail = f"incomplete: {', '.join(missing)} unavailable; nothing proposed"
            self.trail.add([AuditEntry(time.time_ns(), "observation", detail=detail)])
            return
        seen = observation(time.time_ns(), answers)
        suggested = await self._ask_model(seen)
        async with self.lock:
            out = self.engine.observe(seen, suggested)
            for proposal, _ in out.refused:
                metrics.PROPOSALS.labels(proposal.kind.value, "refused").inc()
            for _, proposal in [*out.opened, *out.actions]:
                metrics.PROPOSALS.labels(proposal.kind.value, "taken").inc()
            await self._settle(out)

    async def _ask_model(self, seen: Observation) -> tuple[Proposal, ...]:
        """The model's proposals (none without one, or in off mode); its prompt, calls, answer
        and the calls that were no proposal go to the trail."""
        if self.llm is None or self.engine.mode is Mode.OFF:
            return ()
        asked = await self.llm.ask(seen, self.engine.bounds)
        now, model = time.time_ns(), self.llm.model
        entries = [AuditEntry(now, "prompt", detail=asked.prompt, who=model)]
        entries += [AuditEntry(now, "tool_call", detail=call, who=model) for call in asked.calls]
        entries.append(AuditEntry(now, "answer", detail=asked.said, who=model))
        entries += [
            AuditEntry(now, "refused", detail=f"the model's call: {why}", who=model)
            for why in asked.malformed
        ]
        self.trail.add(entries)
        return asked.proposals

    async def approve(self, proposal_id: str, who: str) -> Output:
        async with self.lock:
            out = self.engine.approve(proposal_id, who, time.time_ns())
            return await self._settle(out)

    async def reject(self, proposal_id: str, who: str, why: str) -> Output:
        async with self.lock:
            return await self._settle(self.engine.reject(proposal_id, who, why, time.time_ns()))

    async def set_mode(self, mode: Mode, who: str) -> Output:
        async with self.lock:
            return await self._settle(self.engine.set_mode(mode, who, time.time_ns()))

    async def _settle(self, out: Output) -> Output:
        """The output's audit kept, its actions carried out (each outcome audited too)."""
        self.trail.add(out.audit)
        for proposal_id, proposal in out.actions:
            ok, detail = await self._carry_out(proposal)
            metrics.ACTIONS.labels(proposal.kind.value, "done" if ok else "failed").inc()
            done = self.engine.done(proposal_id, ok, detail, time.time_ns())
            self.trail.add(done.audit)
            out.audit.extend(done.audit)
        metrics.OPEN.set(len(self.engine.open))
        return out

    async def _carry_out(self, proposal: Proposal) -> tuple[bool, str]:
        try:
            if proposal.kind is ActionKind.SET_CAPITAL and proposal.value is not None:
                reason = proposal.reason or "the supervisor's proposal"
                amount = format_decimal(proposal.value)
                answer = await self.tools.call(
                    "set_capital", strategy=proposal.strategy, amount=amount, reason=reason
                )
                return True, "; ".join(answer.get("changes", [])) or "unchanged"
            tool = _TOOLS.get(proposal.kind)
            if tool is None:
                return False, f"no tool carries {proposal.kind.value} out yet: an operator applies it"
            answer = await self.tools.call(tool, strategy=proposal.strategy)
        except TrademeshError as exc:
            return False, str(exc)
        states = sorted({str(p.get("state")) for p in answer.get("patches", [])})
        return True, f"{len(answer.get('patches', []))} patches {', '.join(states)}"
