"""What paper trading costs a venue, and how fast a paper order fills, on recorded sessions.

For each session (Binance USD-M's recorded capture and OKX swaps' by default), two modes of the
same venue process, alternated over repeats, the same capture each time:

- live:  `trademesh venue <name> --replay <files>`: the venue alone (ccxt, our normalizers, the
         feed, gRPC).
- paper: `trademesh venue <name> --paper --replay <files>`: the same, and every book change and
         trade also mirrored into the sim's matching engine (trademesh/venues/paper, docs/paper.md).

Each run: one client subscribed to every stream of every instrument (which releases the replay,
at full speed) reads until the stream is quiet; the venue process's CPU (user + system, /proc)
from the subscription to the last event received, over the market events it published (Admin GetStatus's
events_total of every stream): **CPU per market event**. Then, paper only, with the replay played
out (the book still, as recorded last): **fill latency**, `--orders` marketable IOC orders of the
instrument's smallest size at the best ask (buys) or bid (sells), alternating, one at a time,
each from the PlaceOrder call to its fill on the client's StreamExecutions (and PlaceOrder's own
answer). The paper config's latency_ms is 0 here: the figure is the machinery's; a paper venue
adds its configured latency (25 ms by default) to every order on top. Medians.

    .venv/bin/python bench/paper_venue.py --repeats 5

Only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import uvloop

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.common.v1 import common_pb2 as pb_common
from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exchange-captures"
SESSIONS = {"kraken": "KRAKEN", "binanceusdm": "BINANCE_FUTURES", "okx-swap": "OKX_SWAP"}
ALL_CHANNELS = [md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_CANDLES, md.CHANNEL_TICKERS]
QUIET_S = 2.0
MESH_TOKEN, CREDENTIAL = "bench-paper-mesh-token", "bench-paper-trade-token"
# The trading credential is good for every RPC (the inspector's): the bench calls with it alone.
AUTH = (("authorization", f"Bearer {CREDENTIAL}"),)


def session_files(name: str) -> list[Path]:
    return sorted(p for p in CAPTURES.glob(f"{SESSIONS[name]}.*") if p.name.split(".")[-1].isdigit())


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _play(channel: grpc.aio.Channel, symbols: list[str], pid: int) -> tuple[float, int, dict[str, Any]]:
    """Subscribe to everything, read until quiet: (CPU seconds, events published, last books)."""
    stub = md_grpc.MarketDataStub(channel)
    cpu_start = process_cpu_s(pid)
    call = stub.Subscribe(md.SubscribeRequest(symbols=symbols, channels=ALL_CHANNELS), metadata=AUTH)
    books: dict[str, Any] = {}
    cpu_end = cpu_start
    while True:
        try:
            message = await asyncio.wait_for(call.read(), QUIET_S)
        except TimeoutError:
            break
        if not isinstance(message, md.SubscribeResponse):
            break
        # Up to the last event: the quiet that ends the reading is not the events' cost.
        cpu_end = process_cpu_s(pid)
        for event in message.events:
            if event.WhichOneof("payload") in ("book_snapshot", "book_delta"):
                _follow(books.setdefault(event.symbol, ({}, {})), event)
    call.cancel()
    cpu_s = cpu_end - cpu_start
    status = await admin_grpc.AdminStub(channel).GetStatus(
        admin.GetStatusRequest(), metadata=AUTH, timeout=10
    )
    return cpu_s, sum(s.events_total for s in status.streams), books


def _follow(book: tuple[dict[Decimal, str], dict[Decimal, str]], event: md.MarketEvent) -> None:
    snapshot = event.WhichOneof("payload") == "book_snapshot"
    change = event.book_snapshot if snapshot else event.book_delta
    for side, levels in zip(book, (change.bids, change.asks), strict=True):
        if snapshot:
            side.clear()
        for level in levels:
            if Decimal(level.size) == 0:
                side.pop(Decimal(level.price), None)
            else:
                side[Decimal(level.price)] = level.price


def _order_size(instrument: pb_common.Instrument, price: Decimal) -> str:
    lot = Decimal(instrument.lot_size)
    least = max(Decimal(instrument.min_size or "0"), Decimal(instrument.min_notional or "0") * 2 / price, lot)
    return str(lot * math.ceil(least / lot))


async def _fills(channel: grpc.aio.Channel, books: dict[str, Any], orders: int) -> dict[str, float]:
    """Marketable IOC orders one at a time: ms from PlaceOrder to the fill on the stream."""
    trade = tf_grpc.TradeFlowStub(channel)
    listed = await md_grpc.MarketDataStub(channel).ListInstruments(md.ListInstrumentsRequest(), metadata=AUTH)
    symbol, (bids, asks) = max(books.items(), key=lambda item: min(len(item[1][0]), len(item[1][1])))
    instrument = next(i for i in listed.instruments if i.symbol == symbol)
    size = _order_size(instrument, max(asks))
    stream = trade.StreamExecutions(tf.StreamExecutionsRequest(symbols=[symbol]), metadata=AUTH)
    await asyncio.sleep(
        0.5
    )  # the stream open before the first order (its headers come with the first message)
    to_fill, to_answer = [], []
    for n in range(orders):
        buy = n % 2 == 0
        price = asks[min(asks)] if buy else bids[max(bids)]
        side = pb_common.SIDE_BUY if buy else pb_common.SIDE_SELL
        request = tf.PlaceOrderRequest(
            symbol=symbol, side=side, type=tf.ORDER_TYPE_LIMIT, size=size, price=price,
            time_in_force=tf.TIME_IN_FORCE_IOC, client_order_id=f"bench-{time.time_ns()}-{n}",
        )  # fmt: skip
        started = time.perf_counter()
        placed = await trade.PlaceOrder(request, metadata=AUTH, timeout=10)
        to_answer.append((time.perf_counter() - started) * 1e3)
        while True:
            message = await asyncio.wait_for(stream.read(), 10)
            if not isinstance(message, tf.StreamExecutionsResponse):
                raise RuntimeError(f"the executions stream ended: {message!r}")
            if any(
                e.HasField("fill") and e.order.order_id == placed.order.order_id for e in message.executions
            ):
                break
        to_fill.append((time.perf_counter() - started) * 1e3)
    stream.cancel()
    return {
        "symbol": symbol,  # type: ignore[dict-item]
        "size": size,  # type: ignore[dict-item]
        "fill_ms_median": common.median(to_fill),
        "fill_ms_p99": common.percentile(to_fill, 99),
        "answer_ms_median": common.median(to_answer),
    }


async def run(name: str, paper: bool, orders: int, work: Path) -> dict[str, Any]:
    config = work / "paper.toml"
    config.write_text("latency_ms = 0\n")
    mode = ["--paper", "--paper-config", str(config)] if paper else []
    log = (work / f"{name}-{'paper' if paper else 'live'}.log").open("w")
    files = session_files(name)
    service = start_service(
        ["venue", name, *mode, "--port", "0", "--metrics-port", "-1", "--replay", *map(str, files)],
        env={TOKEN: MESH_TOKEN, TRADE_TOKEN: CREDENTIAL},
        stderr=log,
        timeout_s=60,
    )
    try:
        async with grpc.aio.insecure_channel(service.address, options=common.CHANNEL_OPTIONS) as channel:
            stub = md_grpc.MarketDataStub(channel)
            listed = await stub.ListInstruments(md.ListInstrumentsRequest(), metadata=AUTH, timeout=10)
            symbols = [i.symbol for i in listed.instruments]
            cpu_s, events, books = await _play(channel, symbols, service.process.pid)
            result: dict[str, Any] = {"events": events, "cpu_us_per_event": cpu_s / events * 1e6}
            if paper:
                result.update(await _fills(channel, books, orders))
    finally:
        service.terminate()
        log.close()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venues", default=",".join(SESSIONS), help="sessions to replay")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--orders", type=int, default=200, help="paper orders a run, for the fill latency")
    args = parser.parse_args()
    work = common.workdir()
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for name in args.venues.split(","):
            for mode in ("live", "paper"):
                result = await run(name, mode == "paper", args.orders, work)
                runs.append({"repeat": repeat, "venue": name, "mode": mode, **result})
                fill = f" fill {result['fill_ms_median']:.2f} ms" if mode == "paper" else ""
                print(
                    f"repeat {repeat} {name:<12} {mode:<5} {result['cpu_us_per_event']:8.1f} µs/event{fill}"
                )
    rows = []
    for name in args.venues.split(","):
        live = [r for r in runs if r["venue"] == name and r["mode"] == "live"]
        paper = [r for r in runs if r["venue"] == name and r["mode"] == "paper"]
        live_cpu = common.median([r["cpu_us_per_event"] for r in live])
        paper_cpu = common.median([r["cpu_us_per_event"] for r in paper])
        rows.append(
            [
                name,
                paper[0]["events"],
                live_cpu,
                paper_cpu,
                paper_cpu / live_cpu,
                common.median([r["fill_ms_median"] for r in paper]),
                common.median([r["fill_ms_p99"] for r in paper]),
                common.median([r["answer_ms_median"] for r in paper]),
            ]
        )
    common.print_table(
        [
            "venue",
            "events",
            "live µs/event",
            "paper µs/event",
            "x live",
            "fill ms",
            "fill p99 ms",
            "answer ms",
        ],
        rows,
    )
    common.write_result(
        "paper_venue",
        {"command": common.command_line(), "machine": common.machine(), "at": common.now_iso(), "runs": runs,
         "table": rows},
    )  # fmt: skip


if __name__ == "__main__":
    uvloop.run(main())
