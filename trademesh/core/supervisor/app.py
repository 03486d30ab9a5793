"""The Supervisor service: every `every_s` it looks at the mesh through its tools (with its own
key: trademesh.core.platform.mesh_tools), hands the observation to the engine
(trademesh.core.supervisor.engine), carries out the actions the mode allows, and keeps and
streams the audit trail (on the bus too, when it has one: trademesh.core.supervisor.recording,
which the recorder keeps); operators approve, reject and set the mode over gRPC
(trademesh.core.supervisor.api).

Actions go through the same tools and scopes as a person's: pause_strategy and resume_strategy
(`trade`), set_capital and tighten_policy (`admin`: a key without it gets the refusal as the
outcome; the inspector itself refuses a policy change that is not a tightening)
(docs/supervisor.md)."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.file import read_text
from trademesh.core.platform.errors import TrademeshError
from trademesh.core.platform.mesh_tools import MeshTools
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.supervisor import metrics
from trademesh.core.supervisor.api import supervisor_service
from trademesh.core.supervisor.audit import AuditTrail
from trademesh.core.supervisor.config import DEFAULT_BOUNDS, SupervisorConfig
from trademesh.core.supervisor.engine import (
    ActionKind,
    AuditEntry,
    Bounds,
    Mode,
    Observation,
    Proposal,
    Supervisor,
    SupervisorOutput,
)
from trademesh.core.supervisor.llm import SupervisorLlm
from trademesh.core.supervisor.observe import observation
from trademesh.core.supervisor.recording import AuditRecording

__all__ = ["DEFAULT_BOUNDS", "SupervisorApp", "SupervisorConfig"]

log = logging.getLogger(__name__)

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
# The actions that change a policy, and their tools (both need `admin`).
_POLICY_TOOLS = {ActionKind.SET_CAPITAL: "set_capital", ActionKind.TIGHTEN_POLICY: "tighten_policy"}


class SupervisorApp:
    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        text = read_text(config.bounds_path, "bounds")
        self.bounds_toml = text
        self.engine = Supervisor(Bounds.from_toml(text), config.mode, config.book)
        self.tools = MeshTools(config.gateway_url, config.api_key)
        self.trail = AuditTrail(book=config.book)
        self.recording: AuditRecording | None = None
        self.lock = asyncio.Lock()
        # Actions carried out so far, counted when each is done: a look that read the mesh before
        # or while one was carried out (a strategy just resumed still paused) is not judged.
        self.acted = 0
        self.llm = None if config.llm is None else SupervisorLlm(*config.llm)
        metrics.set_mode(config.mode)

    @property
    def name(self) -> str:
        return "supervisor"

    def grpc_services(self) -> Sequence[Service]:
        return (supervisor_service(self),)

    async def run(self, ctx: ServiceContext) -> None:
        redis = None if self.config.redis_url is None else open_redis(self.config.redis_url)
        try:
            if redis is not None:
                self.recording = AuditRecording(redis, self.trail, f"supervisor/{socket.gethostname()}")
                restored = await self.recording.restore(self.trail.recent.maxlen or 0)
                log.info("supervisor: %d audit entries of earlier runs read back from the bus", restored)
            await ctx.ready()
            while not ctx.stop.is_set():
                await self.look()
                # A look's tool calls (five MCP clients: connect, call, close) leave ~450 objects
                # each in reference cycles, old enough by their end to wait for a full collection,
                # which on this heap comes an hour or more later: +2.1 MB an hour of garbage (the
                # soak's 2.8 MB/h). Collected at once instead: ~70 ms once a look.
                gc.collect()
                if await sleep_unless(ctx.stop, self.config.every_s):
                    return
        finally:
            await self.record()
            if redis is not None:
                await redis.aclose()

    async def record(self) -> None:
        """What the trail kept since the last time, on the bus (when the Supervisor has one)."""
        if self.recording is not None:
            await self.recording.flush()

    async def look(self) -> None:
        """One observation through the engine, its actions carried out (timed), the trail recorded."""
        with metrics.LOOK_SECONDS.time():
            await self._look()
        await self.record()

    async def _look(self) -> None:
        acted = self.acted
        answers: dict[str, Any] = {}
        for tool, arguments in _LOOKS.items():
            try:
                answers[tool] = await self.tools.call(tool, **arguments)
            except TrademeshError as exc:
                answers[tool] = None
                log.info("supervisor: %s: %s", tool, exc)
        missing = [tool for tool in _NEEDED if answers.get(tool) is None]
        partial = "partial" if None in answers.values() else "complete"
        metrics.OBSERVATIONS.labels("incomplete" if missing else partial).inc()
        if missing:  # a strategy's figures or the risk state unknown: nothing judged on a guess
            detail = f"incomplete: {', '.join(missing)} unavailable; nothing proposed"
            self.trail.add([AuditEntry(time.time_ns(), "observation", detail=detail)])
            return
        seen = observation(time.time_ns(), answers)
        suggested = await self._ask_model(seen)
        async with self.lock:
            if self.acted != acted:  # an approval acted while the answers came: they may be stale
                detail = "stale: an action was carried out while the mesh was read; judged at the next look"
                self.trail.add([AuditEntry(time.time_ns(), "observation", detail=detail)])
                return
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

    async def approve(self, proposal_id: str, who: str, why: str = "") -> SupervisorOutput:
        async with self.lock:
            out = self.engine.approve(proposal_id, who, time.time_ns(), why)
            return await self._settle(out)

    async def reject(self, proposal_id: str, who: str, why: str) -> SupervisorOutput:
        async with self.lock:
            return await self._settle(self.engine.reject(proposal_id, who, why, time.time_ns()))

    async def set_mode(self, mode: Mode, who: str) -> SupervisorOutput:
        async with self.lock:
            out = await self._settle(self.engine.set_mode(mode, who, time.time_ns()))
            metrics.set_mode(mode)
            return out

    async def _settle(self, out: SupervisorOutput) -> SupervisorOutput:
        """The output's audit kept, its actions carried out (each outcome audited too), all of it
        recorded; the output with its entries as kept (their ids)."""
        out.audit[:] = self.trail.add(out.audit)
        for proposal_id, proposal in out.actions:
            try:
                ok, detail = await self._carry_out(proposal)
            finally:  # once done: a look begun while it was under way read the mesh before it too
                self.acted += 1
            metrics.ACTIONS.labels(proposal.kind.value, "done" if ok else "failed").inc()
            done = self.engine.done(proposal_id, ok, detail, time.time_ns())
            out.audit.extend(self.trail.add(done.audit))
        metrics.OPEN.set(len(self.engine.open))
        await self.record()
        return out

    async def _carry_out(self, proposal: Proposal) -> tuple[bool, str]:
        try:
            if proposal.value is not None and proposal.kind in _POLICY_TOOLS:
                return True, await self._change_policy(proposal, proposal.value)
            tool = _TOOLS.get(proposal.kind)
            if tool is None:
                return False, f"no tool carries {proposal.kind.value} out yet: an operator applies it"
            answer = await self.tools.call(tool, strategy=proposal.strategy)
        except TrademeshError as exc:
            return False, str(exc)
        states = sorted({str(p.get("state")) for p in answer.get("patches", [])})
        return True, f"{len(answer.get('patches', []))} patches {', '.join(states)}"

    async def _change_policy(self, proposal: Proposal, value: Decimal) -> str:
        """A capital share set, or a limit tightened, through its tool: the changes it made."""
        reason = proposal.reason or "the supervisor's proposal"
        if proposal.kind is ActionKind.SET_CAPITAL:
            args = {"strategy": proposal.strategy, "amount": format_decimal(value)}
        else:
            args = {"policy": proposal.policy, "limit": format_decimal(value)}
        answer = await self.tools.call(_POLICY_TOOLS[proposal.kind], reason=reason, **args)
        return "; ".join(answer.get("changes", [])) or "unchanged"
