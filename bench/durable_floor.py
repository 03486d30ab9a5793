"""The durable path's floors, measured in bus_pipeline.py's own run (issue 43): what its figures
are set beside, as ratios.

- COPY of the same rows alone: the entries bus_pipeline captured from the bus in its window, made
  rows and COPY text by the recorder's own code (trademesh.core.recorder.rows,
  trademesh.core.recorder.copy_text) before any timing, COPied straight into the recorder's own
  tables (their keys, partitions and defaults), about --copy-rows rows a transaction.
  PostgreSQL's CPU per row and rows/s in COPY. Each pass over the rows moves their event times on
  by the capture's span, so no key repeats.
- The latency floor: one venue step's events (latency rate x tick interval) as the entries that
  carried them, XADDed (one pipelined round trip), read by XREADGROUP, made rows, COPied in one
  transaction and committed, then XACKed: the time from before the XADD to the commit, p50/p99
  over --floor-steps steps. The path's work alone, without its waits (the venue's step, the
  recorder's linger, a busy machine's queueing).

Both write only to the bench's own Redis db and scratch database (the tables are truncated after).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.recorder.copy_text import COPY_COLUMNS, copy_text
from trademesh.core.recorder.rows import rows_of
from trademesh.core.recorder.schema import BOOK, TICKERS, TRADES, Table

__all__ = ["copy_same_rows", "latency_floor"]

_MARKET = (TRADES, BOOK, TICKERS)
_GROUP = "floor"
_CALL_TIMEOUT_S = 10.0
_ROWS_PER_S = 250_000  # more than a COPY of the recorder's rows has done here: rows made ready a second

Captured = list[tuple[str, bytes]]  # (stream, entry's data) as bus_pipeline captured them
# Starts a CPU meter of the database's processes and this one; its read() -> {name: % of a core}.
Meter = Callable[[], Awaitable[Any]]


def _market_rows(captured: Captured) -> list[tuple[Table, list[tuple[Any, ...]]]]:
    """The captured market entries' rows, per market table, as the recorder makes them."""
    entries = [(f"{n}-0", decode({FIELD: data})) for n, (_, data) in enumerate(captured)]
    rows = rows_of([e for e in entries if e[1].WhichOneof("body") == "market"])
    return [(table, list(r)) for table, r in rows.tables() if table in _MARKET]


def _span(tables: list[tuple[Table, list[tuple[Any, ...]]]]) -> int:
    times = [row[2] for _, rows in tables for row in rows]
    return (max(times) - min(times) + 1) if times else 1


def _shifted(rows: list[tuple[Any, ...]], by: int) -> list[tuple[Any, ...]]:
    return [(*row[:2], row[2] + by, *row[3:]) for row in rows]


def _thinned(captured: Captured, events: int) -> Captured:
    """Every n-th entry, so the rest hold about `events` events (all of them when fewer)."""
    total = sum(len(decode({FIELD: data}).market.events) for _, data in captured)
    return captured[:: max(1, total // max(1, events))]


def _batches(captured: Captured, rows_per_copy: int, passes: int) -> list[list[tuple[str, bytes]]]:
    """COPY texts, (table, text) per transaction, of about rows_per_copy rows each."""
    tables = _market_rows(captured)
    span = _span(tables)
    out: list[list[tuple[str, bytes]]] = []
    for n in range(passes):
        for table, rows in tables:
            for start in range(0, len(rows), rows_per_copy):
                part = _shifted(rows[start : start + rows_per_copy], n * span)
                text = copy_text(table, part)
                if text is not None:
                    out.append([(table.name, text)])
    return out


async def copy_same_rows(
    db_url: str, captured: Captured, rows_per_copy: int, seconds: float, meter: Meter
) -> dict[str, Any]:
    """COPY text of the captured rows into the recorder's tables, one transaction a COPY, for
    about `seconds` inside COPY. `meter()` starts the database's CPU meter (its read() -> shares)."""
    wanted = round(_ROWS_PER_S * seconds)  # enough for `seconds` at the fastest seen
    captured = _thinned(captured, wanted)
    rows_once = sum(len(rows) for _, rows in _market_rows(captured))
    if not rows_once:
        return {"error": "no market rows captured"}
    passes = max(1, math.ceil(wanted / rows_once))
    batches = await asyncio.to_thread(_batches, captured, rows_per_copy, passes)
    conn = await asyncpg.connect(db_url, timeout=_CALL_TIMEOUT_S, command_timeout=120)
    try:
        cpu = await meter()
        began = time.monotonic()
        in_copy, rows, copies = 0.0, 0, 0
        for batch in batches:
            start = time.perf_counter()
            async with conn.transaction():
                for table, text in batch:
                    await conn.copy_to_table(
                        table, source=memoryview(text), columns=COPY_COLUMNS[table], format="text"
                    )
            in_copy += time.perf_counter() - start
            rows += sum(text.count(b"\n") for _, text in batch)
            copies += 1
            if in_copy >= seconds:
                break
        shares, wall_s = cpu.read(), time.monotonic() - began
        await conn.execute(f"TRUNCATE {', '.join(t.name for t in _MARKET)}")
    finally:
        await conn.close()
    per_row = 1e6 * wall_s / rows / 100 if rows else math.nan
    return {
        "rows": rows,
        "copies": copies,
        "rows_per_copy": rows / copies if copies else math.nan,
        "rows_per_s": rows / in_copy if in_copy else math.nan,
        "cpu_percent_of_one_core": shares,
        "postgres_us_per_row": shares["postgres"] * per_row,
        "bench_us_per_row": shares["bench"] * per_row,
    }


def _step_entries(captured: Captured, events_per_step: int) -> list[list[tuple[str, bytes]]]:
    """The captured market entries in runs of about one venue step's events."""
    steps: list[list[tuple[str, bytes]]] = []
    current: list[tuple[str, bytes]] = []
    events = 0
    for stream, data in captured:
        envelope = decode({FIELD: data})
        if envelope.WhichOneof("body") != "market":
            continue
        current.append((stream, data))
        events += len(envelope.market.events)
        if events >= events_per_step:
            steps.append(current)
            current, events = [], 0
    return steps


async def latency_floor(
    redis: Any, db_url: str, captured: Captured, events_per_step: int, steps: int
) -> dict[str, Any]:
    """XADD a step's entries -> XREADGROUP -> rows -> COPY, COMMIT -> XACK; ms to the commit."""
    runs = _step_entries(captured, events_per_step)
    if not runs:
        return {"error": "no market entries captured"}
    span = _span(_market_rows(captured))
    conn = await asyncpg.connect(db_url, timeout=_CALL_TIMEOUT_S, command_timeout=60)
    streams = sorted({f"floor.{stream}" for run in runs for stream, _ in run})
    try:
        for stream in streams:
            await redis.xgroup_create(stream, _GROUP, id="$", mkstream=True)
        latencies = []
        for n in range(steps):
            run = runs[n % len(runs)]
            start = time.perf_counter()
            await _one_step(redis, conn, run, (n // len(runs) + 1) * span)
            latencies.append((time.perf_counter() - start) * 1000)
        await conn.execute(f"TRUNCATE {', '.join(t.name for t in _MARKET)}")
    finally:
        await conn.close()
        if streams:
            await redis.delete(*streams)
    return {
        "steps": steps,
        "events_per_step": events_per_step,
        "entries_per_step": sum(len(r) for r in runs) / len(runs),
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
    }


async def _one_step(redis: Any, conn: Any, run: list[tuple[str, bytes]], shift: int) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for stream, data in run:
            pipe.xadd(f"floor.{stream}", {FIELD: data})
        await pipe.execute()
    wanted = {f"floor.{stream}": ">" for stream, _ in run}
    answer = await redis.xreadgroup(_GROUP, "floor", wanted, count=1000)
    entries = [(eid, decode(fields)) for _, got in answer for eid, fields in got]
    rows = rows_of([(str(eid), envelope) for eid, envelope in entries])
    async with conn.transaction():
        for table, table_rows in rows.tables():
            text = copy_text(table, _shifted(table_rows, shift)) if table in _MARKET else None
            if text is not None:
                columns = COPY_COLUMNS[table.name]
                await conn.copy_to_table(table.name, source=memoryview(text), columns=columns, format="text")
    async with redis.pipeline(transaction=False) as pipe:
        for stream, got in answer:
            pipe.xack(stream, _GROUP, *[eid for eid, _ in got])
        await pipe.execute()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]
