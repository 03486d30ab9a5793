"""The shell's side of a strategy's position requests (trademesh.core.inspector.requests): each planned
intent submitted as an intent from the bus is (journaled, checked, placed when allowed), in
order, the next only once the one before is allowed (a flip opens only after its close was
placed); a refusal published on the risk stream."""

from __future__ import annotations

import logging

from trademesh.core.inspector.convert import risk_event_to_pb
from trademesh.core.inspector.metrics import VERDICTS
from trademesh.core.inspector.requests import plan_request
from trademesh.core.inspector.runtime import Runtime
from trademesh.core.platform.errors import TrademeshError, shown
from trademesh.core.platform.logs.setup import chain_trace_id, log_fields
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["carry_out_request"]

log = logging.getLogger(__name__)


async def carry_out_request(runtime: Runtime, request: sig.PositionRequest) -> None:
    """The request carried out under its own trace (trademesh.core.platform.logs.setup.chain_trace_id of its
    id, as a signal's): its verdicts' lines and the venue's lines of its orders."""
    with log_fields(trace_id=chain_trace_id(request.request_id)):
        await _carry_out(runtime, request)


async def _carry_out(runtime: Runtime, request: sig.PositionRequest) -> None:
    planned = plan_request(runtime.ready_core, request, runtime.clock())
    if planned.refusal is not None:
        event = planned.refusal
        log.info("inspector: position request %s refused: %s", shown(request.request_id), event.reason)
        VERDICTS.labels(event.action.value).inc()
        await runtime.risk_log.publish([risk_event_to_pb(event)], [], event.at_ns)
        return
    for intent in planned.intents:
        if runtime.ready_core.handled(intent.intent_id):
            continue  # a redelivery: the journal has it
        try:
            submitted = await runtime.submit(intent)
        except TrademeshError as exc:  # its market cannot be checked now: said, and the bus goes on
            log.warning("inspector: position request %s not taken: %s", shown(request.request_id), exc)
            return
        submitted.log("request", intent)
        if not submitted.verdict.allowed:
            return  # its risk events say why; a flip does not open after a refused close
