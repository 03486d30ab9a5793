"""How fast `trademesh data download` brings a venue's candles into PostgreSQL, against reading the
same pages from the venue alone in the same run: a measuring script, not a test.

    .venv/bin/python bench/history_download.py               # 30 days of 1m bars (43,200 rows)
    .venv/bin/python bench/history_download.py --days 90

Binance's live venue runs on its replay stand-in (the repository's capture; its made-up klines
before the session, Binance's paging: the venue asks 500 a call), as one process for the whole
run. Alternated rounds, each with the two in turn (the order rotating from round to round):
- download: the real CLI (`python -m trademesh.core.cli data download --venue-addr ...`, a process of its
  own: its start is in the figure, as a user meets it) into a scratch database, `bars` emptied
  first (its daily partitions kept: the first, untimed download made them);
- read only: the same GetCandles pages (1000 a call, by time), read here and thrown away: the
  floor of any download through the venue contract.
Rows/s are medians over the rounds; the load average is recorded before each timed step.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as bench_common  # bench/ (the script's own directory)
import asyncpg
import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import BUS_DIRECT, GATEWAY, TOKEN, database_url
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "fixtures" / "exchange-captures"
SYMBOL = "NKN/USDT"
SINCE_NS = 1_633_046_400 * 10**9 - 90 * 86_400 * 10**9  # 90 days before 2021-10-01: made-up klines
MINUTE_NS = 60 * 10**9
_TOKEN = "bench-history-download-token"


def _captures() -> list[Path]:
    files = sorted(p for p in CAPTURES.glob("BINANCE.*") if p.name.split(".")[-1].isdigit())
    if not files:
        raise SystemExit(f"no capture BINANCE.* in {CAPTURES}")
    return files


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))


async def _read_only(address: str, end_ns: int) -> int:
    """The range's candles through GetCandles, 1000 a call, as the download pages them."""
    rows, start = 0, SINCE_NS
    async with grpc.aio.insecure_channel(address) as channel:
        stub = md_grpc.MarketDataStub(channel)
        while start < end_ns:
            request = md.GetCandlesRequest(
                symbol=SYMBOL, timeframe=common.TIMEFRAME_1_MINUTE, start_ns=start, end_ns=end_ns, limit=1000
            )
            reply = await stub.GetCandles(request, metadata=(("authorization", f"Bearer {_TOKEN}"),))
            if not reply.candles:
                break
            rows += len(reply.candles)
            start = reply.candles[-1].open_time_ns + MINUTE_NS
    return rows


def _download(address: str, url: str, end_ns: int) -> int:
    command = [
        sys.executable,
        "-m",
        "trademesh.core.cli",
        "data",
        "download",
        "--venue-addr",
        address,
        SYMBOL,
    ]
    command += [
        "--timeframes",
        "1m",
        "--since",
        _iso(SINCE_NS),
        "--until",
        _iso(end_ns),
        "--database-url",
        url,
    ]
    done = subprocess.run(
        command, env={**os.environ, TOKEN: _TOKEN}, capture_output=True, text=True, timeout=900, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"the download failed ({done.returncode}): {done.stderr[-2000:]}")
    return 0


async def _timed(what: str, step: Any) -> dict[str, Any]:
    load = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    await step
    return {"what": what, "seconds": time.perf_counter() - started, "loadavg_1m": load}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    end_ns = SINCE_NS + args.days * 86_400 * 10**9
    rows = args.days * 1440
    server = database_url(args.database_url)
    with tempfile.TemporaryDirectory(prefix="download-bench-") as folder:
        log = (Path(folder) / "venue.log").open("w")
        replay = ["--replay", *map(str, _captures())]
        venue = start_service(
            ["venue", "binance", "--port", "0", "--metrics-port", "0", "--symbols", SYMBOL, *replay],
            {**os.environ, TOKEN: _TOKEN, GATEWAY: "", BUS_DIRECT: "0"},
            60.0,
            log,
        )
        address = f"127.0.0.1:{venue.port}"
        try:
            async with bench_common.scratch_database(server, "bench_download") as url:
                first = await _timed(
                    "first download (makes the partitions)",
                    asyncio.to_thread(_download, address, url, end_ns),
                )
                conn = await asyncpg.connect(url, timeout=30)
                try:
                    held = await conn.fetchval("SELECT count(*) FROM bars")
                    if held != rows:
                        raise SystemExit(f"the download held {held} bars, not {rows}")
                    steps = {
                        "download": lambda: asyncio.to_thread(_download, address, url, end_ns),
                        "read only": lambda: _read_only(address, end_ns),
                    }
                    rounds = []
                    for n in range(args.rounds):
                        names = list(steps)[n % 2 :] + list(steps)[: n % 2]
                        done = []
                        for name in names:
                            await conn.execute("TRUNCATE bars")
                            done.append(await _timed(name, steps[name]()))
                        rounds.append(done)
                finally:
                    await conn.close()
        finally:
            venue.terminate()
            log.close()
    return _report(args, rows, first, rounds)


def _report(args: argparse.Namespace, rows: int, first: dict[str, Any], rounds: list[Any]) -> dict[str, Any]:
    medians = {
        name: bench_common.median([s["seconds"] for done in rounds for s in done if s["what"] == name])
        for name in ("download", "read only")
    }
    rates = {name: rows / seconds for name, seconds in medians.items()}
    table = [[name, f"{medians[name]:.2f}", f"{rates[name]:,.0f}"] for name in medians]
    table.append([first["what"], f"{first['seconds']:.2f}", f"{rows / first['seconds']:,.0f}"])
    bench_common.print_table(["step", "median s", "rows/s"], table)
    print(f"download / read only: {rates['download'] / rates['read only']:.2f}x")
    return {
        "when": bench_common.now_iso(),
        "command": bench_common.command_line(),
        "machine": bench_common.machine(),
        "days": args.days,
        "rows": rows,
        "median_seconds": medians,
        "rows_per_s": rates,
        "ratio_download_to_read_only": rates["download"] / rates["read only"],
        "first_download": first,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30, help="days of 1m bars (default 30; at most 90)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--database-url", help="a database on the server to use (default: $DATABASE_URL)")
    args = parser.parse_args()
    if not 1 <= args.days <= 90:
        parser.error(f"--days {args.days}: from 1 to 90 (the stand-in's made-up klines before its session)")
    payload = asyncio.run(run(args))
    print(f"written: {bench_common.write_result('history_download', payload)}")


if __name__ == "__main__":
    main()
