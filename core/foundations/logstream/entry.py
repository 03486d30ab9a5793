"""One log line as a stream entry, both ways: what the handler writes, what the gateway reads.

An entry's fields: `t` (Unix ns), `lvl` (DEBUG..CRITICAL), `svc` (the service's kind),
`inst` (the instance), `proc` (host:pid), `log` (the logger), `msg`, `f` (the structured
fields as a JSON object of strings) and `exc` (the traceback) when there is one. Short names:
the stream holds ~100,000 of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["LEVELS", "STREAM", "LogEntry", "decode_entry"]

# The one stream of every process's lines.
STREAM = "logs"
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
    values = {_text(k): _text(v) for k, v in raw.items()}
    try:
        fields = json.loads(values.get("f") or "{}")
    except ValueError:
        fields = {}
    try:
        time_ns = int(values.get("t", "0"))
    except ValueError:
        time_ns = 0
    return LogEntry(
        id=_text(entry_id),
        time_ns=time_ns,
        level=values.get("lvl", ""),
        service=values.get("svc", ""),
        instance=values.get("inst", ""),
        process=values.get("proc", ""),
        logger=values.get("log", ""),
        message=values.get("msg", ""),
        fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
        exception=values.get("exc", ""),
    )
