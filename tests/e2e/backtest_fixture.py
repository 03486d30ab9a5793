"""The recorded market the Backtest page's runs trade on (fixtures/studio-backtest/): a few
minutes of one symbol of the sim, recorded by the browser tests' mesh, restored into the mesh's
database beside what its own recorder writes (fixtures/studio-backtest/README.md says why and how
it was recorded).

Written from a database holding such a recording with

    .venv/bin/python -m tests.e2e.backtest_fixture <database url> <symbol> <from> <to>

(the window a run covers, ISO UTC): the symbol's trades, book events and bars of the sim up to
the window's end, from the recording's start (the replayed book starts from its first snapshot),
each table as `tables/<table>.csv.gz` (PostgreSQL's CSV, its header naming the columns), and the
window as `recording.json`.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

__all__ = ["FIXTURE", "Recording", "restore", "write"]

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "studio-backtest"
_RECORDING = "recording.json"
_TABLES = "tables"
_VENUE = "sim"
_NS = 1_000_000_000
# What a run reads of the recorder's tables, and the column that orders each in time.
_TIMES = {"trades": "ts_event_ns", "book_events": "ts_event_ns", "bars": "open_time_ns"}


@dataclass(frozen=True)
class Recording:
    """The window a run of the recording covers, [start_s, end_s), and its one symbol."""

    symbol: str
    start_s: int
    end_s: int


def _read(fixture: Path) -> tuple[Recording, dict[str, bytes]]:
    recording = Recording(**json.loads((fixture / _RECORDING).read_text()))
    return recording, {
        name: gzip.decompress((fixture / _TABLES / f"{name}.csv.gz").read_bytes()) for name in _TIMES
    }


async def restore(database_url: str, fixture: Path = FIXTURE) -> Recording:
    """The recording's rows added to the recorder's tables of `database_url` (migrated already)."""
    recording, tables = await asyncio.to_thread(_read, fixture)
    connection = await asyncpg.connect(database_url)
    try:
        for name, data in tables.items():
            columns = data.split(b"\n", 1)[0].decode().split(",")
            await connection.copy_to_table(
                name, source=io.BytesIO(data), columns=columns, format="csv", header=True
            )
    finally:
        await connection.close()
    return recording


async def _dump(database_url: str, recording: Recording) -> dict[str, bytes]:
    connection = await asyncpg.connect(database_url)
    try:
        dumped = {}
        for name, time_column in _TIMES.items():
            buffer = io.BytesIO()
            query = (
                f"SELECT * FROM {name} WHERE venue = $1 AND symbol = $2 AND {time_column} < $3"
                f" ORDER BY {time_column}"
            )
            args = (_VENUE, recording.symbol, recording.end_s * _NS)
            await connection.copy_from_query(query, *args, output=buffer, format="csv", header=True)
            dumped[name] = buffer.getvalue()
        return dumped
    finally:
        await connection.close()


def write(database_url: str, recording: Recording, fixture: Path = FIXTURE) -> None:
    """The recording of `database_url` up to the window's end, written as the fixture."""
    dumped = asyncio.run(_dump(database_url, recording))
    (fixture / _TABLES).mkdir(parents=True, exist_ok=True)
    for name, data in dumped.items():  # mtime 0: the same rows give the same file
        (fixture / _TABLES / f"{name}.csv.gz").write_bytes(gzip.compress(data, mtime=0))
    (fixture / _RECORDING).write_text(json.dumps(asdict(recording), indent=1) + "\n")


def _seconds(text: str) -> int:
    """An ISO date-time as seconds since the epoch, UTC unless it says."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: python -m tests.e2e.backtest_fixture <database url> <symbol> <from> <to>")
    url, symbol, start, end = sys.argv[1:]
    write(url, Recording(symbol, _seconds(start), _seconds(end)))
    print(f"backtest fixture: {symbol} [{start}, {end}) written to {FIXTURE}")
