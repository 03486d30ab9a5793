"""The inspector's gRPC API (trademesh.risk.v1.Inspector) over the service it runs in.

Bad input is INVALID_ARGUMENT with a field violation per bad field (trademesh.core.platform.rpc's edge maps
trademesh.core.platform.errors); an intent handled already is FAILED_PRECONDITION. Cancels go to the venue
through the inspector (it alone holds the trading credential): a protective order cancelled
while its position is open is placed again (docs/inspector.md). The commands run to their end
when their caller leaves (Runtime.commands: an entry's protection is never stopped halfway).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Protocol

from trademesh.core.inspector.convert import ACTION_TO_PB, STATE_TO_PB, risk_event_to_pb
from trademesh.core.inspector.engine.actions import CancelAll, CancelOrder
from trademesh.core.inspector.engine.positions import Key
from trademesh.core.inspector.runtime import Runtime
from trademesh.core.inspector.views import policy_status, positions_view, risk_state
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import InvalidArgument, NotFound, shown
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["SERVICE_NAME", "InspectorServicer", "InspectorState", "inspector_service"]

log = logging.getLogger(__name__)

SERVICE_NAME = rk.DESCRIPTOR.services_by_name["Inspector"].full_name
_ID_CHARS = 128
_ACTIONS = set(ACTION_TO_PB.values()) | {rk.RISK_ACTION_UNSPECIFIED}


class InspectorState(Protocol):
    """What the service gives the API."""

    @property
    def runtime(self) -> Runtime: ...

    @property
    def legacy(self) -> dict[Key, tuple[Decimal, Decimal | None]]: ...

    @property
    def stood_down(self) -> dict[str, str]: ...


def _venue(value: str, required: bool = False) -> str:
    if not value:
        if required:
            raise InvalidArgument.field("venue", "is required")
        return value
    return venue_name(value)


def _reason(value: str) -> str:
    if not value.strip():
        raise InvalidArgument.field("reason", "is required: say why")
    return value


def _operators(reason: str) -> str:
    """A cancel an operator asked for says so at the venue ("inspector: operator: ...")."""
    return f"operator: {reason}"


def _short(field: str, value: str) -> str:
    if len(value) > _ID_CHARS:
        raise InvalidArgument.field(field, f"{shown(value)} is longer than {_ID_CHARS} characters")
    return value


def _matcher(action: int, venue: str, strategy: str, policy: str = "") -> Callable[[rk.RiskEvent], bool]:
    if action not in _ACTIONS:
        raise InvalidArgument.field("action", f"{action} is not a RiskAction")
    _venue(venue)
    _short("strategy_id", strategy)
    _short("policy", policy)

    def matches(event: rk.RiskEvent) -> bool:
        return (
            (not action or event.action == action)
            and (not venue or event.venue == venue)
            and (not strategy or event.strategy_id == strategy)
            and (not policy or event.policy == policy)
        )

    return matches


class InspectorServicer(rk_grpc.InspectorServicer):
    def __init__(self, state: InspectorState) -> None:
        self.state = state

    @property
    def runtime(self) -> Runtime:
        return self.state.runtime

    async def SubmitIntent(
        self,
        request: rk.SubmitIntentRequest,
        context: Context[rk.SubmitIntentRequest, rk.SubmitIntentResponse],
    ) -> rk.SubmitIntentResponse:
        if not request.HasField("intent"):
            raise InvalidArgument.field("intent", "is required")
        _short("intent.intent_id", request.intent.intent_id)
        intent = self.runtime.manual(request.intent)
        done = await self.runtime.commands.run(self.runtime.submit(intent))
        answer = rk.SubmitIntentResponse(
            intent_id=intent.intent_id, action=ACTION_TO_PB[done.verdict.action], reasons=done.reasons
        )
        if done.verdict.allowed:
            answer.client_order_id = done.verdict.orders[0].client_order_id
            if done.order is not None:
                answer.order.CopyFrom(done.order)
        done.log("manual", intent)
        return answer

    async def CancelOrder(
        self, request: rk.CancelOrderRequest, context: Context[rk.CancelOrderRequest, rk.CancelOrderResponse]
    ) -> rk.CancelOrderResponse:
        venue = _venue(request.venue, required=True)
        if not request.client_order_id:
            raise InvalidArgument.field("client_order_id", "is required")
        _short("client_order_id", request.client_order_id)
        core = self.runtime.ready_core
        working = core.book.orders.get(request.client_order_id)
        if working is None or working.key[0] != venue:
            raise NotFound(f"no working order {request.client_order_id} of the inspector's at {venue}")
        reason = _operators(_reason(request.reason))
        cancel = CancelOrder(request.client_order_id, venue, working.key[1], reason)
        order = await self.runtime.commands.run(self.runtime.executor.cancel(cancel))
        return rk.CancelOrderResponse(order=order if order is not None else tf.Order())

    async def CancelAllOrders(
        self,
        request: rk.CancelAllOrdersRequest,
        context: Context[rk.CancelAllOrdersRequest, rk.CancelAllOrdersResponse],
    ) -> rk.CancelAllOrdersResponse:
        venue = _venue(request.venue, required=True)
        action = CancelAll(venue, _operators(_reason(request.reason)))
        cancelled = await self.runtime.commands.run(self.runtime.executor.cancel_all(action))
        return rk.CancelAllOrdersResponse(cancelled=cancelled)

    async def GetRiskState(
        self,
        request: rk.GetRiskStateRequest,
        context: Context[rk.GetRiskStateRequest, rk.GetRiskStateResponse],
    ) -> rk.GetRiskStateResponse:
        return risk_state(self.runtime.ready_core, self.runtime.clock(), self.state.stood_down)

    async def ListRiskEvents(
        self,
        request: rk.ListRiskEventsRequest,
        context: Context[rk.ListRiskEventsRequest, rk.ListRiskEventsResponse],
    ) -> rk.ListRiskEventsResponse:
        matches = _matcher(request.action, request.venue, request.strategy_id, request.policy)
        events, token = await self.runtime.risk_log.page(matches, request.page_size, request.page_token)
        return rk.ListRiskEventsResponse(events=events, next_page_token=token)

    async def WatchRiskEvents(
        self,
        request: rk.WatchRiskEventsRequest,
        context: Context[rk.WatchRiskEventsRequest, rk.WatchRiskEventsResponse],
    ) -> AsyncIterator[rk.WatchRiskEventsResponse]:
        matches = _matcher(request.action, request.venue, request.strategy_id)
        watcher = self.runtime.risk_log.watch(matches)
        await context.send_initial_metadata(())  # the stream is open before its first event
        try:
            async for batch in watcher.outbox.batches(100):
                merged = rk.WatchRiskEventsResponse()
                for update in batch:
                    merged.events.extend(update.events)
                    merged.transitions.extend(update.transitions)
                yield merged
        finally:
            self.runtime.risk_log.unwatch(watcher)

    async def GetPolicies(
        self, request: rk.GetPoliciesRequest, context: Context[rk.GetPoliciesRequest, rk.GetPoliciesResponse]
    ) -> rk.GetPoliciesResponse:
        source = self.runtime.policies
        return rk.GetPoliciesResponse(
            toml=source.text, path=source.path, loaded_ns=source.loaded_ns,
            status=policy_status(self.runtime.ready_core),
        )  # fmt: skip

    async def UpdatePolicies(
        self,
        request: rk.UpdatePoliciesRequest,
        context: Context[rk.UpdatePoliciesRequest, rk.UpdatePoliciesResponse],
    ) -> rk.UpdatePoliciesResponse:
        _reason(request.reason)
        output = await self.runtime.commands.run(
            self.runtime.update_policies(
                request.toml, over_current=request.over_current, tighten_only=request.tighten_only
            )
        )
        changes = [f"{name}: {value}" for event in output.events for name, value in event.values]
        return rk.UpdatePoliciesResponse(changes=changes)

    async def SetMode(
        self, request: rk.SetModeRequest, context: Context[rk.SetModeRequest, rk.SetModeResponse]
    ) -> rk.SetModeResponse:
        output = await self.runtime.commands.run(self.runtime.command(request.mode, request.reason))
        return rk.SetModeResponse(
            state=STATE_TO_PB[self.runtime.ready_core.state],
            events=[risk_event_to_pb(e) for e in output.events],
        )

    async def ListPositions(
        self,
        request: rk.ListPositionsRequest,
        context: Context[rk.ListPositionsRequest, rk.ListPositionsResponse],
    ) -> rk.ListPositionsResponse:
        venue = _venue(request.venue)
        emulated = {o.client_order_id for o in self.runtime.executor.stops.held()}
        views = positions_view(self.runtime.ready_core, venue, self.state.legacy, emulated)
        return rk.ListPositionsResponse(positions=views)

    async def GetAudit(
        self, request: rk.GetAuditRequest, context: Context[rk.GetAuditRequest, rk.GetAuditResponse]
    ) -> rk.GetAuditResponse:
        venue = _venue(request.venue)
        strategy = _short("strategy_id", request.strategy_id)
        limit = request.limit or 100
        if not 1 <= limit <= 1000:
            raise InvalidArgument.field("limit", f"{limit} is not within 1-1000")
        return self.runtime.audit.report(venue, strategy, limit)


def inspector_service(state: InspectorState) -> Service:
    """The Inspector service for trademesh.core.platform.rpc.server.create_server."""
    return Service(SERVICE_NAME, InspectorServicer(state), rk_grpc.add_InspectorServicer_to_server)
