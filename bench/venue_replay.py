"""How fast a live venue turns exchange frames into trademesh events, measured on recorded sessions.

For each session (the recorded Kraken and Binance USD-M captures by default), two modes,
interleaved over repeats:

- ccxt:  the baseline. The venue's own ccxt.pro client, in this process, against the same
         replay stand-in, with one watch loop per stream and nothing else: what parsing the
         frames costs ccxt itself on this machine.
- venue: `trademesh venue <name> --replay <files>` as its own process, and one gRPC client
         subscribed to every stream of every instrument: ccxt, our normalizers (exactly-once
         trades, book deltas), the feed, fan-out and gRPC, end to end.

Each run replays the whole session at full speed and reports market frames per second
(frames in the session / time from the start of playback to the last frame handled; for
the venue, from the first event after the subscribe-time snapshots to the last event) and, for the
venue, events per second received by the client, and the CPU time per frame of the
process doing the work (this process for ccxt, the venue process for the venue; both
include the stand-in serving the frames). The venue's rate is bounded by the Python gRPC
client reading one message per frame; its CPU per frame is the cost of the connector. The
table shows medians.

    .venv/bin/python bench/venue_replay.py --repeats 5

Only talks to 127.0.0.1; both modes end when the session has played out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import uvloop

from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.venues.live.exchange import Hooks, create_exchange
from trademesh.venues.registry import VENUES
from trademesh.venues.replay.loader import load_adapter
from trademesh.venues.replay.server import ReplayOptions, ReplayServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exchange-captures"
SESSIONS = {"kraken": "KRAKEN", "binanceusdm": "BINANCE_FUTURES"}
ALL_CHANNELS = [md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_CANDLES, md.CHANNEL_TICKERS]
QUIET_S = 2.0


def session_files(name: str) -> list[Path]:
    return sorted(p for p in CAPTURES.glob(f"{SESSIONS[name]}.*") if p.name.split(".")[-1].isdigit())


def spec_of(name: str) -> Any:
    import importlib

    return importlib.import_module(VENUES[name].module).SPEC


async def run_ccxt(name: str, files: list[Path]) -> dict[str, float]:
    """The baseline: ccxt alone against the stand-in, counting the frames it handles."""
    spec = spec_of(name)
    adapter = load_adapter(spec.standin, files)
    server = ReplayServer(adapter, ReplayOptions(tuple(files)))
    url = await server.start()
    handled: list[float] = []
    exchange = create_exchange(
        spec, Hooks(lambda: handled.append(time.perf_counter()), lambda exc: None), False, url
    )
    await exchange.load_markets()
    by_native = {spec.native_symbol(m): m["symbol"] for m in exchange.markets.values()}
    symbols = [by_native[n] for n in adapter.native_symbols() if n in by_native]
    ticker = exchange.watch_bids_asks if spec.ticker_method == "watch_bids_asks" else None

    async def forever(watch: Any, *args: Any) -> None:
        while True:
            try:
                await watch(*args)
            except Exception:
                await asyncio.sleep(0.1)

    tasks = []
    for symbol in symbols:
        tasks += [
            forever(exchange.watch_trades, symbol),
            forever(exchange.watch_order_book, symbol),
            forever(exchange.watch_ohlcv, symbol, "1m"),
            forever(ticker, [symbol]) if ticker else forever(exchange.watch_ticker, symbol),
        ]
    running = [asyncio.create_task(t) for t in tasks]
    cpu_start = time.process_time()
    server.release()
    while not server.exhausted:  # noqa: ASYNC110 (the stand-in has no event for it)
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    cpu_s = time.process_time() - cpu_start
    for task in running:
        task.cancel()
    await exchange.close()
    await server.stop()
    frames = server.frames_sent
    seconds = handled[-1] - server.started_at
    return {
        "frames": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds,
        "events_per_s": float("nan"),
        "cpu_us_per_frame": cpu_s / frames * 1e6,
    }


async def run_venue(name: str, files: list[Path], work: Path) -> dict[str, float]:
    """The venue end to end: a process, and one client subscribed to everything."""
    log = (work / f"{name}.log").open("w")
    service = start_service(
        ["venue", name, "--port", "0", "--metrics-port", "-1", "--replay", *map(str, files)],
        env={},
        stderr=log,
        timeout_s=60,
    )
    try:
        async with grpc.aio.insecure_channel(service.address, options=common.CHANNEL_OPTIONS) as channel:
            stub = md_grpc.MarketDataStub(channel)
            listed = await stub.ListInstruments(md.ListInstrumentsRequest(), timeout=10)
            symbols = [i.symbol for i in listed.instruments]
            cpu_start = process_cpu_s(service.process.pid)
            call = stub.Subscribe(md.SubscribeRequest(symbols=symbols, channels=ALL_CHANNELS))
            events, first, last = 0, 0.0, 0.0
            while True:
                try:
                    message = await asyncio.wait_for(call.read(), QUIET_S)
                except TimeoutError:
                    break
                if not isinstance(message, md.SubscribeResponse):  # grpc.aio.EOF: the stream ended
                    break
                now = time.perf_counter()
                if not first and any(e.WhichOneof("payload") != "book_snapshot" for e in message.events):
                    first = now  # the first replayed frame (the snapshots came at subscribe)
                last = now
                events += len(message.events)
            call.cancel()
            cpu_s = process_cpu_s(service.process.pid) - cpu_start
    finally:
        service.terminate()
        log.close()
    frames = sum(1 for _ in _market_frames(name, files))
    seconds = last - first
    return {
        "frames": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds,
        "events_per_s": events / seconds,
        "cpu_us_per_frame": cpu_s / frames * 1e6,
    }


def _market_frames(name: str, files: list[Path]) -> list[Any]:
    adapter = load_adapter(spec_of(name).standin, files)
    return [f for f in adapter.capture.received if adapter.topic(f) is not None]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venues", default=",".join(SESSIONS), help="sessions to replay")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = common.workdir()
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for name in args.venues.split(","):
            files = session_files(name)
            for mode in ("ccxt", "venue"):
                result = await (run_ccxt(name, files) if mode == "ccxt" else run_venue(name, files, work))
                runs.append({"repeat": repeat, "venue": name, "mode": mode, **result})
                print(
                    f"repeat {repeat} {name:<12} {mode:<6} {result['frames_per_s']:>9,.0f} frames/s",
                    flush=True,
                )
    rows = []
    for name in args.venues.split(","):
        base = common.median([r["frames_per_s"] for r in runs if r["venue"] == name and r["mode"] == "ccxt"])
        base_cpu = common.median(
            [r["cpu_us_per_frame"] for r in runs if r["venue"] == name and r["mode"] == "ccxt"]
        )
        for mode in ("ccxt", "venue"):
            mine = [r for r in runs if r["venue"] == name and r["mode"] == mode]
            rate = common.median([r["frames_per_s"] for r in mine])
            rows.append(
                [
                    name,
                    mode,
                    mine[0]["frames"],
                    rate,
                    common.median([r["events_per_s"] for r in mine]),
                    rate / base,
                    common.median([r["cpu_us_per_frame"] for r in mine]),
                    common.median([r["cpu_us_per_frame"] for r in mine]) / base_cpu,
                ]
            )
    common.print_table(
        ["venue", "mode", "frames", "frames/s", "events/s", "x ccxt", "cpu µs/frame", "cpu x ccxt"], rows
    )
    common.write_result(
        "venue_replay",
        {
            "command": common.command_line(),
            "machine": common.machine(),
            "at": common.now_iso(),
            "runs": runs,
            "table": rows,
        },
    )


if __name__ == "__main__":
    uvloop.run(main())
