"""A strategy's own position requests (the detector's `position` sink, stream
`position_requests.{signals}`) as the intents the inspector checks and places like any other.

Pure: the plan is read from the core's state (the strategy's share of the position, the
instrument's lot size) at the time given; no I/O. The live shell (trademesh.core.inspector.app) and the
backtest (trademesh.core.backtest.run) plan with this same function, then hand each intent to the core the
way every intent goes (journaled, checked against the policies): the inspector stays the only
order placer, and protection follows from the core's rules. An exit is reduce-only, so the
protective pair is sized to what the exits leave: a reduce shrinks it, a close cancels it.

- close: a reduce-only market IOC of the strategy's whole share, rounded down to the lot size
  (a spot fee paid in the base leaves the holding off the lot; what is under a lot is dust,
  which no order can sell: docs/inspector.md, "Dust");
- reduce: the same, of `fraction` of the share, rounded down to the lot size;
- flip: the close, then a market IOC entry of the same size on the other side (protected at the
  policy distances, as an intent without levels is);
- open: refused: an entry is the advisor's to size, from a signal.

A request the inspector cannot carry out (no position of that strategy there, a flip to the side
it holds, an open, a reduce too small for the lot, a close of dust) is refused with a BLOCK risk
event naming why (policy `request.<why>`), and nothing is placed. A request whose first intent the core has
handled already is a redelivery: nothing is planned again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as cm
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction, RiskEvent
from trademesh.core.platform.errors import shown
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["REQUEST_TTL_NS", "Planned", "plan_request", "request_intent_id"]

REQUEST_TTL_NS = 30 * 1_000_000_000  # a request's intents expire this long after it was made
_NAMESPACE = uuid.UUID("3c0f6a52-2d0b-4f0e-9a57-726571756573")
_ACTIONS = {
    sig.POSITION_ACTION_OPEN: "open",
    sig.POSITION_ACTION_CLOSE: "close",
    sig.POSITION_ACTION_REDUCE: "reduce",
    sig.POSITION_ACTION_FLIP: "flip",
}
_DIRECTION_SIGN = {sig.DIRECTION_LONG: 1, sig.DIRECTION_SHORT: -1}


@dataclass
class Planned:
    """A request's intents, in the order they go to the core, or why it was refused."""

    intents: list[am.Intent] = field(default_factory=list)
    refusal: RiskEvent | None = None


def request_intent_id(request_id: str, leg: str) -> str:
    """Deterministic: a redelivered request makes the same intents, which the core knows."""
    return "request-" + uuid.uuid5(_NAMESPACE, f"{request_id}/{leg}").hex


def plan_request(core: InspectorCore, request: sig.PositionRequest, now_ns: int) -> Planned:
    if core.handled(request_intent_id(request.request_id, "exit")):
        return Planned()  # a redelivery: its intents are the core's already
    share = core.book.positions.by_strategy.get(
        (request.strategy_id, request.venue, request.symbol), Decimal(0)
    )
    closing = _closing_size(core, request, share)
    refused = _refusal(request, share, closing)
    if refused is not None:
        return _refused(request, now_ns, *refused)
    assert closing is not None
    exit_side = cm.SIDE_SELL if share > 0 else cm.SIDE_BUY
    planned = Planned([_intent(request, "exit", exit_side, closing, True, now_ns)])
    if request.action == sig.POSITION_ACTION_FLIP:
        planned.intents.append(_intent(request, "open", exit_side, closing, False, now_ns))
    return planned


def _refusal(request: sig.PositionRequest, share: Decimal, closing: Decimal | None) -> tuple[str, str] | None:
    """Why the request cannot be carried out (the policy's last word, the reason), or None."""
    action = _ACTIONS.get(request.action, "")
    if action == "open":
        return "open", "an open is the advisor's to size: emit a signal"
    if action == "":
        return "action", f"action {request.action} is not close, reduce or flip"
    if share == 0:
        where = f"{shown(request.symbol, 64)} at {shown(request.venue, 64)}"
        return "no_position", f"{action}: strategy {shown(request.strategy_id)} holds no position in {where}"
    if closing is None:
        return "fraction", f"reduce: fraction {shown(request.fraction, 64)} is not in (0, 1]"
    if closing <= 0 and action == "reduce":
        return "too_small", f"reduce: {shown(request.fraction, 64)} of {abs(share)} is under a lot"
    if closing <= 0:
        return "dust", f"{action}: the {abs(share)} held is under a lot: dust, which no order can sell"
    if action == "flip" and _DIRECTION_SIGN.get(request.direction, 0) == (1 if share > 0 else -1):
        return "flip", f"flip: the position is {'long' if share > 0 else 'short'} already"
    return None


def _closing_size(core: InspectorCore, request: sig.PositionRequest, share: Decimal) -> Decimal | None:
    """What the exit takes off: the share, or its fraction for a reduce, down to the lot; None
    when the fraction means nothing."""
    fraction = Decimal(1)
    if request.action == sig.POSITION_ACTION_REDUCE:
        try:
            fraction = Decimal(request.fraction)
        except ArithmeticError:
            return None
        if not (fraction.is_finite() and 0 < fraction <= 1):
            return None
    return core.book.lots((request.venue, request.symbol), abs(share) * fraction)


def _intent(
    request: sig.PositionRequest, leg: str, side: cm.Side.ValueType, size: Decimal, reduce: bool, now_ns: int
) -> am.Intent:
    return am.Intent(
        intent_id=request_intent_id(request.request_id, leg),
        decision_id=request.request_id,
        signal_id=request.request_id,
        venue=request.venue,
        symbol=request.symbol,
        side=side,
        size=format_decimal(size),
        entry_type=tf.ORDER_TYPE_MARKET,
        time_in_force=tf.TIME_IN_FORCE_IOC,
        expires_at_ns=max(request.ts_request_ns, now_ns) + REQUEST_TTL_NS,
        conviction="1",
        strategy_id=request.strategy_id,
        ts_intent_ns=now_ns,
        reduce_only=reduce,
        ts_signal_ns=request.ts_request_ns,
    )


def _refused(request: sig.PositionRequest, now_ns: int, why: str, reason: str) -> Planned:
    event = RiskEvent(
        now_ns, RiskAction.BLOCK, f"request.{why}", reason,
        values=(("request_id", request.request_id[:128]), ("action", _ACTIONS.get(request.action, "?"))),
        strategy_id=request.strategy_id[:128], venue=request.venue[:64], symbol=request.symbol[:64],
    )  # fmt: skip
    return Planned(refusal=event)
