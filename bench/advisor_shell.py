"""The advisor's live decision path in one process, without the mesh (issue 14: the CPU of a
decision in the service).

What `trademesh advisor` does per signal, minus the context's tool calls: the bus consumer
reads `signals` (one entry a read), the runner (trademesh.core.advisor.runner) checks the signal, takes the
context (a fixed one, bench/advisor_core.py's: the gatherer's background refresh is another
cost, bench/advisor_refresh.py), runs the core, converts the decision and its telemetry to the
contract's messages and commits them to Redis as the service does, one decision at a time. A
redis-server of its own on a free port (no other Redis database touched). The signals are
written before the clock starts, or with --rate by a child process at that rate meanwhile (each
decision alone, as in the service at 20/s: its caches cold, the consumer's blocking reads
between). Reported: the process's CPU per decision over the run (the consumer, the runner, the
core, the conversion, redis-py, the event loop: uvloop, as the service), and what reached the
streams.

    .venv/bin/python bench/advisor_shell.py
    .venv/bin/python bench/advisor_shell.py --signals 3000 --profile /tmp/shell.prof
    .venv/bin/python bench/advisor_shell.py --digest /tmp/out.txt   # what was written, for A/B
    .venv/bin/python bench/advisor_shell.py --signals 300 --rate 20  # paced, as the service at 20/s

`--digest` runs without the stage timer (every elapsed_ns 0; the decisions' clock moves a
microsecond a decision in every mode) and writes every message the streams got (ts_publish_ns
left out, maps in key order), sorted, one line each: two trees that write the same thing give
the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis as redis_sync
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from advisor_core import NOW_NS, _context, _signal

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.advisor.convert import signal_to_pb
from trademesh.core.advisor.decision_journal import DecisionJournal
from trademesh.core.advisor.defaults import default_calibration, default_model
from trademesh.core.advisor.engine.config import AdvisorConfig, SynthesisConfig, ValidationConfig
from trademesh.core.advisor.engine.context import Context
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.runner import Pipeline
from trademesh.core.advisor.wire import DecisionWriter
from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.platform.bus.consumer import ConsumerOptions, GroupConsumer
from trademesh.core.platform.bus.names import ADVISOR_TELEMETRY, DECISIONS, INTENTS, SIGNALS
from trademesh.core.platform.bus.publisher import Retention
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.bus.signing import ADVISOR, Signer


class _Context:
    """The gatherer's part: one context, as a followed market's (no call on the way). Its calls
    count the decisions begun: the bench's clock (`now_ns`) moves 1 us a decision, not a read."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.calls = 0

    async def gather(self, venue: str, symbol: str, as_of_ns: int | None = None) -> Context:
        self.calls += 1
        return self.context

    def now_ns(self) -> int:
        return NOW_NS + 10_000_000 + 1000 * self.calls


class _Counting(DecisionJournal):
    """The journal, counting the decisions published."""

    decided = 0

    def add(self, decision: am.Decision | None, events: Sequence[am.TelemetryEvent], published: bool) -> None:
        super().add(decision, events, published)
        self.decided += decision is not None and published


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = shutil.which("redis-server") or "redis-server"
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process, f"redis://127.0.0.1:{port}/0"


async def _reachable(redis: Any) -> None:
    for _ in range(200):
        try:
            await redis.ping()
            return
        except OSError:
            await asyncio.sleep(0.05)
        except Exception:  # redis' ConnectionError while the server starts
            await asyncio.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _pipeline(redis: Any, timed: bool) -> Pipeline:
    lenient = ValidationConfig(min_risk_reward=Decimal(0), min_conviction=0.0, cap_target_at_swing=False)
    config = AdvisorConfig(synthesis=SynthesisConfig(llm_enabled=False), validation=lenient)
    timer = time.perf_counter_ns if timed else None
    core = AdvisorCore(config, default_model(), default_calibration(), timer=timer)
    context = _Context(_context())
    pipeline = Pipeline(
        core, context, None, _Counting(), max_in_flight=1,  # type: ignore[arg-type]
        clock=context.now_ns,
    )  # fmt: skip
    # Its intents signed, as the service's are (trademesh.core.platform.bus.signing).
    signer = Signer(ADVISOR, b"bench-advisor-signing-key-0123456789abcdef")
    pipeline.writer = DecisionWriter(redis, "advisor", "advisor", Retention(50, 60), 3600, signer)
    return pipeline


def _entry(i: int) -> dict[bytes, bytes]:
    message = signal_to_pb(_signal(i))
    message.ts_signal_ns = 0  # no age check: the bench's clock is not the wall's
    envelope = bus.Envelope(source="bench", ts_publish_ns=NOW_NS)
    envelope.signals.signals.append(message)
    return {FIELD: envelope.SerializeToString()}


async def _publish_signals(redis: Any, signals: int) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(signals):
            pipe.xadd(SIGNALS, _entry(i))
        await pipe.execute()


def _publish_paced(url: str, signals: int, rate: float) -> None:
    """The child process of --rate: one signal every 1/rate s, each its own entry."""
    client = redis_sync.Redis.from_url(url)
    start = time.monotonic()
    for i in range(signals):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        client.xadd(SIGNALS, _entry(i))  # type: ignore[arg-type]
    client.close()


async def _decide_all(redis: Any, pipeline: Pipeline, signals: int, paced: list[str] | None) -> float:
    """The consumer on `signals` until every signal is decided (with `paced`, the command of a
    child process publishing them meanwhile): the process's CPU seconds."""
    options = ConsumerOptions(group="advisor", consumer="bench", streams=(SIGNALS,), batch=1,
                              handler_acks=True)  # fmt: skip
    consumer = GroupConsumer(redis, options, pipeline.handle)
    stop = asyncio.Event()
    await consumer.ensure_groups()
    publisher = None if paced is None else await asyncio.create_subprocess_exec(*paced)
    cpu = time.process_time()
    task = asyncio.create_task(consumer.run(stop))
    journal, seen = pipeline.journal, 0
    assert isinstance(journal, _Counting)
    while journal.decided < signals:
        seen = await journal.pulse.wait(seen, 1.0)
    cpu = time.process_time() - cpu
    stop.set()
    await task
    if publisher is not None:
        await publisher.wait()
    return cpu


async def _written(redis: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for stream in (DECISIONS, INTENTS, ADVISOR_TELEMETRY):
        lines = []
        for _, fields in await redis.xrange(stream):
            envelope = decode(fields)
            envelope.ts_publish_ns = 0
            lines.append(envelope.SerializeToString(deterministic=True).hex())
        out[stream] = sorted(lines)
    return out


async def run(signals: int, digest: Path | None, rate: float = 0.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        process, url = _start_redis(Path(workdir))
        redis: Any = open_redis(url)
        try:
            await _reachable(redis)
            pipeline = _pipeline(redis, timed=digest is None)
            paced = None
            if rate > 0:
                paced = [sys.executable, __file__, "--signals", str(signals), "--rate", str(rate),
                         "--publish-to", url]  # fmt: skip
            else:
                await _publish_signals(redis, signals)
            cpu_s = await _decide_all(redis, pipeline, signals, paced)
            written = await _written(redis)
        finally:
            await redis.aclose()
            process.terminate()
            process.wait()
    if digest is not None:
        digest.write_text(  # noqa: ASYNC240 (after the measurement)
            "".join(f"{s} {line}\n" for s, lines in written.items() for line in lines)
        )
    events = sum(len(decode_events(h)) for h in written[ADVISOR_TELEMETRY])
    return {
        "signals": signals, "rate": rate, "decisions": len(written[DECISIONS]),
        "intents": len(written[INTENTS]),
        "telemetry_events": events, "cpu_ms_per_decision": round(cpu_s * 1000 / signals, 4),
    }  # fmt: skip


def decode_events(hex_envelope: str) -> list[Any]:
    envelope = bus.Envelope.FromString(bytes.fromhex(hex_envelope))
    return list(envelope.advisor_telemetry.events)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=2000)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--digest", type=Path)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="signals/s from a child process; 0: all at once"
    )
    parser.add_argument("--publish-to", help=argparse.SUPPRESS)  # the child's Redis
    args = parser.parse_args()
    if args.publish_to is not None:
        _publish_paced(args.publish_to, args.signals, args.rate)
        return
    if args.profile is not None:
        cProfile.runctx("uvloop.run(run(args.signals, None))", globals(), {"args": args}, str(args.profile))
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(40)
        return
    print(json.dumps(uvloop.run(run(args.signals, args.digest, args.rate))))


if __name__ == "__main__":
    main()
