"""The logs_tail tool: the mesh's recent log lines from LogHub (trademesh.logs.v1.Logs, served by
the gateway over the bus's `logs` stream; docs/logs.md). Bounded: at most MAX_LINES lines, and a
follow of at most MAX_FOLLOW_S seconds (an agent cannot hold a stream open).
"""

from __future__ import annotations

from typing import Any, Literal

from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.core.tools.render import enum_word, iso_time
from trademesh.core.tools.upstream import Upstream
from trademesh.logs.v1 import logs_pb2 as pb

__all__ = ["LOGS", "MAX_FOLLOW_S", "MAX_LINES", "LogTools", "line"]

LOGS = "trademesh.logs.v1.Logs"
MAX_LINES = 500
MAX_FOLLOW_S = 5.0
Json = dict[str, Any]
LevelName = Literal["debug", "info", "warning", "error", "critical"]


def line(item: pb.LogLine) -> Json:
    found: Json = {
        "id": item.id,
        "time": iso_time(item.time_ns),
        "time_ns": item.time_ns,
        "level": enum_word(pb.LogLevel.Name, item.level, "LOG_LEVEL_"),
        "service": item.service,
        "instance": item.instance,
        "logger": item.logger,
        "message": item.message,
    }
    if item.fields:
        found["fields"] = dict(sorted(item.fields.items()))
    if item.exception:
        found["exception"] = item.exception
    return found


class LogTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def logs_tail(
        self,
        service: str | None = None,
        instance: str | None = None,
        min_level: LevelName | None = None,
        venue: str | None = None,
        trace_id: str | None = None,
        text: str | None = None,
        lines: int = 50,
        follow_s: float = 0.0,
        after_id: str | None = None,
    ) -> Json:
        """The mesh's most recent log lines, oldest first, from every service (LogHub). Filters,
        all optional and combined: `service` (the kind: venue, ingest, recorder, bars, bridge,
        detector, advisor, inspector, ledger, gateway, ...), `instance` (a venue's name such as
        sim, else the service's), `min_level` (that level and above), `venue`, `trace_id`
        (every line of one traced request or order), `text` (a substring of the message,
        case-insensitive). `lines` 1 to 500 (default 50). `follow_s` 0 to 5: also wait that many
        seconds for new matching lines (default 0: only what is already logged). `after_id`
        (a line's `id`) resumes after that line: the lines logged since, oldest first, the first
        `lines` of them (`more` says there are others: resume after the last), and `trimmed` when
        the stream no longer holds that line (lines may be lost)."""
        bad: list[FieldViolation] = []
        if not 1 <= lines <= MAX_LINES:
            bad.append(FieldViolation("lines", f"{lines} is out of range: 1 to {MAX_LINES}"))
        if not 0 <= follow_s <= MAX_FOLLOW_S:
            bad.append(FieldViolation("follow_s", f"{follow_s:g} is out of range: 0 to {MAX_FOLLOW_S:g}"))
        if bad:
            raise InvalidArgument(bad)
        request = pb.TailRequest(
            service=service or "",
            instance=instance or "",
            min_level=pb.LogLevel.Value(f"LOG_LEVEL_{min_level.upper()}") if min_level else 0,  # type: ignore[arg-type]
            venue=venue or "",
            trace_id=trace_id or "",
            text=text or "",
            backlog=lines,
            follow=follow_s > 0,
            after_id=after_id or "",
        )
        wait_s = follow_s if follow_s > 0 else self._up.timeout_s
        answers = await self._up.collect(LOGS, None, "Tail", request, pb.TailResponse, wait_s)
        found = [line(item) for answer in answers for item in answer.lines]
        if after_id:  # resumed: the oldest `lines` since, and whether there are more
            trimmed = any(answer.trimmed for answer in answers)
            kept = found[:lines]
            return {"lines": kept, "count": len(kept), "more": len(found) > lines, "trimmed": trimmed}
        # A follow may bring more than asked: the newest `lines` of all.
        return {"lines": found[-lines:], "count": len(found[-lines:])}
