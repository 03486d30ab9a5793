"""The advisor service end to end, real processes (issue 14: signal -> intent without the LLM,
p99 < 5 ms; with an LLM answering in 200 ms, >= 50 decisions/s).

A sim venue (a minute of history), ingest, recorder, bars and bridge (what the context's tools
read: bars from the recorder's table, the book from the bridge, the account from the venue),
and `trademesh advisor` on 1s bars with a lenient validation (so most decisions are intents;
the thresholds are the core's unit tests' business). This script publishes signals on
`signals` itself (one entry each, `ts_signal_ns` = the moment before its XADD, the three sim
symbols in turn) and reads `decisions` as they come:

- part 1, no LLM (deterministic synthesis): --rate signals/s for --seconds; latency of each
  decision = when this script read it off the bus - ts_signal_ns (both on this machine's
  clock): the bus both ways, the context (8 tool calls: gRPC to the venue and the bridge,
  queries to PostgreSQL), the core, the transactional publish. p50 / p99 of intents and of all.
- part 2, the LLM stand-in (tests/llm_standin.py, its own process) answering every request in
  --llm-latency-ms: --llm-rate signals/s for --seconds; decisions per second over the steady
  window (from the first decision to the last), and their latency.

Redis at $REDIS_URL (else 127.0.0.1:6379), logical db --redis-db (15), FLUSHDB'd; PostgreSQL at
$DATABASE_URL (else postgres@127.0.0.1:5432), a fresh database bench_advisor_<hex>, dropped after.

    .venv/bin/python bench/advisor_pipeline.py
    .venv/bin/python bench/advisor_pipeline.py --rate 50 --llm-rate 150 --seconds 20
    .venv/bin/python bench/advisor_pipeline.py --skip-llm        # part 1 only

Only 127.0.0.1; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from tests.llm_standin import Standin, start_standin
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as av
from trademesh.advisor.v1 import service_pb2_grpc as av_grpc
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.platform.bus.names import DECISIONS, SIGNALS
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN, database_url, read_secret
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.signal.v1 import signal_pb2 as sig

_DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
ENGINE = """
[validation]
min_risk_reward = "0"
min_conviction = 0.0
cap_target_at_swing = false
"""


@dataclass
class Mesh:
    workdir: Path
    env: dict[str, str]
    redis_url: str
    database_url: str
    processes: list[ServiceProcess] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)
    sim: ServiceProcess | None = None
    bridge: ServiceProcess | None = None

    def start(self, *args: str) -> ServiceProcess:
        log = (self.workdir / f"{args[0]}-{len(self.processes)}.log").open("w")
        process = start_service(
            [*args, "--port", "0", "--metrics-port", "-1"], env=self.env, stderr=log, timeout_s=60
        )
        self.processes.append(process)
        self.logs.append(log)
        return process

    def stop(self, process: ServiceProcess) -> None:
        process.terminate()
        self.processes.remove(process)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for log in self.logs:
            log.close()


@contextlib.asynccontextmanager
async def mesh(args: argparse.Namespace) -> AsyncIterator[Mesh]:
    redis_url = common.redis_db_url(read_secret(REDIS_URL) or _DEFAULT_REDIS, args.redis_db)
    async with (
        common.scratch_database(database_url(), "bench_advisor") as db_url,
        common.flushed_redis(open_redis(redis_url)),
    ):
        workdir = common.workdir()
        env = {REDIS_URL: redis_url, DATABASE_URL: db_url, TOKEN: secrets.token_hex(16)}
        built = Mesh(workdir, env, redis_url, db_url)
        try:
            (workdir / "sim.toml").write_text("history_s = 60\n")
            built.sim = built.start("venue", "sim", "--config", str(workdir / "sim.toml"))
            venue = ("--venue", f"sim={built.sim.address}")
            built.start("ingest", *venue)
            built.start("bars", *venue)
            built.start("recorder")
            built.bridge = built.start("bridge")
            yield built
        finally:
            built.stop_all()


def start_advisor(built: Mesh, llm: Standin | None) -> ServiceProcess:
    assert built.sim is not None and built.bridge is not None
    (built.workdir / "advisor.toml").write_text(ENGINE)
    args = ["advisor", "--venue", f"sim={built.sim.address}", "--bridge", built.bridge.address,
            "--timeframe", "1s", "--config", str(built.workdir / "advisor.toml"),
            "--model-dir", str(built.workdir / "models"), "--instance", "advisor"]  # fmt: skip
    if llm is not None:
        args += ["--llm-base-url", llm.base_url, "--llm-models", "primary", "--llm-max-tool-calls", "0"]
    return built.start(*args)


async def warm(advisor: ServiceProcess, token: str, timeout_s: float = 120.0) -> None:
    """Until a dry-run decision on every symbol gets past the context (bars and a book there)."""
    metadata = (("authorization", f"Bearer {token}"),)
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(advisor.address) as channel:
        stub = av_grpc.AdvisorStub(channel)
        for symbol in SYMBOLS:
            while True:
                given = sig.Signal(venue="sim", symbol=symbol, direction=sig.DIRECTION_LONG, conviction="0.7")
                answer = await stub.Decide(av.DecideRequest(signal=given), metadata=metadata, timeout=10)
                if answer.decision.outcome == am.OUTCOME_INTENT:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"no intent for {symbol} within {timeout_s} s: {answer.decision.block_reason}"
                    )
                await asyncio.sleep(1.0)


def signals(run: str) -> Iterator[sig.Signal]:
    for n in range(10**9):
        yield sig.Signal(
            signal_id=f"{run}-{n}", venue="sim", symbol=SYMBOLS[n % len(SYMBOLS)],
            direction=sig.DIRECTION_LONG if n % 2 == 0 else sig.DIRECTION_SHORT,
            conviction="0.7", score="0.7", threshold="0.5", strategy_id="bench",
        )  # fmt: skip


@dataclass
class Part:
    published: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    intent_latencies_ms: list[float] = field(default_factory=list)
    arrivals_s: list[float] = field(default_factory=list)
    llm_answered: int = 0
    # Per decision: signal to the core taking it (bus, queue, context), the core taking it to
    # the decision (the stages, the LLM), the decision to this script reading it (publish, bus).
    to_core_ms: list[float] = field(default_factory=list)
    in_core_ms: list[float] = field(default_factory=list)
    to_reader_ms: list[float] = field(default_factory=list)
    blocked: dict[str, int] = field(default_factory=dict)
    publishing: bool = True
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if not self.publishing and len(self.latencies_ms) >= self.published:
            self.settled.set()


async def run_part(redis_url: str, run: str, rate: float, seconds: float, settle_s: float) -> Part:
    part = Part()
    redis: Any = open_redis(redis_url, read_timeout_s=30)
    last_id = (await redis.xrevrange(DECISIONS, count=1) or [(b"0-0", {})])[0][0]
    done = asyncio.Event()
    reader = asyncio.create_task(_read(redis_url, last_id, run, part, done))
    source = signals(run)
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) + 1
            while part.published < due:
                signal = next(source)
                now = time.time_ns()
                signal.ts_signal_ns = signal.ts_event_ns = now
                envelope = bus.Envelope(source="bench", ts_publish_ns=now)
                envelope.signals.signals.append(signal)
                await redis.xadd(SIGNALS, {FIELD: envelope.SerializeToString()})
                part.published += 1
            await asyncio.sleep(max(0.0, (part.published / rate) - (time.monotonic() - started)))
        part.publishing = False
        part.check()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(part.settled.wait(), settle_s)
    finally:
        done.set()
        await reader
        await redis.aclose()
    return part


async def _read(redis_url: str, last_id: Any, run: str, part: Part, done: asyncio.Event) -> None:
    redis: Any = open_redis(redis_url, read_timeout_s=30)
    try:
        while not done.is_set():
            answer = await redis.xread({DECISIONS: last_id}, block=200, count=1000)
            now_ns = time.time_ns()
            for _, entries in answer or []:
                for entry_id, fields in entries:
                    last_id = entry_id
                    for decision in decode(fields).decisions.decisions:
                        if not decision.signal_id.startswith(f"{run}-"):
                            continue
                        latency = (now_ns - decision.signal.ts_signal_ns) / 1e6
                        part.latencies_ms.append(latency)
                        part.arrivals_s.append(now_ns / 1e9)
                        part.llm_answered += decision.synthesis.source == am.SYNTHESIS_SOURCE_LLM
                        taken = decision.stages[0].started_ns
                        part.to_core_ms.append((taken - decision.signal.ts_signal_ns) / 1e6)
                        part.in_core_ms.append((decision.ts_decision_ns - taken) / 1e6)
                        part.to_reader_ms.append((now_ns - decision.ts_decision_ns) / 1e6)
                        if decision.outcome == am.OUTCOME_INTENT:
                            part.intent_latencies_ms.append(latency)
                        else:
                            # by stage and each reason's kind ("stale", "thin book"), not its numbers
                            kinds = sorted(
                                {r.split(":")[0].strip() for r in decision.block_reason.split(";")}
                            )
                            key = f"{am.Stage.Name(decision.blocked_stage)}: {', '.join(kinds)}"
                            part.blocked[key] = part.blocked.get(key, 0) + 1
            part.check()
    finally:
        await redis.aclose()


def summary(part: Part, seconds: float) -> dict[str, Any]:
    window = (part.arrivals_s[-1] - part.arrivals_s[0]) if len(part.arrivals_s) > 1 else float("nan")
    return {
        "published": part.published,
        "decided": len(part.latencies_ms),
        "intents": len(part.intent_latencies_ms),
        "llm_answered": part.llm_answered,
        "blocked": part.blocked,
        "offered_per_s": round(part.published / seconds, 1),
        "decisions_per_s": round((len(part.arrivals_s) - 1) / window, 1) if window == window else None,
        "all_ms": {
            q: round(common.percentile(part.latencies_ms, p), 2)
            for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
        "median_split_ms": {
            "signal_to_core": round(common.median(part.to_core_ms), 2) if part.to_core_ms else None,
            "core_to_decision": round(common.median(part.in_core_ms), 2) if part.in_core_ms else None,
            "decision_to_reader": round(common.median(part.to_reader_ms), 2) if part.to_reader_ms else None,
        },
        "intent_ms": {
            q: round(common.percentile(part.intent_latencies_ms, p), 2) for q, p in (("p50", 50), ("p99", 99))
        },
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": common.machine(), "started": common.now_iso(),
                              "command": common.command_line()}  # fmt: skip
    async with mesh(args) as built:
        advisor = start_advisor(built, None)
        await warm(advisor, built.env[TOKEN])
        part, cpu = await measured(advisor, built.redis_url, "plain", args.rate, args.seconds, 10)
        result["without_llm"] = {**summary(part, args.seconds), **cpu}
        built.stop(advisor)
        if args.skip_llm:
            result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
            return result
        standin = start_standin("good", latency_ms=args.llm_latency_ms)
        try:
            advisor = start_advisor(built, standin)
            await warm(advisor, built.env[TOKEN])
            part, cpu = await measured(advisor, built.redis_url, "llm", args.llm_rate, args.seconds, 15)
            result["with_llm"] = {**summary(part, args.seconds), "llm_latency_ms": args.llm_latency_ms, **cpu}
        finally:
            standin.stop()
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


async def measured(
    advisor: ServiceProcess, redis_url: str, run: str, rate: float, seconds: float, settle_s: float
) -> tuple[Part, dict[str, Any]]:
    """A part, with the advisor's CPU over it: percent of a core, and ms per decision."""
    meter = common.CpuMeter(advisor.process.pid)
    started = time.monotonic()
    part = await run_part(redis_url, run, rate, seconds, settle_s)
    percent = meter.percent()
    cpu_s = percent / 100 * (time.monotonic() - started)
    per_decision = round(cpu_s / len(part.latencies_ms) * 1000, 2) if part.latencies_ms else None
    return part, {"advisor_cpu_percent": round(percent, 1), "advisor_cpu_ms_per_decision": per_decision}


def _report(result: dict[str, Any]) -> None:
    rows = []
    for name in ("without_llm", "with_llm"):
        if name not in result:
            continue
        r = result[name]
        rows.append([name, r["offered_per_s"], r["decided"], r["intents"], r["decisions_per_s"],
                     r["intent_ms"]["p50"], r["intent_ms"]["p99"], r["all_ms"]["p50"], r["all_ms"]["p99"],
                     r["advisor_cpu_ms_per_decision"]])  # fmt: skip
    common.print_table(
        ["part", "offered/s", "decided", "intents", "decisions/s", "intent p50 ms", "intent p99 ms",
         "all p50 ms", "all p99 ms", "advisor CPU ms/decision"],
        rows,
    )  # fmt: skip


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="signals/s without the LLM (default 20)")
    parser.add_argument("--llm-rate", type=float, default=100.0, help="signals/s with the LLM (default 100)")
    parser.add_argument("--llm-latency-ms", type=float, default=200.0, help="the stand-in's answer time")
    parser.add_argument("--seconds", type=float, default=15.0, help="each part's publishing time")
    parser.add_argument("--skip-llm", action="store_true", help="part 1 only (no LLM stand-in)")
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--result", default="advisor_pipeline", help="bench/results/<name>.json")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    with common.claimed_redis_db(arguments.redis_db):
        outcome = uvloop.run(main(arguments))
    _report(outcome)
    print(f"wrote {common.write_result(arguments.result, outcome)}")
