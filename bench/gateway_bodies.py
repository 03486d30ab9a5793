"""Large request bodies against the gateway: do they hold up everyone else's calls? (issue 12, item 8)

A real `trademesh gateway` process with a sim venue registered through TRADEMESH_GATEWAY. A
probe client calls the open Health route over gRPC-web (a 5-byte body) back to back and
records each call's latency:

- idle: nothing else runs;
- small: meanwhile --flooders clients each POST, back to back, a 20-byte text-mode body, in
  turn to MarketData/ListInstruments with an API key and to open Health (the baseline: the
  same number of busy clients, with small bodies);
- large: the same with --body-mib bodies, one base64 chunk each (a legitimate request, an
  unknown field carrying the bulk). The default, 1.3 MiB, is just under the text-mode limit of
  a route with a token; Health refuses it by its Content-Length;
- chunky: the same size as two-byte padded chunks ("AAA=" repeated), the shape that costs a
  decoder one call per chunk.

Reported: the probe's median, p99 and max per phase, the large/small and chunky/small ratios
of the medians (what such bodies cost everyone else), and how the flood's calls were answered
(status counts). Medians, since this machine is shared.

    .venv/bin/python bench/gateway_bodies.py                 # 16 flooders, 1.3 MiB bodies, 10 s each
    .venv/bin/python bench/gateway_bodies.py --seconds 3 --no-save

PostgreSQL at $DATABASE_URL (else postgres@127.0.0.1:5432) for the API key: a fresh database,
dropped at the end. Every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import collections
import secrets
import struct
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from grpc_health.v1 import health_pb2

from trademesh.core.platform.config.env import DATABASE_URL, GATEWAY, TOKEN, database_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import gateway_streams as gs

_FRAME = struct.Struct(">BI")
_UNKNOWN_BYTES_FIELD = bytes([0xC2, 0x3E])  # field 1000, length-delimited (a varint tag)
PHASES = ("idle", "small", "large", "chunky")
_HEALTH = "/grpc.health.v1.Health/Check"
_LIST = "/trademesh.marketdata.v1.MarketData/ListInstruments"


def _frame(message: bytes) -> bytes:
    return _FRAME.pack(0, len(message)) + message


def one_chunk_body(size: int) -> bytes:
    """A grpc-web-text body of about `size` bytes, one base64 chunk, as a client sends it: a
    ListInstrumentsRequest carrying a field its schema does not know (protobuf skips it)."""
    payload = b"x" * max(0, size * 3 // 4 - 16)
    message = _UNKNOWN_BYTES_FIELD + _varint(len(payload)) + payload
    return base64.b64encode(_frame(message))


def chunky_body(size: int) -> bytes:
    """About `size` bytes of 2-byte padded chunks ("AAA=" each): the shape that costs a
    decoder one call per chunk."""
    return b"AAA=" * (size // 4)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def _status(reply: aiohttp.ClientResponse) -> str:
    await reply.read()
    return reply.headers.get("grpc-status") or reply.headers.get("Grpc-Status") or f"http {reply.status}"


async def probe(session: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> list[float]:
    """Health calls back to back until `stop`: each one's latency in ms."""
    body = _frame(health_pb2.HealthCheckRequest().SerializeToString())
    headers = {"content-type": "application/grpc-web+proto"}
    latencies: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        async with session.post(url + _HEALTH, data=body, headers=headers) as reply:
            await reply.read()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def flooder(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    body: bytes,
    stop: asyncio.Event,
    seen: collections.Counter[str],
) -> None:
    routes = [
        (_LIST, {"authorization": f"Bearer {key}", "x-trademesh-target": "sim"}),
        (_HEALTH, {}),
    ]
    index = 0
    while not stop.is_set():
        path, extra = routes[index % 2]
        index += 1
        headers = {"content-type": "application/grpc-web-text+proto", **extra}
        try:
            async with session.post(url + path, data=body, headers=headers) as reply:
                seen[f"{path.rsplit('/', 1)[1]} {await _status(reply)}"] += 1
        except aiohttp.ClientError as exc:
            seen[f"{path.rsplit('/', 1)[1]} {type(exc).__name__}"] += 1


async def phase(url: str, key: str, args: argparse.Namespace, flood: bool, body: bytes) -> dict[str, Any]:
    stop = asyncio.Event()
    seen: collections.Counter[str] = collections.Counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [
            asyncio.create_task(flooder(session, url, key, body, stop, seen))
            for _ in range(args.flooders if flood else 0)
        ]
        probing = asyncio.create_task(probe(session, url, stop))
        await asyncio.sleep(args.seconds)
        stop.set()
        latencies = await probing
        await asyncio.gather(*tasks)
    return {
        "probe_calls": len(latencies),
        "probe_median_ms": common.median(latencies),
        "probe_p99_ms": common.percentile(latencies, 99),
        "probe_max_ms": max(latencies, default=float("nan")),
        "flood_answers": dict(seen),
    }


async def run(args: argparse.Namespace, processes: gs.Processes) -> dict[str, Any]:
    async with common.scratch_database(database_url(), "bench_bodies", timeout_s=10) as db_url:
        try:
            env = {DATABASE_URL: db_url, TOKEN: secrets.token_hex(16)}
            gateway = processes.start(
                "gateway", ["gateway", "--host", gs.HOST, "--port", "0", "--grpc-port", "0"], env
            )
            key = gs.create_key(env)
            sim_env = {**env, GATEWAY: f"{gs.HOST}:{gateway.info['grpc_port']}"}
            sim = processes.start("sim", ["venue", "sim", *gs._PORTS], sim_env)
            mesh = gs.Mesh(gateway, sim, sim, key, env[TOKEN])
            await gs.wait_registered(mesh, {"sim"})
            size = int(args.body_mib * 1024 * 1024)
            phases = {
                "idle": await phase(mesh.gateway_url, key, args, False, b""),
                "small": await phase(mesh.gateway_url, key, args, True, one_chunk_body(20)),
                "large": await phase(mesh.gateway_url, key, args, True, one_chunk_body(size)),
                "chunky": await phase(mesh.gateway_url, key, args, True, chunky_body(size)),
            }
            small = phases["small"]["probe_median_ms"]
            ratios = {
                f"{name}_small_median_ratio": phases[name]["probe_median_ms"] / small
                for name in ("large", "chunky")
            }
            return {**phases, **ratios}
        finally:
            processes.stop_all()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flooders", type=int, default=16, help="clients sending large bodies (default 16)")
    parser.add_argument(
        "--body-mib", type=float, default=1.3, help="size of each large body in MiB (default 1.3)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default 10)")
    parser.add_argument("--result", default="gateway_bodies", help="bench/results/<name>.json")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    started, machine = common.now_iso(), common.machine()
    processes = gs.Processes(common.workdir())
    atexit.register(processes.stop_all)
    result = uvloop.run(run(args, processes))
    columns = ("probe_calls", "probe_median_ms", "probe_p99_ms", "probe_max_ms")
    rows = [[name, *(result[name][column] for column in columns)] for name in PHASES]
    print(f"\ngateway_bodies: {args.flooders} flooders x {args.body_mib} MiB, {args.seconds} s per phase")
    common.print_table(["phase", "probe calls", "median ms", "p99 ms", "max ms"], rows)
    for name in ("large", "chunky"):
        print(f"{name}/small median: {result[f'{name}_small_median_ratio']:.2f}x")
    for name in PHASES[1:]:
        print(f"{name} flood answers: {result[name]['flood_answers']}")
    if not args.no_save:
        payload = {
            "benchmark": "gateway_bodies",
            "command": common.command_line(),
            "started": started,
            "finished": common.now_iso(),
            "machine": machine,
            "settings": vars(args),
            "result": result,
        }
        print(f"results: {common.write_result(args.result, payload)}")


if __name__ == "__main__":
    main()
