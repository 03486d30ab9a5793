"""A Tail request checked and turned into the filter lines must pass; a stream entry as a LogLine."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.core.platform.logs.stream.entry import LEVELS, LogEntry
from trademesh.logs.v1 import logs_pb2 as pb

__all__ = ["MAX_BACKLOG", "MAX_FILTER_CHARS", "Query", "as_line", "query_of"]

MAX_BACKLOG = 1000
MAX_FILTER_CHARS = 256
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
# LogLevel's numbers -> Python's level names (LOG_LEVEL_DEBUG = 1 is LEVELS[0]).
_RANKS = {name: rank for rank, name in enumerate(LEVELS, start=1)}


@dataclass(frozen=True)
class Query:
    service: str = ""
    instance: str = ""
    min_rank: int = 0
    venue: str = ""
    trace_id: str = ""
    text: str = ""  # lower-cased
    backlog: int = 0
    follow: bool = False
    after_id: str = ""  # resume after this stream entry id (empty: the backlog instead)

    def matches(self, entry: LogEntry) -> bool:
        if self.service and entry.service != self.service:
            return False
        if self.instance and entry.instance != self.instance:
            return False
        if self.min_rank and _RANKS.get(entry.level, len(LEVELS)) < self.min_rank:
            return False
        if self.venue and entry.fields.get("venue") != self.venue:
            return False
        if self.trace_id and entry.fields.get("trace_id") != self.trace_id:
            return False
        return not self.text or self.text in entry.message.lower() or self.text in entry.exception.lower()


def query_of(request: pb.TailRequest) -> Query:
    """The request's filters; InvalidArgument naming every bad field."""
    bad: list[FieldViolation] = []
    if request.min_level not in pb.LogLevel.values():
        known = ", ".join(pb.LogLevel.keys())
        bad.append(FieldViolation("min_level", f"{request.min_level} is not a LogLevel ({known})"))
    if request.backlog > MAX_BACKLOG:
        bad.append(FieldViolation("backlog", f"{request.backlog} is over {MAX_BACKLOG} lines"))
    for name in ("service", "instance", "venue", "trace_id", "text"):
        value = getattr(request, name)
        if len(value) > MAX_FILTER_CHARS:
            bad.append(FieldViolation(name, f"{shown(value)} is over {MAX_FILTER_CHARS} characters"))
    if request.after_id and not _ENTRY_ID.fullmatch(request.after_id):
        why = f"{shown(request.after_id)} is not a line id (a LogLine.id: 1764200000000-0)"
        bad.append(FieldViolation("after_id", why))
    if bad:
        raise InvalidArgument(bad)
    return Query(
        service=request.service,
        instance=request.instance,
        min_rank=int(request.min_level),
        venue=request.venue,
        trace_id=request.trace_id,
        text=request.text.lower(),
        backlog=request.backlog,
        follow=request.follow,
        after_id=request.after_id,
    )


def as_line(entry: LogEntry) -> pb.LogLine:
    fields = dict(entry.fields)
    return pb.LogLine(
        id=entry.id,
        time_ns=entry.time_ns,
        level=_RANKS.get(entry.level, 0),  # type: ignore[arg-type]
        service=entry.service,
        instance=entry.instance,
        process=entry.process,
        logger=entry.logger,
        message=entry.message,
        fields=fields,
        trace_id=fields.get("trace_id", ""),
        venue=fields.get("venue", ""),
        exception=entry.exception,
    )
