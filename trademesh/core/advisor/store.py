"""What the advisor's API reads from the recorder's tables (trademesh/core/recorder/migrations 003, 004):
recorded signals (Decide by id), decisions (ListDecisions, GetDecision) and their telemetry.

Queries go through trademesh.core.tools.recorded (one pool, a deadline on each, errors as
trademesh.core.platform.errors: Unavailable when PostgreSQL is away, FailedPrecondition when the
recorder has not made the table yet). Lists are newest first, paged by a token holding the last
row's (time, id).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["DecisionFilter", "DecisionStore"]

_MAX_NS = 2**63 - 1
_DIRECTIONS = {"long": sig.DIRECTION_LONG, "short": sig.DIRECTION_SHORT, "flat": sig.DIRECTION_FLAT}

_SIGNAL = """
SELECT signal_id, venue, symbol, direction, conviction, score, threshold, strategy_id, patch_version,
       rules, ts_event_ns, ts_signal_ns
FROM signals WHERE signal_id = $1 LIMIT 1
"""
_DECISION = "SELECT decision FROM decisions WHERE decision_id = $1 LIMIT 1"
_EVENTS = """
SELECT event_id, kind, decision_id, signal_id, stage, venue, symbol, strategy_id, ts_ns, value,
       duration_ns, model, detail, fields
FROM advisor_telemetry WHERE decision_id = $1 ORDER BY ts_ns, event_id
"""
_LIST = """
SELECT decision, ts_decision_ns, decision_id FROM decisions
WHERE ($1 = '' OR venue = $1) AND ($2 = '' OR symbol = $2) AND ($3 = '' OR strategy_id = $3)
  AND ($4 = '' OR outcome = $4) AND ts_decision_ns >= $5 AND ts_decision_ns < $6
  AND ($7 = 0 OR ts_decision_ns < $7 OR (ts_decision_ns = $7 AND decision_id < $8))
ORDER BY ts_decision_ns DESC, decision_id DESC
LIMIT $9
"""


@dataclass(frozen=True)
class DecisionFilter:
    venue: str = ""
    symbol: str = ""
    strategy_id: str = ""
    outcome: str = ""  # intent, blocked, or "" for both
    since_ns: int = 0
    until_ns: int = 0  # 0: no upper bound


def _token(ts_ns: int, decision_id: str) -> str:
    return base64.urlsafe_b64encode(f"{ts_ns}:{decision_id}".encode()).decode()


def _cursor(token: str) -> tuple[int, str]:
    if not token:
        return 0, ""
    try:
        ts, _, decision_id = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(ts), decision_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument.field("page_token", f"{shown(token)} is not a token this API gave") from None


def _decimal(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def _signal(row: asyncpg.Record) -> sig.Signal:
    rules = row["rules"]
    rules = json.loads(rules) if isinstance(rules, str) else rules
    return sig.Signal(
        signal_id=row["signal_id"],
        venue=row["venue"],
        symbol=row["symbol"],
        direction=_DIRECTIONS.get(row["direction"], sig.DIRECTION_UNSPECIFIED),
        conviction=_decimal(row["conviction"]),
        score=_decimal(row["score"]),
        threshold=_decimal(row["threshold"]),
        strategy_id=row["strategy_id"],
        patch_version=row["patch_version"],
        rules=[
            sig.RuleAttribution(name=r["name"], weight=r["weight"], value=r["value"], fired=r["fired"])
            for r in rules
        ],
        ts_event_ns=row["ts_event_ns"],
        ts_signal_ns=row["ts_signal_ns"],
    )


def _enum(names: Any, prefix: str, word: str | None) -> Any:
    if not word:
        return 0
    try:
        return names.Value(prefix + word.upper())
    except ValueError:
        return 0


def _event(row: asyncpg.Record) -> am.TelemetryEvent:
    fields = row["fields"]
    fields = json.loads(fields) if isinstance(fields, str) else fields
    return am.TelemetryEvent(
        event_id=row["event_id"],
        kind=_enum(am.TelemetryEventKind, "TELEMETRY_EVENT_KIND_", row["kind"]),
        decision_id=row["decision_id"],
        signal_id=row["signal_id"],
        stage=_enum(am.Stage, "STAGE_", row["stage"]),
        venue=row["venue"],
        symbol=row["symbol"],
        strategy_id=row["strategy_id"],
        ts_ns=row["ts_ns"],
        value=row["value"],
        duration_ns=row["duration_ns"],
        model=row["model"],
        detail=row["detail"],
        fields={str(k): str(v) for k, v in fields.items()},
    )


class DecisionStore:
    def __init__(self, database: RecorderDatabase) -> None:
        self.db = database

    async def signal(self, signal_id: str) -> sig.Signal | None:
        rows = await self.db.fetch(_SIGNAL, signal_id, table="signals")
        return _signal(rows[0]) if rows else None

    async def decision(self, decision_id: str) -> tuple[am.Decision, list[am.TelemetryEvent]] | None:
        rows = await self.db.fetch(_DECISION, decision_id, table="decisions")
        if not rows:
            return None
        events = await self.db.fetch(_EVENTS, decision_id, table="advisor_telemetry")
        return am.Decision.FromString(rows[0]["decision"]), [_event(r) for r in events]

    async def decisions(self, where: DecisionFilter, size: int, token: str) -> tuple[list[am.Decision], str]:
        cursor_ts, cursor_id = _cursor(token)
        rows = await self.db.fetch(
            _LIST, where.venue, where.symbol, where.strategy_id, where.outcome, where.since_ns,
            where.until_ns or _MAX_NS, cursor_ts, cursor_id, size + 1, table="decisions",
        )  # fmt: skip
        page = rows[:size]
        following = _token(page[-1]["ts_decision_ns"], page[-1]["decision_id"]) if len(rows) > size else ""
        return [am.Decision.FromString(r["decision"]) for r in page], following
