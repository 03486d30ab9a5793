"""What the gateway's multiplexer (trademesh.mux.v1.Mux) adds to a live stream (issue 11).

The mesh, each its own process on 127.0.0.1: `trademesh gateway` and a sim venue registered with
it (about --rate trade + book events/s over --symbols symbols); an API key from
`trademesh keys create`. Then, at the same time, --streams pairs of the same subscription
(MarketData/Subscribe to the sim, trades and book of every symbol):

- direct: one gRPC-web stream each (aiohttp, binary, one HTTP/1.1 connection each), as Studio's
  panels held before;
- mux: one subscription each, all on ONE Mux/Open stream (added with Mux/Add), as Studio now.

Both paths carry the same events, so each event is timed on both (receipt time, keyed by the
event: symbol, stamp, kind, trade id or book sequence) and the difference is the multiplexer's
cost for that event, on the same machine clock, under the same load. Reported per run: the
paired difference (mux - direct) p50 / p99, each path's latency from the venue's stamp
(ts_recv_ns) to receipt p50 / p99, events/s, the gateway's CPU; then the median over --runs.

    .venv/bin/python bench/gateway_mux.py                           # 5 runs of 10 s, 4 streams
    .venv/bin/python bench/gateway_mux.py --runs 1 --seconds 3 --no-save   # a smoke run

PostgreSQL at $DATABASE_URL (else postgres@127.0.0.1:5432) for the API key: a fresh database
bench_mux_<random>, dropped at the end. Every process started is stopped (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import secrets
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from trademesh.core.platform.config.env import DATABASE_URL, GATEWAY, TOKEN, database_url
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.mux.v1 import mux_pb2 as mux

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import gateway_streams
import venue_stream

HOST = common.HOST
SUBSCRIBE = "trademesh.marketdata.v1.MarketData/Subscribe"
MUX = "/trademesh.mux.v1.Mux"
_FRAME = struct.Struct(">BI")
_CALL_TIMEOUT_S = 10.0

EventKey = tuple[int, str, int, str, str]


@dataclass
class Receipts:
    """When each event arrived on one path, and its latency from the venue's stamp."""

    window: tuple[int, int] = (0, 0)
    arrived_ns: dict[EventKey, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    error: str | None = None

    def add(self, stream: int, response: md.SubscribeResponse, now_ns: int) -> None:
        if not self.window[0] <= now_ns < self.window[1]:
            return
        for event in response.events:
            kind = event.WhichOneof("payload") or ""
            ident = event.trade.trade_id if kind == "trade" else str(_sequence(event, kind))
            self.arrived_ns[(stream, event.symbol, event.ts_recv_ns, kind, ident)] = now_ns
            self.latencies_ns.append(now_ns - event.ts_recv_ns)


def _sequence(event: md.MarketEvent, kind: str) -> int:
    if kind == "book_delta":
        return event.book_delta.sequence
    return event.book_snapshot.sequence if kind == "book_snapshot" else 0


def _frames(buffer: bytearray) -> tuple[list[bytes], str | None]:
    """Complete data frames off the front of `buffer`, and the trailer frame's text if it came."""
    found: list[bytes] = []
    offset = 0
    while len(buffer) - offset >= _FRAME.size:
        flag, length = _FRAME.unpack_from(buffer, offset)
        end = offset + _FRAME.size + length
        if end > len(buffer):
            break
        payload = bytes(buffer[offset + _FRAME.size : end])
        offset = end
        if flag & 0x80:
            del buffer[:offset]
            return found, payload.decode(errors="replace").replace("\r\n", " ").strip()
        found.append(payload)
    del buffer[:offset]
    return found, None


class Web:
    """gRPC-web calls to the gateway with the bench's API key."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session = session
        self.url = url
        self.headers = {
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "authorization": f"Bearer {key}",
        }

    async def stream(
        self, path: str, request: bytes, take: Callable[[bytes, int], None], headers: dict[str, str]
    ) -> None:
        body = _FRAME.pack(0, len(request)) + request
        all_headers = {**self.headers, **headers}
        async with self.session.post(self.url + path, data=body, headers=all_headers) as reply:
            buffer = bytearray()
            while chunk := await reply.content.readany():
                now_ns = time.time_ns()
                buffer += chunk
                payloads, trailer = _frames(buffer)
                for payload in payloads:
                    take(payload, now_ns)
                if trailer is not None:
                    raise RuntimeError(f"the stream ended: {trailer}")
            raise RuntimeError(f"the stream ended: grpc-status {reply.headers.get('grpc-status')}")

    async def unary(self, path: str, request: bytes) -> bytes:
        body = _FRAME.pack(0, len(request)) + request
        async with self.session.post(self.url + path, data=body, headers=self.headers) as reply:
            payloads, _ = _frames(bytearray(await reply.read()))
            if not payloads:
                raise RuntimeError(f"{path}: {reply.headers.get('grpc-message', 'no answer')}")
            return payloads[0]


async def direct_stream(web: Web, index: int, request: bytes, receipts: Receipts) -> None:
    def take(payload: bytes, now_ns: int) -> None:
        receipts.add(index, md.SubscribeResponse.FromString(payload), now_ns)

    await web.stream(f"/{SUBSCRIBE}", request, take, {"x-trademesh-target": "sim"})


async def mux_session(web: Web, streams: int, request: bytes, receipts: Receipts) -> None:
    """One Open stream carrying `streams` subscriptions of `request`."""
    opened: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def take(payload: bytes, now_ns: int) -> None:
        frame = mux.OpenResponse.FromString(payload)
        which = frame.WhichOneof("frame")
        if which == "opened":
            opened.set_result(frame.opened.session_id)
        elif which == "data":
            index = int(frame.data.subscription_id)
            receipts.add(index, md.SubscribeResponse.FromString(frame.data.message), now_ns)
        elif which == "end":
            receipts.error = f"subscription {frame.end.subscription_id} ended: {frame.end.message}"

    reading = asyncio.create_task(web.stream(f"{MUX}/Open", b"", take, {}))
    try:
        session_id = await asyncio.wait_for(asyncio.shield(opened), _CALL_TIMEOUT_S)
        for index in range(streams):
            add = mux.AddRequest(
                session_id=session_id,
                subscription_id=str(index),
                method=SUBSCRIBE,
                target="sim",
                request=request,
            )
            await web.unary(f"{MUX}/Add", add.SerializeToString())
        await reading
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reading


def _ms(values_ns: list[int], q: float) -> float:
    return common.percentile(values_ns, q) / 1e6


async def run_once(args: argparse.Namespace, url: str, key: str, gateway_pid: int) -> dict[str, Any]:
    request = md.SubscribeRequest(
        symbols=[f"{base}/USDT" for base in venue_stream._BASES[: args.symbols]],
        channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK],
    ).SerializeToString()
    start = time.time_ns() + int(args.warmup * 1e9)
    window = (start, start + int(args.seconds * 1e9))
    direct, multiplexed = Receipts(window), Receipts(window)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        web = Web(session, url, key)
        tasks = [asyncio.create_task(direct_stream(web, i, request, direct)) for i in range(args.streams)]
        tasks.append(asyncio.create_task(mux_session(web, args.streams, request, multiplexed)))
        await asyncio.sleep(args.warmup)
        cpu = common.CpuMeter(gateway_pid)
        await asyncio.sleep(args.seconds + 0.5)
        gateway_cpu = cpu.percent()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    errors = [e for e in errors if not e.startswith("CancelledError")]
    paired = [t - direct.arrived_ns[k] for k, t in multiplexed.arrived_ns.items() if k in direct.arrived_ns]
    return {
        "events_per_s_per_stream": len(direct.arrived_ns) / args.streams / args.seconds,
        "paired_events": len(paired),
        "unpaired_events": len(multiplexed.arrived_ns) + len(direct.arrived_ns) - 2 * len(paired),
        "mux_minus_direct_p50_ms": _ms(paired, 50),
        "mux_minus_direct_p99_ms": _ms(paired, 99),
        "direct_latency_p50_ms": _ms(direct.latencies_ns, 50),
        "direct_latency_p99_ms": _ms(direct.latencies_ns, 99),
        "mux_latency_p50_ms": _ms(multiplexed.latencies_ns, 50),
        "mux_latency_p99_ms": _ms(multiplexed.latencies_ns, 99),
        "gateway_cpu_percent_of_one_core": gateway_cpu,
        "errors": sorted({*errors, *(e for e in (direct.error, multiplexed.error) if e)}),
    }


async def run(args: argparse.Namespace, processes: gateway_streams.Processes) -> list[dict[str, Any]]:
    async with common.scratch_database(database_url(), "bench_mux", timeout_s=_CALL_TIMEOUT_S) as db_url:
        try:
            env = {DATABASE_URL: db_url, TOKEN: secrets.token_hex(16)}
            gateway = processes.start(
                "gateway", ["gateway", "--host", HOST, "--port", "0", "--grpc-port", "0"], env
            )
            key = gateway_streams.create_key(env)
            config = processes.workdir / "sim.toml"
            config.write_text(venue_stream.sim_config(args.rate, args.symbols, 10))
            sim_env = {**env, GATEWAY: f"{HOST}:{gateway.info['grpc_port']}"}
            sim_args = ["venue", "sim", *gateway_streams._PORTS, "--config", str(config)]
            processes.start("sim", sim_args, sim_env)
            mesh = gateway_streams.Mesh(gateway, gateway, gateway, key, env[TOKEN])
            await gateway_streams.wait_registered(mesh, {"sim"})
            url = f"http://{HOST}:{gateway.port}"
            runs = []
            for index in range(args.runs):
                result = await run_once(args, url, key, gateway.process.pid)
                print(_line(index, result), flush=True)
                runs.append(result)
            return runs
        finally:
            processes.stop_all()


def _line(index: int, r: dict[str, Any]) -> str:
    return (
        f"run {index + 1}: mux - direct p50 {r['mux_minus_direct_p50_ms']:.3f} ms, p99 "
        f"{r['mux_minus_direct_p99_ms']:.3f} ms over {r['paired_events']} events; latency direct "
        f"{r['direct_latency_p50_ms']:.2f}/{r['direct_latency_p99_ms']:.2f} ms, mux "
        f"{r['mux_latency_p50_ms']:.2f}/{r['mux_latency_p99_ms']:.2f} ms (p50/p99); "
        f"{r['events_per_s_per_stream']:.0f} events/s per stream; gateway CPU "
        f"{r['gateway_cpu_percent_of_one_core']:.0f}%" + (f"; errors {r['errors']}" if r["errors"] else "")
    )


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, float)]
    return {f"median_{k}": common.median([r[k] for r in runs]) for k in keys}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--streams", type=_positive, default=4, help="subscriptions on each path (default 4)")
    add("--runs", type=_positive, default=5, help="measured windows (default 5)")
    add("--seconds", type=float, default=10.0, help="each window (default 10)")
    add("--warmup", type=float, default=2.0, help="seconds before each window (default 2)")
    add("--rate", type=_positive, default=2_000, help="trade + book events/s the sim makes (default 2000)")
    add("--symbols", type=_positive, default=3, choices=range(1, 11), metavar="1..10", help="(default 3)")
    add("--result", default="gateway_mux", help="bench/results/<name>.json (default gateway_mux)")
    add("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    started, machine = common.now_iso(), common.machine()
    processes = gateway_streams.Processes(common.workdir())
    atexit.register(processes.stop_all)
    try:
        runs = uvloop.run(run(args, processes))
    except KeyboardInterrupt:
        raise SystemExit("gateway_mux: interrupted; every process it started is stopped") from None
    summary = summarise(runs)
    print("\nmedians over runs:")
    common.print_table(("figure", "value"), sorted(summary.items()))
    if not args.no_save:
        path = common.write_result(
            args.result,
            {
                "benchmark": "gateway_mux",
                "command": common.command_line(),
                "started": started,
                "machine": machine,
                "source": common.source_version(),
                "parameters": vars(args),
                "summary": summary,
                "runs": runs,
            },
        )
        print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
