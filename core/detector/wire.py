"""The engine's outputs as the contracts' messages (trademesh.signal.v1) and bus entries.

Conviction, score, threshold and weights are floats in the engine (indicator math) and decimal
strings on the wire: each is written as the shortest decimal that reads back as the same float
(repr), so 0.75 is "0.75", never "0.7500000000000000111...".
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from core.decimals import format_decimal
from core.detector.engine.outputs import EmittedSignal, PositionRequest
from core.detector.engine.values import Direction, RuleValue
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.signal.v1 import signal_pb2 as pb

__all__ = ["decimal_text", "encode_positions", "encode_signals", "position_message", "signal_message"]

_DIRECTIONS = {
    Direction.LONG: pb.DIRECTION_LONG,
    Direction.SHORT: pb.DIRECTION_SHORT,
    Direction.FLAT: pb.DIRECTION_FLAT,
}
_ACTIONS = {
    "open": pb.POSITION_ACTION_OPEN,
    "close": pb.POSITION_ACTION_CLOSE,
    "reduce": pb.POSITION_ACTION_REDUCE,
    "flip": pb.POSITION_ACTION_FLIP,
}


def decimal_text(value: float) -> str:
    """The shortest decimal string that is `value` (finite values only)."""
    return format_decimal(Decimal(repr(float(value))))


def _rule(rule: RuleValue) -> pb.RuleAttribution:
    if rule.value is None:
        value = ""
    elif isinstance(rule.value, bool):
        value = "true" if rule.value else "false"
    else:
        value = decimal_text(rule.value)
    return pb.RuleAttribution(name=rule.name, weight=decimal_text(rule.weight), value=value, fired=rule.fired)


def signal_message(signal: EmittedSignal) -> pb.Signal:
    return pb.Signal(
        signal_id=signal.signal_id,
        venue=signal.venue,
        symbol=signal.symbol,
        direction=_DIRECTIONS[signal.direction],
        conviction=decimal_text(signal.conviction),
        score=decimal_text(signal.score),
        threshold=decimal_text(signal.threshold),
        strategy_id=signal.strategy_id,
        patch_version=signal.patch_version,
        rules=[_rule(rule) for rule in signal.rules],
        ts_event_ns=signal.ts_event_ns,
        ts_signal_ns=signal.signal_time_ns,
    )


def position_message(request: PositionRequest) -> pb.PositionRequest:
    opening = request.action in ("open", "flip")
    return pb.PositionRequest(
        request_id=request.request_id,
        venue=request.venue,
        symbol=request.symbol,
        action=_ACTIONS[request.action],
        direction=_DIRECTIONS[request.side] if opening else pb.DIRECTION_UNSPECIFIED,
        fraction=decimal_text(request.fraction) if request.action == "reduce" else "",
        strategy_id=request.strategy_id,
        patch_version=request.patch_version,
        ts_event_ns=request.ts_event_ns,
        ts_request_ns=request.time_ns,
    )


def encode_signals(source: str, signals: Sequence[EmittedSignal], now_ns: int) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns)
    envelope.signals.signals.extend(signal_message(s) for s in signals)
    return envelope.SerializeToString()


def encode_positions(source: str, requests: Sequence[PositionRequest], now_ns: int) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns)
    envelope.position_requests.requests.extend(position_message(r) for r in requests)
    return envelope.SerializeToString()
