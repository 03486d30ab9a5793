"""Prometheus metrics of the multiplexer (served at the gateway's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from trademesh.gateway.grpcweb.methods import method_kind

__all__ = [
    "DROPPED_FRAMES",
    "ENDED",
    "FRAMES",
    "FRAME_BYTES",
    "SESSIONS",
    "SUBSCRIPTIONS",
    "SUBSCRIPTIONS_ADDED",
    "method_labels",
]

_LABELS = ("grpc_service", "grpc_method")

SESSIONS = Gauge("gateway_mux_sessions", "Mux sessions (Open streams) open now.")
SUBSCRIPTIONS = Gauge("gateway_mux_subscriptions", "Live subscriptions of every mux session, now.")
SUBSCRIPTIONS_ADDED = Counter(
    "gateway_mux_subscriptions_added_total", "Subscriptions started, by upstream method.", _LABELS
)
ENDED = Counter(
    "gateway_mux_subscriptions_ended_total",
    "Subscriptions ended, by the status of their end frame (CANCELLED: removed by the client; "
    "RESOURCE_EXHAUSTED: the client fell behind).",
    ("grpc_code",),
)
FRAMES = Counter("gateway_mux_frames_total", "Frames queued for mux clients, by frame.", ("frame",))
FRAME_BYTES = Counter("gateway_mux_frame_bytes_total", "Bytes of the frames queued for mux clients.")
DROPPED_FRAMES = Counter(
    "gateway_mux_dropped_frames_total", "Queued data frames dropped with a subscription that fell behind."
)


def method_labels(service: str, method: str) -> tuple[str, str]:
    # Only methods of known contracts get their own label: the names are the client's to
    # choose, and every distinct label value is a series kept forever.
    return (service, method) if method_kind(service, method) is not None else ("other", "other")
