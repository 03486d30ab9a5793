"""One log line as a stream entry, both ways: what the handler writes, what the gateway reads.

An entry has one field, `j`: a JSON object with `t` (Unix ns), `lvl` (DEBUG..CRITICAL), `svc`
(the service's kind), `inst` (the instance), `proc` (host:pid), `log` (the logger), `msg`, `f`
(the structured fields, an object of strings) when there are any, and `exc` (the traceback) when
there is one. One field, not one per key: the client's cost of an XADD grows with its arguments
(bench/log_cost.py measured the sender at a third of a line's cost with nine); short names, as
the stream holds ~100,000 of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.parsing import loads_json

__all__ = ["FIELD", "LEVELS", "STREAM", "LogEntry", "decode_entry"]

# The one stream of every process's lines.
STREAM = "logs"
# The entry's one field.
FIELD = "j"
# Python's level names, in order of gravity.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class LogEntry:
    id: str
    time_ns: int
    level: str
    service: str
    instance: str
    process: str
    logger: str
    message: str
    fields: Mapping[str, str] = field(default_factory=dict)
    exception: str = ""


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def decode_entry(entry_id: bytes | str, raw: Mapping[bytes | str, bytes | str]) -> LogEntry:
    """The entry as written by the handler; what cannot be read (another writer) stays empty."""
    body = raw.get(FIELD) or raw.get(FIELD.encode()) or "{}"
    try:
        values = loads_json(body, "entry")  # anyone who can write the stream: nesting bounded
    except InvalidArgument:
        values = {}
    if not isinstance(values, dict):
        values = {}
    fields = values.get("f")
    time_ns = values.get("t")
    return LogEntry(
        id=_text(entry_id),
        time_ns=time_ns if isinstance(time_ns, int) else 0,
        level=str(values.get("lvl", "")),
        service=str(values.get("svc", "")),
        instance=str(values.get("inst", "")),
        process=str(values.get("proc", "")),
        logger=str(values.get("log", "")),
        message=str(values.get("msg", "")),
        fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
        exception=str(values.get("exc", "")),
    )
