"""Logging set-up shared by every trademesh process: one line per record, to stderr.

TRADEMESH_LOG_FORMAT picks the line: `text` (the default; for people at a terminal) or `json`
(one JSON object per line, for log collectors): time, level, service, logger, message, and
the structured fields known where the record was made: a record's `extra=` fields and the
fields bound to the running task with `log_fields(...)` (venue, symbol, stream, group,
trace_id, ...). Tasks inherit the fields bound where they were created.

Besides stderr, each line goes to the bus's bounded `logs` stream (LogHub, docs/logs.md;
trademesh.core.platform.logs.stream) when the process has one: $REDIS_URL set, or TRADEMESH_LOG_STREAM
naming a Redis; TRADEMESH_LOG_STREAM=off keeps lines on stderr alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import sys
import traceback
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from trademesh.core.platform.config.env import LOG_FORMAT, LOG_LEVEL
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "JsonFormatter",
    "bind_log_fields",
    "bound_trace_id",
    "chain_trace_id",
    "log_fields",
    "record_fields",
    "setup_logging",
]

_FIELDS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "log_fields", default=MappingProxyType({})
)
# What every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_FORMATS = ("text", "json")
# The log stream's handler set up last (at most one), to close when set up again.
_STREAMED: list[logging.Handler] = []
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@contextlib.contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Within the block (and the tasks created in it), every record carries these fields."""
    token = _FIELDS.set({**_FIELDS.get(), **fields})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bind_log_fields(**fields: Any) -> None:
    """From now on in this task (and the tasks it creates), records carry these fields."""
    _FIELDS.set({**_FIELDS.get(), **fields})


def bound_trace_id() -> str | None:
    """The trace id bound to this task (a call's `traceparent`, trademesh.core.platform.rpc.edge)."""
    trace_id = _FIELDS.get().get("trace_id")
    return trace_id if isinstance(trace_id, str) and trace_id else None


def chain_trace_id(signal_id: str) -> str:
    """The trace id (W3C: 32 lower-case hex digits) a signal's chain is logged under: the
    detector's signal, the advisor's decision, the inspector's verdict on its intent and the
    venue's order (docs/logs.md, "Traces"). A UUID signal id (the detector's) is its own 32 hex
    digits; any other id, the first 32 hex digits of its SHA-256."""
    try:
        return uuid.UUID(signal_id).hex
    except ValueError:
        return hashlib.sha256(signal_id.encode()).hexdigest()[:32]


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record: those bound where it was made, then its `extra=`."""
    fields = dict(_FIELDS.get())
    fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the service's name on every line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(record_fields(record))
        if record.exc_info is not None and record.exc_info[0] is not None:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, default=str)


def _format() -> str:
    value = os.environ.get(LOG_FORMAT, "").strip().lower() or "text"
    if value not in _FORMATS:
        raise InvalidArgument.field(LOG_FORMAT, f"{value[:32]!r} is not one of {', '.join(_FORMATS)}")
    return value


def _level() -> int:
    name = os.environ.get(LOG_LEVEL, "").strip().upper() or "INFO"
    level = logging.getLevelNamesMapping().get(name)
    if level is None or name not in _LEVELS:
        raise InvalidArgument.field(LOG_LEVEL, f"{name[:32]!r} is not one of {', '.join(_LEVELS)}")
    return level


class _ClientGoneFilter(logging.Filter):
    """grpc's aio server logs a traceback when a call's status cannot be sent because the
    client hung up a moment before grpc noticed (a race inside grpc, not a fault of ours):
    one warning line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("ExecuteBatchError raised in core"):
            record.msg, record.args = "a call's status was not sent: its client had gone (%s)", record.args
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def _stream_handler(label: str) -> list[logging.Handler]:
    """The log stream's handler (trademesh.core.platform.logs.stream) when the process has a bus."""
    from trademesh.core.platform.logs.stream.config import stream_settings

    settings = stream_settings()
    if settings is None:
        return []
    from trademesh.core.platform.logs.stream.handler import StreamLogHandler

    # "venue/sim": the service "venue", its instance "sim"; "ingest": both "ingest".
    service, _, instance = label.partition("/")
    return [StreamLogHandler(settings, service, instance or service, record_fields)]


def setup_logging(service: str, **fields: Any) -> None:
    """Logging for this process, named `service`; `fields` go on every JSON line (e.g. venue).
    Every line goes to stderr, and to the log stream when the process has a bus (module docstring).

    InvalidArgument (one line, exit code 2 from the CLI) for an unknown level or format."""
    level, form = _level(), _format()
    handler = logging.StreamHandler(sys.stderr)
    if form == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    streamed = _stream_handler(service)
    root = logging.getLogger()
    for old in _STREAMED:
        old.close()  # a second set-up: the last one's thread sends what waits and stops
    _STREAMED[:] = streamed
    root.handlers[:] = [handler, *streamed]
    root.setLevel(level)
    bind_log_fields(**fields)
    # grpc and asyncio are chatty at INFO about things operators do not act on; so is the HTTP
    # client of the MCP SDK (httpx2: a line per request, three per tool call, which the Supervisor
    # and the Telegram bot make through the gateway: 15 lines at each of the Supervisor's looks).
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    cygrpc = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, _ClientGoneFilter) for f in cygrpc.filters):
        cygrpc.addFilter(_ClientGoneFilter())
