"""The inspector's book subscription (trademesh.core.inspector.market.MarketBoard): this process's CPU per
1,000 book deltas the board takes from a venue's MarketData stream, against the same process
with the board off, in alternating windows of one run.

A stand-in venue (this script with `--serve`, a child process: its CPU is not counted) streams
the sim's three markets over gRPC: a snapshot of 20 levels a side each, then `--rates` book
deltas a second in all, one SubscribeResponse every 10 ms (as the sim batches), one level
changed a delta; every 10th delta moves a market's best bid (the top changes on ~10 % of the
sim's deltas). Modes, alternating per repeat:

- off:   no subscription (the baseline: this process idle on its event loop);
- read:  the stream read by a bare MarketData stub, its events dropped (grpc.aio's share);
- board: a real MarketBoard following the three markets through VenueLinks, as the inspector
         does: every delta applied to the market's TopBook, the quote and its history by
         event time (trademesh.core.domain.tops) kept.

Reported: CPU ms per second of each mode (time.process_time over the window), deltas per
second received, and (mode - off) CPU per 1,000 deltas; medians over the repeats.

    .venv/bin/python bench/inspector_board.py --rates 1000,5000 --duration 5 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from trademesh.core.inspector.market import MarketBoard
from trademesh.core.inspector.venues import TRADEFLOW, VenueLinks
from trademesh.core.tools.resolver import Instance, MeshResolver
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

VENUE = "sim"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
MIDS = {"BTC/USDT": 65000, "ETH/USDT": 3000, "SOL/USDT": 150}
TICK_S = 0.01
LEVELS = 20
MODES = ("off", "read", "board")


# ---- the stand-in venue (child process)


def _levels(mid: int, side: int) -> list[md.BookLevel]:
    return [md.BookLevel(price=f"{mid + side * (1 + i)}.00", size="1.5") for i in range(LEVELS)]


def _deltas(symbol: str) -> list[tuple[list[md.BookLevel], list[md.BookLevel]]]:
    """A cycle of 100 deltas (bids, asks): a size deeper in the book, or (every 10th) the best
    bid moved up a tick and back."""
    mid = MIDS[symbol]
    inside = f"{mid - 1}.50"  # above the best bid ({mid - 1}.00), below the best ask
    out: list[tuple[list[md.BookLevel], list[md.BookLevel]]] = []
    for i in range(100):
        if i % 20 == 0:
            out.append(([md.BookLevel(price=inside, size="0.2")], []))
        elif i % 20 == 10:
            out.append(([md.BookLevel(price=inside, size="0")], []))
        else:
            level = md.BookLevel(price=f"{mid + 1 + i % LEVELS}.00", size=f"{1 + i % 7}.25")
            out.append(([], [level]))
    return out


class StandIn:
    """MarketData.Subscribe alone, at a fixed rate of deltas."""

    def __init__(self, rate: int) -> None:
        self.per_tick = max(1, round(rate * TICK_S))
        self.cycles = {symbol: _deltas(symbol) for symbol in SYMBOLS}

    async def subscribe(
        self, request: md.SubscribeRequest, context: Any
    ) -> AsyncIterator[md.SubscribeResponse]:
        symbols = [s for s in request.symbols if s in self.cycles] or list(SYMBOLS)
        now = time.time_ns()
        first = md.SubscribeResponse()
        for symbol in symbols:
            event = first.events.add(venue=VENUE, symbol=symbol, ts_event_ns=now, ts_recv_ns=now)
            event.book_snapshot.sequence = 1
            event.book_snapshot.bids.extend(_levels(MIDS[symbol], -1))
            event.book_snapshot.asks.extend(_levels(MIDS[symbol], 1))
        yield first
        n, sequence, started = 0, 1, time.monotonic()
        while True:
            message = md.SubscribeResponse()
            now = time.time_ns()
            for _ in range(self.per_tick):
                symbol = symbols[n % len(symbols)]
                bids, asks = self.cycles[symbol][(n // len(symbols)) % 100]
                event = message.events.add(venue=VENUE, symbol=symbol, ts_event_ns=now, ts_recv_ns=now)
                sequence += 1
                event.book_delta.sequence = sequence
                event.book_delta.bids.extend(bids)
                event.book_delta.asks.extend(asks)
                n += 1
            yield message
            ticks = n // self.per_tick
            await asyncio.sleep(max(0.0, started + ticks * TICK_S - time.monotonic()))


async def serve(rate: int) -> None:
    server = grpc.aio.server()
    handler = grpc.unary_stream_rpc_method_handler(
        StandIn(rate).subscribe,
        request_deserializer=md.SubscribeRequest.FromString,
        response_serializer=md.SubscribeResponse.SerializeToString,
    )
    service = md.DESCRIPTOR.services_by_name["MarketData"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Subscribe": handler}),))
    port = server.add_insecure_port(f"{common.HOST}:0")
    await server.start()
    print(json.dumps({"event": "serving", "port": port}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


# ---- the measured side (this process)


def _stand_in(rate: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(rate)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, f"{common.HOST}:{json.loads(line)['port']}"


async def _read_only(address: str, seconds: float) -> int:
    deltas = 0
    async with grpc.aio.insecure_channel(address) as channel:
        call = md_grpc.MarketDataStub(channel).Subscribe(
            md.SubscribeRequest(symbols=list(SYMBOLS), channels=[md.CHANNEL_BOOK])
        )
        ends = time.monotonic() + seconds
        async for response in call:
            deltas += sum(1 for e in response.events if e.HasField("book_delta"))
            if time.monotonic() >= ends:
                break
        call.cancel()
    return deltas


async def _board(address: str, seconds: float) -> int:
    links = VenueLinks(MeshResolver(None, [Instance(VENUE, address, (TRADEFLOW,))]))
    count = 0

    async def on_trade(venue: str, symbol: str, price: Decimal) -> None:
        return None

    board = MarketBoard(links, on_trade)
    take = board.take

    async def counted(venue: str, event: md.MarketEvent) -> None:
        nonlocal count
        count += 1
        await take(venue, event)

    board.take = counted  # type: ignore[method-assign]
    stop = asyncio.Event()
    board.start(stop)
    for symbol in SYMBOLS:
        board.follow(VENUE, symbol)
    await asyncio.sleep(seconds)
    stop.set()
    await board.close()
    await links.close()
    assert all(board.quotes[(VENUE, s)].bid is not None for s in SYMBOLS), "the board held no book"
    return max(0, count - len(SYMBOLS))  # the snapshots


async def window(mode: str, address: str, seconds: float) -> dict[str, Any]:
    cpu, started = time.process_time(), time.monotonic()
    if mode == "off":
        await asyncio.sleep(seconds)
        deltas = 0
    elif mode == "read":
        deltas = await _read_only(address, seconds)
    else:
        deltas = await _board(address, seconds)
    used = time.process_time() - cpu
    elapsed = time.monotonic() - started
    return {"mode": mode, "cpu_ms_per_s": used / elapsed * 1000, "cpu_s": used, "deltas": deltas,
            "deltas_per_s": deltas / elapsed, "loadavg": os.getloadavg()[0]}  # fmt: skip


def _pairs(windows: list[dict[str, Any]], mode: str) -> Iterator[float]:
    """Per repeat: (mode's CPU - off's CPU, per second) per 1,000 deltas, ms."""
    offs = [w for w in windows if w["mode"] == "off"]
    for w, off in zip((w for w in windows if w["mode"] == mode), offs, strict=True):
        if w["deltas"]:
            yield (w["cpu_ms_per_s"] - off["cpu_ms_per_s"]) / w["deltas_per_s"] * 1000


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": common.machine(), "started": common.now_iso(),
                              "command": common.command_line(), "rates": []}  # fmt: skip
    rows = []
    for rate in args.rates:
        process, address = _stand_in(rate)
        try:
            await window("read", address, 1.0)  # warm: channel, imports
            windows = [await window(m, address, args.duration) for _ in range(args.repeats) for m in MODES]
        finally:
            process.terminate()
            process.wait(10)
        summary: dict[str, Any] = {"rate": rate, "windows": windows}
        for mode in MODES:
            mine = [w for w in windows if w["mode"] == mode]
            summary[mode] = {
                "cpu_ms_per_s": common.median([w["cpu_ms_per_s"] for w in mine]),
                "deltas_per_s": common.median([w["deltas_per_s"] for w in mine]),
            }
            if mode != "off":
                summary[mode]["ms_per_1000_deltas"] = common.median(list(_pairs(windows, mode)))
        result["rates"].append(summary)
        rows.append([
            rate, f"{summary['off']['cpu_ms_per_s']:.1f}",
            f"{summary['read']['cpu_ms_per_s']:.1f}", f"{summary['read']['ms_per_1000_deltas']:.1f}",
            f"{summary['board']['cpu_ms_per_s']:.1f}", f"{summary['board']['deltas_per_s']:,.0f}",
            f"{summary['board']['ms_per_1000_deltas']:.1f}",
        ])  # fmt: skip
    common.print_table(
        ["deltas/s", "off ms/s", "read ms/s", "read ms/1k", "board ms/s", "board got/s", "board ms/1k"], rows
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds a window")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    if args.serve:
        uvloop.run(serve(args.serve))
        return
    result = uvloop.run(measure(args))
    if not args.no_save:
        print(common.write_result("inspector_board", result))


if __name__ == "__main__":
    main()
