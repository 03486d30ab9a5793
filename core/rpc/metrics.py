"""Prometheus metrics of a gRPC server, in the names grpc-ecosystem's middleware uses."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["HANDLED", "HANDLING_SECONDS", "MSG_RECEIVED", "MSG_SENT", "STARTED"]

_LABELS = ("grpc_type", "grpc_service", "grpc_method")

STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", _LABELS)
HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by status code.", (*_LABELS, "grpc_code")
)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its end (for streams: the whole stream).",
    _LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
)
MSG_SENT = Counter("grpc_server_msg_sent_total", "Stream messages sent by the server.", _LABELS)
MSG_RECEIVED = Counter("grpc_server_msg_received_total", "Stream messages received by the server.", _LABELS)
