"""The session stream's frames (trademesh.mux.v1.OpenResponse), encoded once each.

A data frame wraps the upstream's message bytes in a bytes field: they are copied, never
decoded or encoded again.
"""

from __future__ import annotations

from trademesh.gateway.grpcweb.status import CallStatus
from trademesh.mux.v1 import mux_pb2 as pb

__all__ = ["data_frame", "end_frame", "opened_frame"]


def opened_frame(session_id: str, max_subscriptions: int, max_queued_bytes: int) -> bytes:
    opened = pb.Opened(
        session_id=session_id, max_subscriptions=max_subscriptions, max_queued_bytes=max_queued_bytes
    )
    return pb.OpenResponse(opened=opened).SerializeToString()


def data_frame(subscription_id: str, message: bytes) -> bytes:
    return pb.OpenResponse(data=pb.Data(subscription_id=subscription_id, message=message)).SerializeToString()


def end_frame(subscription_id: str, status: CallStatus) -> bytes:
    end = pb.End(
        subscription_id=subscription_id,
        code=status.code.value[0],
        message=status.message,
        details=status.details or b"",
    )
    return pb.OpenResponse(end=end).SerializeToString()
