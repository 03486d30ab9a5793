"""The Supervisor's gRPC service: its state, approvals, rejections, its mode, the audit stream.
Errors are trademesh.core.platform.errors types, mapped to statuses at trademesh.core.platform.rpc's edge: an
unknown proposal NOT_FOUND, a bad mode INVALID_ARGUMENT naming `mode`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from trademesh.core.platform.errors import FieldViolation, InvalidArgument, ResourceExhausted
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.core.supervisor.convert import MODE_FROM_PB, MODE_TO_PB, audit_to_pb, proposal_to_pb
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.supervisor.v1 import supervisor_pb2_grpc as sv_grpc

if TYPE_CHECKING:
    from trademesh.core.supervisor.app import SupervisorApp

__all__ = ["supervisor_service"]

SERVICE_NAME = sv.DESCRIPTOR.services_by_name["Supervisor"].full_name
_OPERATOR = "operator"  # the gateway forwards no caller's name: an operator, through its scope
_MAX_ID, _MAX_REASON = 128, 500


def _proposal_id(value: str) -> str:
    if not value or len(value) > _MAX_ID:
        raise InvalidArgument.field("proposal_id", f"1-{_MAX_ID} characters, not {len(value)}")
    return value


class SupervisorService(sv_grpc.SupervisorServicer):
    def __init__(self, app: SupervisorApp) -> None:
        self.app = app

    async def GetState(
        self, request: sv.GetStateRequest, context: Context[sv.GetStateRequest, sv.GetStateResponse]
    ) -> sv.GetStateResponse:
        engine = self.app.engine
        latest = engine.latest
        observed = [e for e in self.app.trail.recent if e.kind == "observation"][-1:]
        return sv.GetStateResponse(
            mode=MODE_TO_PB[engine.mode],
            open=[proposal_to_pb(i, p) for i, p in sorted(engine.open.items())],
            observed=observed[0].detail if observed else "",
            observed_ns=0 if latest is None else latest.now_ns,
            bounds_toml=self.app.bounds_toml,
        )

    async def Approve(
        self, request: sv.ApproveRequest, context: Context[sv.ApproveRequest, sv.ApproveResponse]
    ) -> sv.ApproveResponse:
        if len(request.reason) > _MAX_REASON:
            said = f"at most {_MAX_REASON} characters, not {len(request.reason)}"
            raise InvalidArgument.field("reason", said)
        why = request.reason.strip()
        out = await self.app.approve(_proposal_id(request.proposal_id), _OPERATOR, why)
        return sv.ApproveResponse(audit=[audit_to_pb(e) for e in out.audit])

    async def Reject(
        self, request: sv.RejectRequest, context: Context[sv.RejectRequest, sv.RejectResponse]
    ) -> sv.RejectResponse:
        bad = []
        if not request.reason.strip() or len(request.reason) > _MAX_REASON:
            bad.append(FieldViolation("reason", f"required, at most {_MAX_REASON} characters"))
        if not request.proposal_id or len(request.proposal_id) > _MAX_ID:
            bad.append(FieldViolation("proposal_id", f"1-{_MAX_ID} characters"))
        if bad:
            raise InvalidArgument(bad)
        out = await self.app.reject(request.proposal_id, _OPERATOR, request.reason)
        return sv.RejectResponse(audit=[audit_to_pb(e) for e in out.audit])

    async def SetMode(
        self, request: sv.SetModeRequest, context: Context[sv.SetModeRequest, sv.SetModeResponse]
    ) -> sv.SetModeResponse:
        mode = MODE_FROM_PB.get(request.mode)
        if mode is None:
            raise InvalidArgument.field("mode", "MODE_OFF, MODE_PROPOSE or MODE_ACT")
        await self.app.set_mode(mode, _OPERATOR)
        return sv.SetModeResponse(mode=request.mode)

    async def StreamAudit(
        self, request: sv.StreamAuditRequest, context: Context[sv.StreamAuditRequest, sv.StreamAuditResponse]
    ) -> AsyncIterator[sv.StreamAuditResponse]:
        recent, queue = self.app.trail.watch()
        try:
            yield sv.StreamAuditResponse(entries=[audit_to_pb(e) for e in recent])
            while (entry := await queue.get()) is not None:
                yield sv.StreamAuditResponse(entries=[audit_to_pb(entry)])
            raise ResourceExhausted("supervisor: this stream fell behind the audit; call again")
        finally:
            self.app.trail.drop(queue)


def supervisor_service(app: SupervisorApp) -> Service:
    return Service(SERVICE_NAME, SupervisorService(app), sv_grpc.add_SupervisorServicer_to_server)
