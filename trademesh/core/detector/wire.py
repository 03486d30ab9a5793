"""The engine's outputs as bus entries (streams `signals` and `position_requests`): Envelopes of
the contracts' messages (trademesh.core.detector.convert)."""

from __future__ import annotations

from collections.abc import Sequence

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.detector.convert import position_to_pb, signal_to_pb
from trademesh.core.detector.engine.outputs import EmittedSignal, PositionRequest

__all__ = ["encode_positions", "encode_signals"]


def encode_signals(source: str, signals: Sequence[EmittedSignal], now_ns: int) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns)
    envelope.signals.signals.extend(signal_to_pb(s) for s in signals)
    return envelope.SerializeToString()


def encode_positions(source: str, requests: Sequence[PositionRequest], now_ns: int) -> bytes:
    envelope = bus.Envelope(source=source, ts_publish_ns=now_ns)
    envelope.position_requests.requests.extend(position_to_pb(r) for r in requests)
    return envelope.SerializeToString()
