"""The chain-parity sessions shipped in the repository (fixtures/chain-parity*/): live sessions
of tests/integration/chain_mesh.py, each written from a kept recording and restored, with no mesh
running, into a scratch database for test_chain_parity.py.

A recording is kept with `TRADEMESH_CHAIN_LIVE=1 TRADEMESH_CHAIN_KEEP=<dir>` (chain_mesh's
docstring) and written as the fixture with

    .venv/bin/python -m tests.integration.chain_fixture <kept dir> [<fixture dir>]

What is written: `session.json` (the session's times, the live detector's signals, the live
advisor's decisions and the inspector's journal, the venue's candles, the client order ids
placed by hand), the detector's log, the sim's and the advisor's configs, and each recorder
table they read as `tables/<table>.csv.gz` (PostgreSQL's CSV, its header naming the columns).
The session's database holds that session alone, so each table is taken whole (2 MB in all),
but the market of the chain's symbols after the chain's backtest ends, which no test reads.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import pickle
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from tests.integration.chain_mesh import SYMBOLS, Bar, Chain, S
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.recorder.migrate import migrate
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["FIXTURE", "TABLES", "restore", "write"]

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "chain-parity"
_SESSION = "session.json"
_LOG = "detector.log"
_SIM = "sim.toml"
_ADVISOR = "advisor.toml"
_TABLES = "tables"
_README = "README.md"  # written by hand: how to record another


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _bars(candles: dict[str, list[Bar]]) -> dict[str, list[list[Any]]]:
    return {s: [[b[0], *(str(x) for x in b[1:6]), b[6]] for b in bars] for s, bars in candles.items()}


def _candles(raw: dict[str, list[list[Any]]]) -> dict[str, list[Bar]]:
    return {
        s: [
            (b[0], Decimal(b[1]), Decimal(b[2]), Decimal(b[3]), Decimal(b[4]), Decimal(b[5]), b[6])
            for b in bars
        ]
        for s, bars in raw.items()
    }


def _session(chain: Chain) -> dict[str, Any]:
    return {
        "signals": [_b64(s.SerializeToString()) for s in chain.signals],
        "decisions": [_b64(d.SerializeToString()) for d in chain.decisions],
        "journal": [_b64(entry) for entry in chain.journal],
        "warmed_ns": chain.warmed_ns,
        "started_ns": chain.started_ns,
        "cutoff_ns": chain.cutoff_ns,
        "warmed_live": sorted(chain.warmed_live),
        "candles": _bars(chain.candles),
        "placed": chain.placed,
        "orders_start_ns": chain.orders_start_ns,
        "orders_end_ns": chain.orders_end_ns,
    }


# What the tests and the backtest read of the recorder's tables (the rest, telemetry, tickers,
# the services' own tables, is left out).
TABLES = ("bars", "book_events", "decisions", "executions", "inspector_journal", "trades")
# Of these, the market's rows of the chain's symbols after the chain's backtest ends (a second
# after the cutoff) are read by no test (the hand-placed orders trade another symbol): left out.
_MARKET = ("book_events", "trades")
_AFTER_THE_CHAIN = " WHERE NOT (symbol = ANY($1::text[]) AND ts_event_ns >= $2)"


async def _dump(chain: Chain) -> dict[str, bytes]:
    """Each table with rows as PostgreSQL's CSV, its header naming the columns."""
    connection = await asyncpg.connect(chain.database)
    try:
        dumped = {}
        for name in TABLES:
            buffer = io.BytesIO()
            query, args = f'SELECT * FROM "{name}"', []
            if name in _MARKET:
                query, args = query + _AFTER_THE_CHAIN, [list(SYMBOLS), chain.cutoff_ns + S]
            await connection.copy_from_query(query, *args, output=buffer, format="csv", header=True)
            dumped[name] = buffer.getvalue()
        return dumped
    finally:
        await connection.close()


def write(kept: Path, fixture: Path = FIXTURE) -> list[str]:
    """The kept recording in `kept` written as the fixture in `fixture`; the tables written."""
    chain: Chain = pickle.loads((kept / "chain.pickle").read_bytes())
    if fixture.exists():  # the recording's files are replaced; the folder's README stays
        for old in fixture.iterdir():
            if old.name != _README:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
    (fixture / _TABLES).mkdir(parents=True)
    (fixture / _SESSION).write_text(json.dumps(_session(chain), indent=1) + "\n")
    (fixture / _LOG).write_text(chain.log)
    shutil.copy(chain.sim_config, fixture / _SIM)
    shutil.copy(chain.advisor_config, fixture / _ADVISOR)
    dumped = asyncio.run(_dump(chain))
    for name, data in dumped.items():  # mtime 0: the same rows give the same file
        (fixture / _TABLES / f"{name}.csv.gz").write_bytes(gzip.compress(data, mtime=0))
    return sorted(dumped)


def _read(fixture: Path) -> tuple[dict[str, Any], str, dict[str, bytes]]:
    tables = {
        p.name.removesuffix(".csv.gz"): gzip.decompress(p.read_bytes())
        for p in (fixture / _TABLES).glob("*.csv.gz")
    }
    return json.loads((fixture / _SESSION).read_text()), (fixture / _LOG).read_text(), tables


async def _load(database: str, tables: dict[str, bytes]) -> None:
    connection = await asyncpg.connect(database)
    try:
        await migrate(connection)
        for name, data in sorted(tables.items()):
            columns = data.split(b"\n", 1)[0].decode().split(",")
            await connection.copy_to_table(
                name, source=io.BytesIO(data), columns=columns, format="csv", header=True
            )
    finally:
        await connection.close()


async def restore(database: str, fixture: Path = FIXTURE) -> Chain:
    """The shipped session, its tables loaded into `database` (new and empty)."""
    raw, log, tables = await asyncio.to_thread(_read, fixture)
    await _load(database, tables)
    return Chain(
        database=database,
        sim_config=fixture / _SIM,
        advisor_config=fixture / _ADVISOR,
        signals=[sig.Signal.FromString(base64.b64decode(s)) for s in raw["signals"]],
        decisions=[am.Decision.FromString(base64.b64decode(d)) for d in raw["decisions"]],
        warmed_ns=raw["warmed_ns"],
        started_ns=raw["started_ns"],
        cutoff_ns=raw["cutoff_ns"],
        warmed_live=set(raw["warmed_live"]),
        log=log,
        candles=_candles(raw["candles"]),
        placed=raw["placed"],
        orders_start_ns=raw["orders_start_ns"],
        orders_end_ns=raw["orders_end_ns"],
        journal=[base64.b64decode(entry) for entry in raw["journal"]],
        source=fixture.name,
    )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m tests.integration.chain_fixture <kept dir> [<fixture dir>]")
    written = write(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else FIXTURE)
    print(f"chain fixture: {len(written)} tables: {', '.join(written)}")
