"""The advisor's gRPC API (trademesh.advisor.v1.Advisor) over the service it runs in.

- Decide: a signal the recorder holds (by id) or one given whole (hypothetical when it has no
  id: the decision says so) through the same pipeline as the bus's signals; published to the
  bus only with `publish` (the gateway asks the `trade` scope for Decide).
- GetDecision: from this advisor's memory (recent decisions and dry runs), else the
  recorder's tables; every stage's output and the telemetry in order.
- ListDecisions: the recorded decisions, newest first, filtered and paged.
- WatchDecisions: decisions (and their telemetry) as this advisor makes them.
- GetCalibration, GetModel: the artifacts in use (and every model version available).

Bad input is INVALID_ARGUMENT with a field violation per bad field (trademesh.core.platform.rpc's edge maps
trademesh.core.platform.errors), and the service serves on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as pb
from trademesh.advisor.v1 import service_pb2_grpc as pb_grpc
from trademesh.core.advisor.convert import signal_from_pb
from trademesh.core.advisor.decision_journal import DecisionJournal, Made
from trademesh.core.advisor.library import CalibrationFiles, ModelLibrary, calibration_to_pb
from trademesh.core.advisor.runner import Pipeline
from trademesh.core.advisor.store import DecisionFilter, DecisionStore
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, NotFound, shown
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.core.tools.inputs import canonical_symbol
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["SERVICE_NAME", "AdvisorServicer", "AdvisorState", "advisor_service"]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Advisor"].full_name
DEFAULT_PAGE, MAX_PAGE = 50, 500
_ID_CHARS = 128
_OUTCOMES = {am.OUTCOME_UNSPECIFIED: "", am.OUTCOME_INTENT: "intent", am.OUTCOME_BLOCKED: "blocked"}
HYPOTHETICAL_STRATEGY = "hypothetical"


class AdvisorState(Protocol):
    """What the service gives the API."""

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def journal(self) -> DecisionJournal: ...

    @property
    def store(self) -> DecisionStore: ...

    @property
    def library(self) -> ModelLibrary: ...

    @property
    def calibration(self) -> CalibrationFiles: ...

    @property
    def model_version(self) -> str: ...


def _required(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument.field(field, "is required")
    if len(value) > _ID_CHARS:
        raise InvalidArgument.field(field, f"{shown(value)} is longer than {_ID_CHARS} characters")
    return value


def _market_checks(message: sig.Signal) -> list[FieldViolation]:
    bad = []
    for field, check in (("venue", venue_name), ("symbol", canonical_symbol)):
        value = getattr(message, field)
        if not value:
            bad.append(FieldViolation(f"signal.{field}", "is required"))
            continue
        try:
            check(value)
        except InvalidArgument as exc:
            bad += [FieldViolation(f"signal.{v.field}", v.description) for v in exc.violations]
    return bad


def given_signal(message: sig.Signal, now_ns: int) -> tuple[sig.Signal, bool]:
    """A signal given whole, completed: an id and times when it has none (hypothetical)."""
    bad = _market_checks(message)
    if not message.conviction:
        bad.append(FieldViolation("signal.conviction", "is required (a decimal in [0, 1])"))
    if bad:
        raise InvalidArgument(bad)
    filled = sig.Signal()
    filled.CopyFrom(message)
    hypothetical = not message.signal_id
    if hypothetical:
        filled.signal_id = f"hypothetical-{uuid.uuid4()}"
    filled.strategy_id = filled.strategy_id or HYPOTHETICAL_STRATEGY
    filled.ts_signal_ns = filled.ts_signal_ns or now_ns
    filled.ts_event_ns = filled.ts_event_ns or filled.ts_signal_ns
    return filled, hypothetical


def _filter(request: pb.ListDecisionsRequest | pb.WatchDecisionsRequest) -> DecisionFilter:
    bad = []
    if request.venue:
        try:
            venue_name(request.venue)
        except InvalidArgument as exc:
            bad += exc.violations
    if request.symbol:
        try:
            canonical_symbol(request.symbol)
        except InvalidArgument as exc:
            bad += exc.violations
    if request.outcome not in _OUTCOMES:
        bad.append(FieldViolation("outcome", f"{request.outcome} is not an Outcome"))
    if len(request.strategy_id) > _ID_CHARS:
        bad.append(FieldViolation("strategy_id", f"is longer than {_ID_CHARS} characters"))
    if bad:
        raise InvalidArgument(bad)
    return DecisionFilter(request.venue, request.symbol, request.strategy_id, _OUTCOMES[request.outcome])


def _matches(decision: am.Decision, where: DecisionFilter) -> bool:
    return (
        (not where.venue or decision.venue == where.venue)
        and (not where.symbol or decision.symbol == where.symbol)
        and (not where.strategy_id or decision.strategy_id == where.strategy_id)
        and (not where.outcome or _OUTCOMES[decision.outcome] == where.outcome)
    )


class AdvisorServicer(pb_grpc.AdvisorServicer):
    def __init__(self, state: AdvisorState) -> None:
        self.state = state

    async def Decide(
        self, request: pb.DecideRequest, context: Context[pb.DecideRequest, pb.DecideResponse]
    ) -> pb.DecideResponse:
        source = request.WhichOneof("source")
        if source is None:
            raise InvalidArgument.field(
                "source", "give signal_id (a recorded signal) or signal (a given one)"
            )
        if source == "signal_id":
            signal_id = _required("signal_id", request.signal_id)
            found = await self.state.store.signal(signal_id)
            if found is None:
                raise NotFound(
                    f"no recorded signal {shown(signal_id)} (the recorder stores the bus's signals)"
                )
            message, hypothetical = found, False
        else:
            message, hypothetical = given_signal(request.signal, time.time_ns())
        signal = signal_from_pb(message, "signal.")
        decision = await self.state.pipeline.decide(
            signal, publish=request.publish, hypothetical=hypothetical
        )
        return pb.DecideResponse(decision=decision)

    async def GetDecision(
        self, request: pb.GetDecisionRequest, context: Context[pb.GetDecisionRequest, pb.GetDecisionResponse]
    ) -> pb.GetDecisionResponse:
        decision_id = _required("decision_id", request.decision_id)
        made = self.state.journal.get(decision_id)
        if made is not None and made.decision is not None:
            return pb.GetDecisionResponse(decision=made.decision, events=made.events)
        found = await self.state.store.decision(decision_id)
        if found is None:
            raise NotFound(f"no decision {shown(decision_id)}")
        return pb.GetDecisionResponse(decision=found[0], events=found[1])

    async def ListDecisions(
        self,
        request: pb.ListDecisionsRequest,
        context: Context[pb.ListDecisionsRequest, pb.ListDecisionsResponse],
    ) -> pb.ListDecisionsResponse:
        where = _filter(request)
        size = request.page_size or DEFAULT_PAGE
        bad = []
        if size > MAX_PAGE:
            bad.append(FieldViolation("page_size", f"{size} is above {MAX_PAGE}"))
        if request.since_ns < 0:
            bad.append(FieldViolation("since_ns", "must not be negative"))
        if request.until_ns < 0 or (request.until_ns and request.until_ns <= request.since_ns):
            bad.append(FieldViolation("until_ns", "must be 0 (no bound) or after since_ns"))
        if bad:
            raise InvalidArgument(bad)
        where = DecisionFilter(
            where.venue, where.symbol, where.strategy_id, where.outcome, request.since_ns, request.until_ns
        )
        decisions, following = await self.state.store.decisions(where, size, request.page_token)
        return pb.ListDecisionsResponse(decisions=decisions, next_page_token=following)

    async def WatchDecisions(
        self,
        request: pb.WatchDecisionsRequest,
        context: Context[pb.WatchDecisionsRequest, pb.WatchDecisionsResponse],
    ) -> AsyncIterator[pb.WatchDecisionsResponse]:
        where = _filter(request)
        journal = self.state.journal
        sequence = journal.sequence
        while True:
            seen = journal.pulse.count
            made, sequence = journal.after(sequence)
            batch = _batch(made, where, request.with_telemetry)
            if batch.decisions or batch.events:
                yield batch
            await journal.pulse.wait(seen, 1.0)

    async def GetCalibration(
        self,
        request: pb.GetCalibrationRequest,
        context: Context[pb.GetCalibrationRequest, pb.GetCalibrationResponse],
    ) -> pb.GetCalibrationResponse:
        return pb.GetCalibrationResponse(
            calibration=calibration_to_pb(self.state.calibration, request.regime)
        )

    async def GetModel(
        self, request: pb.GetModelRequest, context: Context[pb.GetModelRequest, pb.GetModelResponse]
    ) -> pb.GetModelResponse:
        if len(request.version) > _ID_CHARS:
            raise InvalidArgument.field("version", f"is longer than {_ID_CHARS} characters")
        library = self.state.library
        model = library.to_pb(request.version or self.state.model_version)
        return pb.GetModelResponse(model=model, versions=library.versions())


def _batch(made: Sequence[Made], where: DecisionFilter, telemetry: bool) -> pb.WatchDecisionsResponse:
    batch = pb.WatchDecisionsResponse()
    for item in made:
        if item.decision is not None and _matches(item.decision, where):
            batch.decisions.append(item.decision)
            if telemetry:
                batch.events.extend(item.events)
        elif item.decision is None and telemetry and not (where.venue or where.symbol or where.strategy_id):
            batch.events.extend(item.events)
    return batch


def advisor_service(state: AdvisorState) -> Service:
    """The Advisor service for trademesh.core.platform.rpc.server.create_server."""
    return Service(SERVICE_NAME, AdvisorServicer(state), pb_grpc.add_AdvisorServicer_to_server)
