"""The detector's market-data conversion alone (trademesh.core.detector.market.MarketConverter), on batches
recorded from a real sim venue: CPU per market event and per batch, no gRPC, no engine.

--record FILE starts a sim venue with bench/detector_hot_path.py's flow (bench/venue_stream.py's
config for --rate events/s over 10 symbols: ~7 % trades, the rest book deltas on 20-level books),
follows trades and book of the 10 symbols for --seconds (as the detector's feed subscribes) and
writes every SubscribeResponse to FILE (length-prefixed). Without --record, FILE is converted
--repeats times, each time by a new converter (each symbol's first book event is its snapshot),
and the CPU time of each pass (one thread: time.process_time) gives µs per market event and
per batch; median of the passes. The same FILE run on two trees compares them byte for byte of
input:

    .venv/bin/python bench/detector_convert.py --record /tmp/md.bin --seconds 20
    .venv/bin/python bench/detector_convert.py /tmp/md.bin --repeats 15

Only 127.0.0.1; the venue is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from trademesh.core.detector.market import MarketConverter
from trademesh.marketdata.v1 import marketdata_pb2 as md

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import venue_stream

_SUBSCRIBE = "/trademesh.marketdata.v1.MarketData/Subscribe"
SYMBOLS = [f"{base}/USDT" for base in venue_stream._BASES]
_LENGTH = struct.Struct("<I")


async def record(path: Path, rate: int, seconds: float) -> int:
    """Follow the sim for `seconds`; every response to `path`. The number of responses."""
    venue = common.start_venue(venue_stream.sim_config(rate, 10, 10), common.workdir(), False)
    try:
        request = md.SubscribeRequest(symbols=SYMBOLS, channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK])
        count = 0
        with path.open("wb") as out:
            async with grpc.aio.insecure_channel(venue.address, options=common.CHANNEL_OPTIONS) as channel:
                call: Any = channel.unary_stream(
                    _SUBSCRIBE,
                    request_serializer=md.SubscribeRequest.SerializeToString,
                    response_deserializer=md.SubscribeResponse.FromString,
                )(request)
                deadline = time.monotonic() + seconds
                async for response in call:
                    body = response.SerializeToString()
                    out.write(_LENGTH.pack(len(body)) + body)
                    count += 1
                    if time.monotonic() >= deadline:
                        call.cancel()
                        break
        return count
    finally:
        venue.stop()


def load(path: Path) -> list[md.SubscribeResponse]:
    data, responses, at = path.read_bytes(), [], 0
    while at < len(data):
        (size,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        responses.append(md.SubscribeResponse.FromString(data[at : at + size]))
        at += size
    return responses


def one_pass(responses: list[md.SubscribeResponse]) -> tuple[float, int]:
    """(CPU seconds, engine events out) of converting every batch with a new converter."""
    converter = MarketConverter()
    convert, out = converter.convert, 0
    started = time.process_time()
    for response in responses:
        out += len(convert(response.events))
    return time.process_time() - started, out


def measure(path: Path, repeats: int) -> dict[str, Any]:
    responses = load(path)
    events = sum(len(r.events) for r in responses)
    kinds: dict[str, int] = {}
    for response in responses:
        for event in response.events:
            kind = event.WhichOneof("payload") or "none"
            kinds[kind] = kinds.get(kind, 0) + 1
    passes = [one_pass(responses) for _ in range(repeats)]
    seconds = [s for s, _ in passes]
    return {
        "batches": len(responses),
        "market_events": events,
        "kinds": kinds,
        "engine_events_out": passes[0][1],
        "pass_cpu_s": seconds,
        "us_per_market_event": 1e6 * common.median(seconds) / events,
        "us_per_batch": 1e6 * common.median(seconds) / len(responses),
        "us_per_market_event_min": 1e6 * min(seconds) / events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, help="the recorded responses (written with --record)")
    parser.add_argument("--record", action="store_true", help="record FILE from a new sim venue")
    parser.add_argument("--rate", type=int, default=10_000, help="the sim's events/s when recording")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to record")
    parser.add_argument("--repeats", type=int, default=15, help="conversion passes (median)")
    parser.add_argument("--result", default="detector_convert", help="bench/results/<name>.json")
    args = parser.parse_args()
    if args.record:
        count = asyncio.run(record(args.file, args.rate, args.seconds))
        print(f"recorded {count} responses to {args.file}")
        return
    started, result = common.now_iso(), measure(args.file, args.repeats)
    print(
        f"{result['batches']} batches, {result['market_events']} market events {result['kinds']}, "
        f"{result['engine_events_out']} engine events out; median of {args.repeats}: "
        f"{result['us_per_market_event']:.2f} µs per market event "
        f"(min {result['us_per_market_event_min']:.2f}), {result['us_per_batch']:.1f} µs per batch"
    )
    if args.result:
        payload = {
            "benchmark": "detector_convert",
            "command": common.command_line(),
            "started": started,
            "machine": common.machine(),
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "result": result,
        }
        print(f"results: {common.write_result(args.result, payload)}")


if __name__ == "__main__":
    main()
