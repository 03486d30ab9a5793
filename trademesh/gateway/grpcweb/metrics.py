"""Prometheus metrics of the gRPC-web bridge (served at the gateway's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["CALLS", "LATENCY_SECONDS", "MESSAGES_SENT", "OPEN_STREAMS"]

_LABELS = ("grpc_service", "grpc_method")

CALLS = Counter(
    "gateway_grpcweb_calls_total", "gRPC-web calls finished, by status code.", (*_LABELS, "grpc_code")
)
OPEN_STREAMS = Gauge("gateway_grpcweb_open_streams", "gRPC-web server streams open now.", _LABELS)
LATENCY_SECONDS = Histogram(
    "gateway_grpcweb_latency_seconds",
    "Unary calls: until the answer. Server streams: until the first message.",
    _LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MESSAGES_SENT = Counter("gateway_grpcweb_messages_sent_total", "Messages sent to gRPC-web clients.", _LABELS)
