"""Tools over the advisor's API (trademesh.advisor.v1.Advisor): its decisions, their stages and
telemetry, on-demand dry-run decisions, the calibration and the model. Read only: a decision
asked for here is never published (Decide with publish false; trademesh.core.tools.upstream allows no
other form).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import Field

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as av
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.core.tools.inputs import MAX_NS, bounded, canonical_symbol, optional_symbol, strategy_name
from trademesh.core.tools.upstream import Upstream
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["ADVISOR", "AdvisorTools", "render_decision"]

ADVISOR = "trademesh.advisor.v1.Advisor"
Json = dict[str, Any]
MAX_PAGE = 500
MAX_WATCH_S = 30.0
_DIRECTIONS = {"long": sig.DIRECTION_LONG, "short": sig.DIRECTION_SHORT, "flat": sig.DIRECTION_FLAT}
_OUTCOMES = {"intent": am.OUTCOME_INTENT, "blocked": am.OUTCOME_BLOCKED}
Outcome = Literal["intent", "blocked"]
Conviction = Annotated[str, Field(description='a decimal in [0, 1], e.g. "0.7"')]


def _dict(message: Message) -> Json:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def render_decision(decision: am.Decision) -> Json:
    """A decision as JSON, each stage's output as an object rather than its JSON text."""
    out = _dict(decision)
    for stage in out.get("stages", []):
        text = stage.pop("output_json", "")
        stage["output"] = json.loads(text) if text else None
    return out


def _signal(venue: str, symbol: str, direction: str, conviction: str, strategy: str | None) -> sig.Signal:
    bad: list[FieldViolation] = []
    for check, value in ((canonical_symbol, symbol), (strategy_name, strategy)):
        try:
            if value is not None:
                check(value)
        except InvalidArgument as exc:
            bad += exc.violations
    if direction not in _DIRECTIONS:
        bad.append(FieldViolation("direction", f"{shown(direction)} is not long, short or flat"))
    if bad:
        raise InvalidArgument(bad)
    now = time.time_ns()
    return sig.Signal(
        venue=venue,
        symbol=symbol,
        direction=_DIRECTIONS[direction],
        conviction=conviction,
        score=conviction,
        threshold="0",
        strategy_id=strategy or "hypothetical",
        ts_event_ns=now,
        ts_signal_ns=now,
    )


class AdvisorTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def advisor_decide(
        self,
        signal_id: str | None = None,
        venue: str | None = None,
        symbol: str | None = None,
        direction: str | None = None,
        conviction: Conviction | None = None,
        strategy: str | None = None,
    ) -> Json:
        """A dry-run decision of the advisor (nothing is published): for a recorded signal by its
        `signal_id`, or for a hypothetical one given as `venue`, `symbol` (canonical, BTC/USDT),
        `direction` (long, short, flat) and `conviction` (a decimal in [0, 1]). Answers every
        stage's output (context, market quality, evaluation, conviction, calibration, synthesis,
        validation, intent), the outcome (intent or blocked, with the stage and reasons) and the
        intent it would emit."""
        request = av.DecideRequest(publish=False)
        if signal_id is not None:
            if any(v is not None for v in (venue, symbol, direction, conviction)):
                raise InvalidArgument.field("signal_id", "give signal_id or venue/symbol/direction, not both")
            request.signal_id = signal_id
        elif venue is None or symbol is None or direction is None:
            given = (("venue", venue), ("symbol", symbol), ("direction", direction))
            missing = next(name for name, value in given if value is None)
            raise InvalidArgument.field(missing, "is required for a hypothetical signal (or give signal_id)")
        else:
            request.signal.CopyFrom(_signal(venue, symbol, direction, conviction or "0.5", strategy))
        answer = await self._up.unary(ADVISOR, None, "Decide", request, av.DecideResponse)
        return render_decision(answer.decision)

    async def advisor_decision(self, decision_id: str) -> Json:
        """One decision of the advisor by id: every stage with its output, the LLM's trace
        (model, reasoning, hallucination flags), conviction before and after calibration, the
        intent or the block and its reasons, and the decision's telemetry events in order."""
        request = av.GetDecisionRequest(decision_id=decision_id)
        answer = await self._up.unary(ADVISOR, None, "GetDecision", request, av.GetDecisionResponse)
        return {"decision": render_decision(answer.decision), "events": [_dict(e) for e in answer.events]}

    async def advisor_decisions(
        self,
        venue: str | None = None,
        symbol: str | None = None,
        strategy: str | None = None,
        outcome: Outcome | None = None,
        since_ns: int = 0,
        limit: int = 20,
        page_token: str = "",
    ) -> Json:
        """The advisor's decisions, newest first, optionally of one venue, symbol, strategy or
        outcome (intent, blocked), made at or after `since_ns` (ns since the epoch); `limit`
        1 to 500; `next_page_token` continues the list."""
        request = av.ListDecisionsRequest(
            venue=venue or "",
            symbol=optional_symbol(symbol),
            strategy_id="" if strategy is None else strategy_name(strategy),
            outcome=_OUTCOMES[outcome] if outcome is not None else am.OUTCOME_UNSPECIFIED,
            since_ns=bounded("since_ns", since_ns, 0, MAX_NS),
            page_size=bounded("limit", limit, 1, MAX_PAGE),
            page_token=page_token,
        )
        answer = await self._up.unary(ADVISOR, None, "ListDecisions", request, av.ListDecisionsResponse)
        return {
            "decisions": [render_decision(d) for d in answer.decisions],
            "next_page_token": answer.next_page_token,
        }

    async def advisor_watch(
        self, seconds: float = 5.0, symbol: str | None = None, strategy: str | None = None
    ) -> Json:
        """The decisions the advisor makes in the next `seconds` (up to 30), as they are made,
        optionally of one symbol or strategy."""
        if not 0 < seconds <= MAX_WATCH_S:
            raise InvalidArgument.field("seconds", f"{seconds} is out of range: (0, {MAX_WATCH_S:g}]")
        request = av.WatchDecisionsRequest(
            symbol=optional_symbol(symbol),
            strategy_id="" if strategy is None else strategy_name(strategy),
        )
        batches = await self._up.collect(
            ADVISOR, None, "WatchDecisions", request, av.WatchDecisionsResponse, seconds
        )
        return {"decisions": [render_decision(d) for b in batches for d in b.decisions]}

    async def advisor_calibration(self, regime: str | None = None) -> Json:
        """The calibration the advisor applies, per market regime (Overwatch's: trend_up,
        trend_down, range, high_volatility, thin_liquidity; `unknown` and a regime without a
        calibrator of its own use `fallback`): the method (Platt, isotonic or identity), and on
        held-out data the Brier score and ECE before and after, with the reliability bins."""
        request = av.GetCalibrationRequest(regime=regime or "")
        answer = await self._up.unary(ADVISOR, None, "GetCalibration", request, av.GetCalibrationResponse)
        return _dict(answer.calibration)

    async def advisor_model(self, version: str | None = None) -> Json:
        """The advisor's evaluation model (the one in use, or a `version`): its hash, features,
        training report (walk-forward folds, what it can and cannot predict), and every version
        available."""
        request = av.GetModelRequest(version=version or "")
        answer = await self._up.unary(ADVISOR, None, "GetModel", request, av.GetModelResponse)
        return {"model": _dict(answer.model), "versions": list(answer.versions)}
