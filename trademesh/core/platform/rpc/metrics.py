"""Prometheus metrics of a gRPC server, in the names grpc-ecosystem's middleware uses, and the
count of tasks on the server's event loop."""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "HANDLED",
    "HANDLING_SECONDS",
    "LOOP_TASKS",
    "MSG_RECEIVED",
    "MSG_SENT",
    "STARTED",
    "count_loop_tasks",
]

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
# Work a request started and nobody ended (a follower, a retry loop, a stream's pump) shows as
# a count that does not come back down once the callers are gone: tests/integration/test_fuzz.py
# reads it after its fuzz.
LOOP_TASKS = Gauge("trademesh_event_loop_tasks", "Tasks not yet done on the process's event loop.")


def count_loop_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """LOOP_TASKS counts `loop`'s tasks from now on (read on the metrics server's thread)."""

    def count() -> float:
        try:
            return float(len(asyncio.all_tasks(loop)))
        except RuntimeError:  # the set kept changing under the other thread: no reading this time
            return float("nan")

    LOOP_TASKS.set_function(count)
