"""A live venue against its closest open-source peer (issue 17): trademesh and cryptofeed on the
same looped Binance spot (or Kraken spot) capture, into Redis Streams, CPU per event side by side.
trademesh runs two ways (issue 43): `trademesh` is the venue and ingest (the venue -> gRPC ->
ingest hop), `direct` the venue writing its own streams (`--bus-direct`, no ingest); the three
sides alternate within each repeat (trademesh, direct, cryptofeed, ...).

Both sides are served by the replay stand-in in the exchange's formats, at full speed; runs
alternate, each measured from the processes' /proc (CPU seconds per 1,000 frames, throughput),
and the entries both wrote are cross-checked after each run. The method, the data and the
figures: docs/benchmarks.md, section 17.

    sh bench/peer_setup.sh                                  # once: cryptofeed 2.4.1 from PyPI
    .venv/bin/python bench/market_data_peer.py --repeats 5 --loops 1000
    .venv/bin/python bench/market_data_peer.py --venue kraken --repeats 3 --loops 6
    .venv/bin/python bench/market_data_peer.py --sides direct,cryptofeed   # any of the three

Redis: database --redis-db (default 12) on 127.0.0.1:6379, emptied before every run and claimed
meanwhile as the test suite claims its own, so a test run does not flush it mid-run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

from trademesh.core.platform.service.process import ChildProcess, start_service
from trademesh.venues.binance.standin.adapter import BinanceReplay
from trademesh.venues.kraken.standin.adapter import KrakenReplay
from trademesh.venues.replay.adapter import MockConnection, url_path
from trademesh.venues.replay.capture import WsFrame

SELF = Path(__file__).resolve()
HERE = SELF.parent
CAPTURES = HERE.parent / "fixtures" / "exchange-captures"
PEER_PYTHON = HERE / ".peer-venv" / "bin" / "python"
PEER_RUNNER = HERE / "peer_cryptofeed.py"
PERIOD_MS = 60_000  # each loop's times move by this much (a whole minute: candles stay aligned)
QUIET_S = 3.0  # the run is over once Redis has had no new entry for this long ...
COMPLETE_SHARE = 0.99  # a run counts when it wrote at least this share of its side's most events
IDLE_SHARE = 0.1  # ... and the side's processes used less than this share of a core meanwhile
RUN_TIMEOUT_S = 1800.0
SIDES = ("trademesh", "direct", "cryptofeed")
OURS = ("trademesh", "direct")  # trademesh's sides: venue + ingest, the venue direct


# ---- the looped capture


def _received(line: str) -> tuple[float, Any] | None:
    """A received frame's (time, message), or None for any other capture line."""
    head, sep, body = line.partition(": ")
    if not sep or " " in head:
        return None
    try:
        return float(head), json.loads(body)
    except ValueError:
        return None


def _event(message: dict[str, Any]) -> dict[str, Any]:
    data = message.get("data", message) if "stream" in message else message
    return data if isinstance(data, dict) else {}


def _spans(events: Iterable[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per symbol, how far one loop moves its book update ids, aggregate trade ids and trade ids:
    the loop's own range, so that the next loop's first id follows its last one."""
    book: dict[str, list[int]] = defaultdict(list)
    agg: dict[str, list[int]] = defaultdict(list)
    trade: dict[str, list[int]] = defaultdict(list)
    for event in events:
        symbol, kind = str(event.get("s", "")), event.get("e")
        if kind == "depthUpdate":
            book[symbol] += [int(event["U"]), int(event["u"])]
        elif kind == "aggTrade":
            agg[symbol].append(int(event["a"]))
            trade[symbol] += [int(event["f"]), int(event["l"])]
        elif kind == "kline" and int(event["k"]["f"]) >= 0:
            trade[symbol] += [int(event["k"]["f"]), int(event["k"]["L"])]
        elif kind is None and "u" in event:  # bookTicker: ids of the book's sequence
            book.setdefault(symbol, [])
    span = {s: max(ids) - min(ids) + 1 if ids else 0 for s, ids in book.items()}
    return (
        span,
        {s: max(i) - min(i) + 1 for s, i in agg.items()},
        {s: max(i) - min(i) + 1 for s, i in trade.items()},
    )


def shift_event(event: dict[str, Any], loop: int, spans: tuple[dict[str, int], ...], period_ms: int) -> None:
    """Move one event (in place) to loop `loop`: ids by `loop` spans, times by `loop` periods."""
    book, agg, trade = spans
    symbol, kind = str(event.get("s", "")), event.get("e")
    dt = loop * period_ms
    if "E" in event:
        event["E"] += dt
    if kind == "depthUpdate":
        event["U"] += loop * book[symbol]
        event["u"] += loop * book[symbol]
    elif kind == "aggTrade":
        event["a"] += loop * agg[symbol]
        event["f"] += loop * trade[symbol]
        event["l"] += loop * trade[symbol]
        event["T"] += dt
    elif kind == "kline":
        k = event["k"]
        k["t"] += dt
        k["T"] += dt
        if int(k["f"]) >= 0:
            k["f"] += loop * trade.get(symbol, 0)
            k["L"] += loop * trade.get(symbol, 0)
    elif kind is None and "u" in event:
        event["u"] += loop * book.get(symbol, 0)


def loop_lines(lines: list[str], loops: int, period_ms: int = PERIOD_MS) -> Iterator[str]:
    """A WebSocket capture file's lines with its received frames played `loops` times: the other
    lines (connection opened, frames sent) once, first; loop n's frames with ids and times shifted
    n times (shift_event) and the receive times by n periods."""
    frames: list[tuple[float, dict[str, Any]]] = []
    for line in lines:
        received = _received(line) if line.strip() else None
        if received is None:
            if line.strip():
                yield line
        else:
            frames.append(received)
    spans = _spans(_event(message) for _, message in frames)
    for loop in range(loops):
        for ts, message in frames:
            shifted = json.loads(json.dumps(message)) if loop else message
            shift_event(_event(shifted), loop, spans, period_ms)
            yield f"{ts + loop * period_ms / 1000:.6f}: {json.dumps(shifted, separators=(',', ':'))}"


def _later(seconds: str, by_s: int) -> str:
    """A time in seconds as Kraken v1 writes it ("1618678133.626511"), `by_s` later, same digits."""
    return str(Decimal(seconds) + by_s)


def shift_kraken(message: list[Any], loop: int, period_ms: int) -> None:
    """Move one Kraken v1 data frame (in place) to loop `loop`: the trades' times and the book
    levels' times by `loop` periods. Prices, sizes and the book checksums ("c") are kept: each
    loop starts from the capture's own book snapshots, so every checksum holds again."""
    by_s = loop * period_ms // 1000
    channel = str(message[-2])
    if channel == "trade":
        for trade in message[1]:
            trade[2] = _later(trade[2], by_s)
    elif channel.startswith("book"):
        for payload in message[1:-2]:
            for key in ("as", "bs", "a", "b"):
                for level in payload.get(key, []):
                    level[2] = _later(level[2], by_s)


def kraken_loop_lines(lines: list[str], loops: int, period_ms: int = PERIOD_MS) -> Iterator[str]:
    """A Kraken v1 WebSocket capture's lines with its data frames played `loops` times: the other
    lines and the control frames (systemStatus, subscriptionStatus, heartbeats) once, first; loop
    n's data frames with times shifted n periods (shift_kraken) and the receive times likewise.

    Kraken v1 books carry no sequence numbers, only a CRC32 of the top 10 levels per update, and
    the capture opens each pair's book with a snapshot: every loop replays those snapshots, so
    each loop's updates and checksums apply to the book they were recorded on (a venue may send
    a new snapshot on a live subscription; ccxt and cryptofeed both reset the book on one)."""
    frames: list[tuple[str, float, list[Any]]] = []
    for line in lines:
        received = _received(line) if line.strip() else None
        if received is None or not isinstance(received[1], list):
            if line.strip():
                yield line
        else:
            frames.append((line, *received))
    if loops > 0:
        yield from (line for line, _, _ in frames)  # loop 0: the capture's own lines
    for loop in range(1, loops):
        for _, ts, message in frames:
            shifted = json.loads(json.dumps(message))
            shift_kraken(shifted, loop, period_ms)
            yield f"{ts + loop * period_ms / 1000:.6f}: {json.dumps(shifted, separators=(',', ':'))}"


def _is_kraken_frame(message: Any) -> bool:
    return isinstance(message, list)


@dataclass(frozen=True)
class VenueBench:
    """What the bench knows of one venue: its capture, how it loops, what cryptofeed calls it."""

    name: str  # trademesh's venue and cryptofeed's feed class (by --venue)
    prefix: str  # fixtures/exchange-captures/<prefix>.*
    loop: Callable[[list[str], int], Iterator[str]]
    symbols: str  # cryptofeed's names of the capture's markets
    channels: str  # cryptofeed's channels (its defines), comma separated
    ticker_marker: str  # text found once in each ticker frame of the looped capture
    trade_ids: bool  # the venue's trades carry ids (Kraken v1's do not: compared without)
    checksums: bool = False  # cryptofeed checks the book checksums (as trademesh's ccxt does)
    is_frame: Callable[[Any], bool] = lambda message: True  # a market frame (counted)


VENUES = {
    "binance": VenueBench(
        "binance",
        "BINANCE",
        loop_lines,
        "NKN-USDT,BLZ-ETH,LRC-BTC,RUNE-EUR",
        "trades,ticker,l2_book,candles",
        '@bookTicker","data"',
        True,
    ),
    "kraken": VenueBench(
        "kraken",
        "KRAKEN",
        kraken_loop_lines,
        "WAVES-EUR,XMR-USD,KSM-BTC,GRT-ETH,SC-EUR,ETH-CHF,OCEAN-BTC,OMG-USD,BTC-CHF,ADA-BTC",
        "trades,ticker,l2_book",
        ',"ticker","',
        False,
        True,
        _is_kraken_frame,
    ),
}


def looped_capture(venue: VenueBench, loops: int, into: Path) -> tuple[list[Path], int]:
    """The venue's capture with its WebSocket files looped (written once per loop count);
    (files, market frames)."""
    into.mkdir(parents=True, exist_ok=True)
    files = []
    frames = 0
    for source in sorted(CAPTURES.glob(f"{venue.prefix}.*")):
        target = into / source.name
        files.append(target)
        if ".ws." not in source.name:
            if not target.exists():
                target.write_text(source.read_text())
            continue
        if not target.exists():
            partial = target.with_suffix(".part")
            with partial.open("w") as out:
                for line in venue.loop(source.read_text().splitlines(), loops):
                    out.write(line + "\n")
            partial.rename(target)
        for line in target.read_text().splitlines():
            received = _received(line)
            frames += received is not None and venue.is_frame(received[1])
    return files, frames


# ---- the stand-in for cryptofeed: Binance's combined streams


class CombinedStreams(BinanceReplay):
    """Binance's stand-in, also serving combined streams as cryptofeed uses them: a connection to
    /stream?streams=a/b/c is subscribed to its streams by its URL and gets every frame wrapped as
    {"stream":..,"data":..} (the capture's own text).

    cryptofeed fetches a symbol's depth snapshot when its first update arrives (not before
    playback, as ccxt does), and the stand-in's snapshot is the book at its own position: so
    playback pauses after a symbol's first update until its snapshot has been served (`waiting`,
    the server's backlog), else the snapshot would be from far ahead of the client and it would
    skip every update in between."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.depth_sent: set[str] = set()

    def waiting(self) -> int:
        """Symbols whose first update went out and whose snapshot is not served yet."""
        return len(self.depth_sent - self.snapshots_served)

    def delivered(self, frame: WsFrame, topic: str) -> None:
        super().delivered(frame, topic)
        if self.is_book(topic):
            self.depth_sent.add(self.symbol_of(topic))

    def on_connect(self, connection: MockConnection) -> list[str]:
        if url_path(connection.path) == "/stream":
            query = dict(parse_qsl(urlsplit("//" + connection.path).query))
            for stream in query.get("streams", "").split("/"):
                if stream:
                    connection.subscribe(stream.lower())
        return super().on_connect(connection)

    def render(self, frame: WsFrame, topic: str, connection: MockConnection) -> str:
        if url_path(connection.path) != "/stream":
            return super().render(frame, topic, connection)
        if frame.text.startswith('{"stream"'):
            return frame.text
        return json.dumps({"stream": topic, "data": json.loads(frame.text)}, separators=(",", ":"))

    def ready(self, topics: set[str]) -> bool:
        return True


class KrakenV1(KrakenReplay):
    """Kraken's stand-in (v1 captures played to ccxt's v2 client), also serving WebSocket v1 as
    cryptofeed uses it: a connection to the host's root (wss://ws.kraken.com, where v2 is /v2)
    subscribes with {"event":"subscribe","pair":[...],"subscription":{"name":..}}, is answered
    with a subscriptionStatus per pair, and gets the captured frames as recorded (cryptofeed
    routes them by their channel and pair names, and checks the recorded checksums).

    cryptofeed applies a book update only after its snapshot (the capture's, at each loop's
    start), so playback waits until every captured topic is subscribed (`ready`)."""

    def waiting(self) -> int:
        return 0

    @staticmethod
    def _v1(connection: MockConnection) -> bool:
        return url_path(connection.path) == "/"

    def on_connect(self, connection: MockConnection) -> list[str]:
        if not self._v1(connection):
            return super().on_connect(connection)
        return ['{"connectionID":1,"event":"systemStatus","status":"online","version":"1.8.3"}']

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        if not self._v1(connection):
            return super().on_client_message(connection, text)
        request = json.loads(text)
        if request.get("event") == "ping":
            return [json.dumps({"event": "pong", "reqid": request.get("reqid")})]
        subscription = request.get("subscription") or {}
        name = str(subscription.get("name"))
        replies = []
        for pair in request.get("pair") or []:
            connection.subscribe(f"{name}:{pair}")
            ids = [
                key[1] for key, route in self.routes.items() if (route.pair, route.channel) == (pair, name)
            ]
            channel_id = ids[0] if ids else 0
            channel_name = f"book-{self.depth}" if name == "book" else name
            status = {"channelID": channel_id, "channelName": channel_name, "event": "subscriptionStatus"}
            status |= {"pair": pair, "status": "subscribed", "subscription": subscription}
            replies.append(json.dumps(status))
        return replies

    def render(self, frame: WsFrame, topic: str, connection: MockConnection) -> str:
        return frame.text if self._v1(connection) else super().render(frame, topic, connection)

    def ready(self, topics: set[str]) -> bool:
        return {f"{route.channel}:{route.pair}" for route in self.routes.values()} <= topics


STANDINS: dict[str, Callable[[Any], Any]] = {"binance": CombinedStreams, "kraken": KrakenV1}
STANDIN_FOR = ("cryptofeed", "trademesh")


def _spec(venue: str) -> Any:
    """The venue's LiveSpec (its `standin` names the stand-in module `--replay` loads)."""
    import importlib

    from trademesh.venues.registry import VENUES as REGISTRY

    return importlib.import_module(REGISTRY[venue].module).SPEC


async def serve_standin(venue: str, side: str, files: list[Path]) -> None:
    """`market_data_peer.py standin VENUE SIDE FILES`: the stand-in alone, in a process of its own;
    prints its URL, then "played" once the session has played out; runs until terminated.

    For cryptofeed, the bench's subclasses (its formats too) and playback at once. For trademesh,
    the venue's own stand-in (its LiveSpec's `standin`: the adapter `--replay` runs inside the
    venue) served to a venue whose config points at it (`replay_url`), so the venue process is the
    production connector; playback starts when a line "release" comes on stdin (the bench sends it
    once ingest's subscriptions are in), and, like cryptofeed's, never waits on the venue's
    subscribers (the only back-pressure is the WebSocket's)."""
    from trademesh.venues.replay.capture import load_capture
    from trademesh.venues.replay.loader import load_adapter
    from trademesh.venues.replay.server import ReplayOptions, ReplayServer

    if side == "trademesh":
        adapter = load_adapter(_spec(venue).standin, files)
    else:
        adapter = STANDINS[venue](load_capture(files))
        waiting = adapter.waiting
    server = ReplayServer(adapter, ReplayOptions(tuple(files)))
    if side != "trademesh":
        server.backlog = lambda: 1_000_000 if waiting() else 0
    url = await server.start()
    print(f"standin {url}", flush=True)
    if side == "trademesh":
        line = await asyncio.to_thread(sys.stdin.readline)
        if line.strip() != "release":
            sys.exit(f"the stand-in expected a line 'release', got {line!r}")
    server.release()
    while not server.exhausted:  # noqa: ASYNC110 (the stand-in has no event for it)
        await asyncio.sleep(0.05)
    print(f"played {server.frames_sent}", flush=True)
    await asyncio.Event().wait()


# ---- measuring


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def side_streams(side: str, venue: str) -> str:
    """The Redis key pattern of a side's streams: trademesh's ingest writes md.{<venue>}.<channel>,
    cryptofeed's backend <kind>-<VENUE>-<symbol>. Only those are read: another process's streams
    in the same database (a test suite's md.{sim}.*) are not the run's."""
    return f"md.{{{venue}}}.*" if side in OURS else f"*-{venue.upper()}-*"


async def _streams(redis: Any, match: str) -> list[str]:
    return sorted({_text(n) async for n in redis.scan_iter(match=match, count=1000, _type="STREAM")})


async def _entries_added(redis: Any, match: str) -> int:
    total = 0
    for name in await _streams(redis, match):
        total += int((await redis.xinfo_stream(name))["entries-added"])
    return total


async def wait_written(
    redis: Any,
    deadline: float,
    played: Callable[[], Awaitable[bool]],
    cpu_s: Callable[[], float],
    match: str = "*",
) -> int:
    """Wait until the side has handled the whole session (`played`), and then Redis has had no
    new entry and the side's processes (`cpu_s`) have been idle for QUIET_S; the entries added.
    (A side's writes may pause for seconds mid-run: cryptofeed's Redis writers wait while its
    feed drains a backlog of frames without yielding, then pack one pipeline of all of it.)"""
    last, changed, cpu_mark = -1, time.monotonic(), cpu_s()
    while time.monotonic() < deadline:
        count = await _entries_added(redis, match)
        now = time.monotonic()
        if count != last:
            last, changed, cpu_mark = count, now, cpu_s()
        elif count > 0 and now - changed >= QUIET_S:
            used = cpu_s() - cpu_mark
            if used < IDLE_SHARE * (now - changed) and await played():
                return count
            if used >= IDLE_SHARE * (now - changed):  # busy: not written yet
                changed, cpu_mark = now, cpu_s()
        await asyncio.sleep(0.25)
    raise TimeoutError(f"entries still arriving after {RUN_TIMEOUT_S} s ({last})")


async def written_span_s(redis: Any, match: str = "*") -> float:
    """Seconds from the first entry written to the last (Redis entry ids are their ms times)."""
    first, last = float("inf"), 0.0
    for name in await _streams(redis, match):
        head = await redis.xrange(name, count=1)
        tail = await redis.xrevrange(name, count=1)
        if head:
            first = min(first, int(_text(head[0][0]).split("-")[0]))
            last = max(last, int(_text(tail[0][0]).split("-")[0]))
    return (last - first) / 1000


class Started:
    """A child process with its CPU baseline."""

    def __init__(self, name: str, process: subprocess.Popen[str] | ChildProcess) -> None:
        self.name, self.process = name, process
        self.cpu0 = process_cpu_s(process.pid)

    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid) - self.cpu0

    def stop(self) -> None:
        common.stop_process(self.process, 10.0, None)


def py_spy_binary() -> str:
    """py-spy: a tool for profiling, not a project dependency (the project's venv, the peer's, or PATH)."""
    for candidate in (Path(sys.executable).with_name("py-spy"), HERE / ".peer-venv" / "bin" / "py-spy"):
        if candidate.exists():
            return str(candidate)
    return "py-spy"


def start_profiles(started: list[Started], out: Path | None, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy on each process for `seconds` (raw collapsed stacks: bench/profile_summary.py reads them)."""
    if out is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    profilers = []
    for s in started:
        if s.name == "standin":
            continue
        command = [py_spy_binary(), "record", "--pid", str(s.process.pid), "--duration", str(round(seconds))]
        command += ["--format", "raw", "--rate", "200", "--output", str(out / f"{s.name}.raw")]
        profilers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return profilers


def _popen_until(
    command: list[str], marker: str, log: Path, timeout_s: float = 120.0, stdin: int | None = None
) -> tuple[Any, str]:
    """Start a process and wait for a stdout line starting with `marker`; (process, that line)."""
    process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{command[:3]} exited with {process.wait()} (see {log})")
        if line.startswith(marker):
            return process, line.strip()
    process.kill()
    raise TimeoutError(f"{command[:3]} printed no {marker!r} line within {timeout_s} s")


async def run_trademesh(
    venue_bench: VenueBench,
    files: list[Path],
    redis_url: str,
    redis: Any,
    work: Path,
    profile: Path | None,
    profile_s: float,
    flush_ms: float | None = None,
    standin: str = "apart",
    direct: bool = False,
) -> dict[str, Any]:
    """One trademesh run: the venue (with the stand-in `inside` its process, `--replay`, or `apart`
    in a process of its own, the venue's config pointing at it: `replay_url`) and ingest; or,
    `direct`, the venue writing its own streams (`--bus-direct`) and no ingest."""
    name = venue_bench.name
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    toml = "" if flush_ms is None else f"flush_ms = {flush_ms}\n"  # else the venue's default
    started: list[Started] = []
    server: subprocess.Popen[str] | None = None
    try:
        if standin == "apart":
            command = [sys.executable, str(SELF), "standin", name, "trademesh", *map(str, files)]
            server, line = _popen_until(command, "standin ", work / "standin.log", 300, subprocess.PIPE)
            started.append(Started("standin", server))
            symbols = ", ".join(f'"{s.replace("-", "/")}"' for s in venue_bench.symbols.split(","))
            toml += f'replay_url = "{line.split()[1]}"\nsymbols = [{symbols}]\n'
            replay: list[str] = []
        else:
            replay = ["--replay", *map(str, files)]
        config: list[str] = []
        if toml:
            (work / "venue.toml").write_text(toml, encoding="utf-8")
            config = ["--config", str(work / "venue.toml")]
        bus = ["--bus-direct", "--redis-url", redis_url] if direct else []
        venue = start_service(
            ["venue", name, "--port", "0", "--metrics-port", "-1", *config, *replay, *bus],
            env=env,
            stderr=(work / "venue.log").open("w"),
            timeout_s=300,
        )
        started.append(Started("venue", venue.process))
        if not direct:
            started.append(Started("ingest", _start_ingest(name, venue.address, redis_url, env, work)))
        if server is not None:  # the venue's subscribers are in: the stand-in may play
            await subscribers_settled(venue.address)
            assert server.stdin is not None
            server.stdin.write("release\n")
            server.stdin.flush()
            played_line = _lines_seen(server, "played")
        profilers = start_profiles(started, profile, profile_s)
        log = work / "venue.log"

        async def played() -> bool:
            return played_line.is_set() if server is not None else _played(log)

        busy = lambda: sum(s.cpu_s() for s in started if s.name != "standin")  # noqa: E731
        match = side_streams("trademesh", name)
        entries = await wait_written(redis, time.monotonic() + RUN_TIMEOUT_S, played, busy, match)
        for profiler in profilers:
            profiler.wait()
        cpu = {s.name: s.cpu_s() for s in started}
    finally:
        for s in reversed(started):
            s.stop()
    return {"cpu_s": cpu, "entries": entries}


def _start_ingest(name: str, address: str, redis_url: str, env: dict[str, str], work: Path) -> Any:
    """`trademesh ingest` following the venue at `address` (market data only, as cryptofeed)."""
    command = ["ingest", "--venue", f"{name}={address}", "--redis-url", redis_url, "--port", "0"]
    command += ["--metrics-port", "-1", "--no-executions", "--source", "bench"]
    ingest = start_service(command, env=env, stderr=(work / "ingest.log").open("w"), timeout_s=120)
    return ingest.process


SETTLE_S = 0.5  # the venue's subscribers are taken as in once their count has held this long


async def subscribers_settled(address: str, timeout_s: float = 60.0) -> int:
    """Wait until the venue has a market-data subscriber and no new one for SETTLE_S (ingest opens
    one Subscribe stream per channel, one after another); the count (Admin/GetStatus)."""
    import grpc

    from trademesh.admin.v1 import admin_pb2 as admin
    from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    seen, since = 0, loop.time()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = admin_grpc.AdminStub(channel)
        while loop.time() < deadline:
            status = await stub.GetStatus(admin.GetStatusRequest(), timeout=10)
            if status.subscriber_count != seen:
                seen, since = status.subscriber_count, loop.time()
            elif seen > 0 and loop.time() - since >= SETTLE_S:
                return seen
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the venue at {address} had {seen} subscribers after {timeout_s} s")


def _played(venue_log: Path) -> bool:
    """The venue's stand-in logs its summary once the session has played out (and it never runs
    ahead of the venue's subscriber: it waits on the venue's fan-out backlog)."""
    return "replay summary:" in venue_log.read_text(errors="replace")


def ticker_frames(venue: VenueBench, files: list[Path]) -> int:
    """The ticker frames in the session: every one is a ticker entry of cryptofeed's."""
    ws = [f for f in files if ".ws." in f.name]
    return sum(f.read_text().count(venue.ticker_marker) for f in ws)


def _lines_seen(process: subprocess.Popen[str], marker: str) -> threading.Event:
    """An event set once the process prints a line starting with `marker` (a reader thread)."""
    seen = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(marker):
                seen.set()

    threading.Thread(target=read, daemon=True).start()
    return seen


async def run_cryptofeed(
    venue: VenueBench,
    files: list[Path],
    db: int,
    redis: Any,
    work: Path,
    profile: Path | None,
    profile_s: float,
) -> dict[str, Any]:
    tickers = ticker_frames(venue, files)
    match = side_streams("cryptofeed", venue.name)
    standin_cmd = [sys.executable, str(SELF), "standin", venue.name, "cryptofeed", *map(str, files)]
    process, line = _popen_until(standin_cmd, "standin ", work / "standin.log", 300)
    started = [Started("standin", process)]
    try:
        url = line.split()[1]
        peer_cmd = [str(PEER_PYTHON), str(PEER_RUNNER), "--standin", url, "--redis-db", str(db)]
        peer_cmd += ["--venue", venue.name, "--symbols", venue.symbols, "--channels", venue.channels]
        peer_cmd += ["--log", str(work / "feedhandler.log"), *(["--checksums"] if venue.checksums else [])]
        peer, _ = _popen_until(peer_cmd, "ready", work / "cryptofeed.log", 120)
        started.append(Started("cryptofeed", peer))
        profilers = start_profiles(started, profile, profile_s)
        played = _lines_seen(process, "played")

        async def handled() -> bool:
            """cryptofeed has written the session's last ticker (the stand-in runs ahead of it)."""
            if not played.is_set():
                return False
            names = [n for n in await _streams(redis, match) if n.startswith("ticker-")]
            return bool(sum([await redis.xlen(n) for n in names]) >= tickers)

        peer_cpu = started[-1].cpu_s
        entries = await wait_written(redis, time.monotonic() + RUN_TIMEOUT_S, handled, peer_cpu, match)
        for profiler in profilers:
            profiler.wait()
        cpu = {s.name: s.cpu_s() for s in started}
    finally:
        for s in reversed(started):
            s.stop()
    return {"cpu_s": cpu, "entries": entries}


# ---- reading back what each side wrote


async def _all_entries(redis: Any, name: str) -> list[dict[bytes, bytes]]:
    out: list[dict[bytes, bytes]] = []
    start = "-"
    while True:
        batch = await redis.xrange(name, min=start, count=10_000)
        out += [fields for _, fields in batch]
        if len(batch) < 10_000:
            return out
        start = "(" + _text(batch[-1][0])


def _d(value: Any) -> str:
    """A decimal's canonical text (trailing zeros dropped), for comparing sides field by field."""
    text = format(Decimal(_text(value)).normalize(), "f")
    return "0" if text in ("-0", "0") else text


async def read_trademesh(redis: Any, trade_ids: bool = True, match: str = "md.*") -> dict[str, Any]:
    from trademesh.common.v1 import common_pb2
    from trademesh.core.platform.bus.codec import decode

    read = Readback()
    for name in await _streams(redis, match):
        for fields in await _all_entries(redis, name):
            for event in decode(fields).market.events:
                symbol, kind = event.symbol, event.WhichOneof("payload")
                if kind == "trade":
                    t = event.trade
                    side = "buy" if t.taker_side == common_pb2.SIDE_BUY else "sell"
                    ms = str(event.ts_event_ns // 1_000_000)
                    trade_id = t.trade_id if trade_ids else ""
                    read.trades.append((symbol, trade_id, _d(t.price), _d(t.size), side, ms))
                elif kind == "ticker":
                    read.tickers[symbol].append((_d(event.ticker.best_bid), _d(event.ticker.best_ask)))
                elif kind in ("book_snapshot", "book_delta"):
                    book = getattr(event, kind)
                    if kind == "book_snapshot":
                        read.snapshots += 1
                        read.books[symbol] = {"bid": {}, "ask": {}}
                    else:
                        read.book_updates[symbol] += 1
                    for side, levels in (("bid", book.bids), ("ask", book.asks)):
                        for level in levels:
                            _set_level(read.books[symbol][side], level.price, level.size)
    return read.summary()


async def read_cryptofeed(redis: Any, trade_ids: bool = True, match: str = "*") -> dict[str, Any]:
    read = Readback()
    for name in await _streams(redis, match):
        kind = name.split("-", 1)[0]
        for raw in await _all_entries(redis, name):
            f = {_text(k): _text(v) for k, v in raw.items()}
            symbol = f.get("symbol", "").replace("-", "/")
            if kind == "trades":
                trade_id = f["id"] if trade_ids else ""
                read.trades.append((symbol, trade_id, _d(f["price"]), _d(f["amount"]), f["side"], _ms(f)))
            elif kind == "ticker":
                read.tickers[symbol].append((_d(f["bid"]), _d(f["ask"])))
            elif kind == "book":
                if "delta" in f:
                    read.book_updates[symbol] += 1
                    for side, levels in json.loads(f["delta"]).items():
                        for price, size in levels:
                            _set_level(read.books[symbol][side], price, size)
                elif "book" in f:
                    read.snapshots += 1
                    whole = json.loads(f["book"])
                    read.books[symbol] = {"bid": {}, "ask": {}}
                    for side in ("bid", "ask"):
                        for price, size in whole[side].items():
                            _set_level(read.books[symbol][side], price, size)
    return read.summary()


def _ms(fields: dict[str, str]) -> str:
    """cryptofeed's timestamp (seconds) in whole ms, rounded down as ccxt reads Kraken's µs times."""
    return str(int(Decimal(fields["timestamp"]) * 1000 // 1))


def _set_level(side: dict[str, str], price: Any, size: Any) -> None:
    p, s = _d(price), _d(size)
    if s == "0":
        side.pop(p, None)
    else:
        side[p] = s


@dataclass
class Readback:
    """What one side wrote to Redis, read back in comparable form (both readers fill one)."""

    trades: list[tuple[str, ...]] = field(default_factory=list)  # a multiset: Kraken's have no ids
    tickers: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    books: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    book_updates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    snapshots: int = 0

    def summary(self) -> dict[str, Any]:
        top = {}
        for symbol, book in sorted(self.books.items()):
            bid = max(book["bid"], key=Decimal) if book["bid"] else None
            ask = min(book["ask"], key=Decimal) if book["ask"] else None
            top[symbol] = [bid, book["bid"].get(bid or ""), ask, book["ask"].get(ask or "")]
        return {
            "trades": sorted(self.trades),
            "tickers": {s: v for s, v in sorted(self.tickers.items())},
            "book_updates": dict(sorted(self.book_updates.items())),
            "book_snapshots": self.snapshots,
            "top_of_book": top,
            "books": self.books,
        }


def _books_agree(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, bool]:
    """Per symbol, whether the final books agree level for level over the range trademesh
    publishes (a book from a depth-limited snapshot is published down to its last level only)."""
    agree = {}
    for symbol in sorted(set(ours) | set(theirs)):
        a, b = ours.get(symbol), theirs.get(symbol)
        if a is None or b is None:
            agree[symbol] = False
            continue
        low = min(map(Decimal, a["bid"]), default=Decimal("Infinity"))
        high = max(map(Decimal, a["ask"]), default=Decimal(0))
        bids = {p: s for p, s in b["bid"].items() if Decimal(p) >= low}
        asks = {p: s for p, s in b["ask"].items() if Decimal(p) <= high}
        agree[symbol] = a["bid"] == bids and a["ask"] == asks
    return agree


def cross_check(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """What both sides wrote, compared: counts, and whether they agree field for field."""
    trades_a, trades_b = Counter(map(tuple, ours["trades"])), Counter(map(tuple, theirs["trades"]))
    tickers_a, tickers_b = ours["tickers"], theirs["tickers"]
    return {
        "trades": [trades_a.total(), trades_b.total()],
        "trades_equal": trades_a == trades_b,
        "trades_only_trademesh": sorted((trades_a - trades_b).elements())[:5],
        "trades_only_cryptofeed": sorted((trades_b - trades_a).elements())[:5],
        "tickers": [sum(map(len, tickers_a.values())), sum(map(len, tickers_b.values()))],
        "tickers_equal": tickers_a == tickers_b,
        "book_updates": [ours["book_updates"], theirs["book_updates"]],
        "book_snapshots": [ours["book_snapshots"], theirs["book_snapshots"]],
        "top_of_book_equal": ours["top_of_book"] == theirs["top_of_book"],
        "books_equal_in_published_range": _books_agree(ours["books"], theirs["books"]),
        "top_of_book": [ours["top_of_book"], theirs["top_of_book"]],
    }


# ---- the benchmark


async def one_run(
    venue: VenueBench, side: str, files: list[Path], frames: int, args: argparse.Namespace
) -> dict[str, Any]:
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    work = common.workdir()
    async with common.flushed_redis(aioredis.from_url(redis_url)) as redis:
        load_before = os.getloadavg()
        machine = common.SystemCpu()
        wall0 = time.monotonic()
        if side in OURS:
            run = await run_trademesh(
                venue,
                files,
                redis_url,
                redis,
                work,
                args.py_spy,
                args.py_spy_seconds,
                args.flush_ms,
                args.trademesh_standin,
                direct=side == "direct",
            )
        else:
            run = await run_cryptofeed(
                venue, files, args.redis_db, redis, work, args.py_spy, args.py_spy_seconds
            )
        wall = time.monotonic() - wall0
        machine_pct = machine.percent()
        match = side_streams(side, venue.name)
        span = await written_span_s(redis, match)
        read = read_trademesh if side in OURS else read_cryptofeed
        written = await read(redis, venue.trade_ids, match)
        main = sum(v for k, v in run["cpu_s"].items() if k != "standin")
        return {
            "side": side,
            "frames": frames,
            "entries": run["entries"],
            "cpu_s": run["cpu_s"],
            "cpu_s_per_1000": main / frames * 1000,
            "standin_cpu_s_per_1000": run["cpu_s"].get("standin", float("nan")) / frames * 1000,
            "seconds": span,
            "frames_per_s": frames / span if span > 0 else float("nan"),
            "wall_s": wall,
            "machine_cpu_pct": machine_pct,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "events": events_written(written),
            "work": str(work),
            "log_trouble": log_trouble(work),
            "written": written,
        }


# What a side logs when its book breaks: trademesh's venue ("book out of sync, rebuilding", "book
# sequence broken ... resubscribing"), cryptofeed ("BadChecksum", "encountered an exception,
# reconnecting"), the stand-in (a client reconnected mid-replay).
LOG_TROUBLE = re.compile(r"out of sync|sequence broken|resubscrib|checksum|reconnect|Traceback|ERROR", re.I)


def log_trouble(work: Path) -> dict[str, list[str]]:
    """Per log file of a run, its lines telling of a checksum or sequence error, a resync or a
    reconnect (the first 5; the replay's summary line is left out: it counts reconnects, 0 here)."""
    found: dict[str, list[str]] = {}
    for log in sorted(work.glob("*.log")):
        lines = [
            line[:300]
            for line in log.read_text(errors="replace").splitlines()
            if LOG_TROUBLE.search(line) and "replay summary:" not in line
        ]
        if lines:
            found[log.name] = lines[:5]
    return found


def events_written(written: dict[str, Any]) -> int:
    """The events a side wrote (trades, tickers, book updates and snapshots), whatever the entries
    that carried them: trademesh's venue batches its frames' events (flush_ms), so how many bus
    entries a run writes depends on timing, and only the events tell a complete run."""
    tickers = sum(map(len, written["tickers"].values()))
    books = sum(written["book_updates"].values()) + written["book_snapshots"]
    return int(len(written["trades"]) + tickers + books)


def with_standin(medians: dict[str, float]) -> float:
    """A side's CPU per 1,000 frames with its stand-in's (nothing to add when the stand-in ran
    inside the side's own process: trademesh's `--trademesh-standin inside`)."""
    standin = medians["standin_cpu_s_per_1000"]
    return medians["cpu_s_per_1000"] + (0.0 if math.isnan(standin) else standin)


def pair_ratios(runs: list[dict[str, Any]], ours: str = "trademesh") -> list[float]:
    """`ours` ÷ cryptofeed CPU per frame of each repeat whose two runs are both complete."""
    by_repeat: dict[int, dict[str, float]] = defaultdict(dict)
    for run in runs:
        if run.get("complete", True):
            by_repeat[run["repeat"]][run["side"]] = run["cpu_s_per_1000"]
    return [
        pair[ours] / pair["cryptofeed"]
        for _, pair in sorted(by_repeat.items())
        if {ours, "cryptofeed"} <= set(pair)
    ]


def _row(run: dict[str, Any]) -> list[Any]:
    cpu = run["cpu_s"]
    return [
        run["side"],
        run["frames"],
        f"{run['entries']:,}" + ("" if run.get("complete", True) else " (short)"),
        " + ".join(f"{k} {v:.1f}" for k, v in cpu.items()),
        run["cpu_s_per_1000"],
        run["standin_cpu_s_per_1000"],
        run["frames_per_s"],
        run["seconds"],
        f"{run['load_before'][0]:.1f}",
        run["machine_cpu_pct"],
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venue", choices=sorted(VENUES), default="binance", help="(default binance)")
    parser.add_argument("--loops", type=int, default=1000, help="times the capture is played (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side, alternating (default 3)")
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database, emptied (default 12)")
    parser.add_argument(
        "--sides",
        default=",".join(SIDES),
        help="trademesh (venue + ingest), direct (the venue's --bus-direct), cryptofeed: any of them",
    )
    parser.add_argument("--captures", type=Path, help="where the looped capture goes (default /tmp/...)")
    parser.add_argument("--name", default="market_data_peer", help="bench/results/<name>.json")
    parser.add_argument("--py-spy", type=Path, help="profile each side's processes into DIR/<name>.raw")
    parser.add_argument(
        "--flush-ms",
        type=float,
        help="the venue's flush_ms (trademesh/venues/live/config.py; default: its own)",
    )
    parser.add_argument("--py-spy-seconds", type=float, default=20.0, help="from the start (default 20)")
    parser.add_argument(
        "--trademesh-standin",
        choices=("apart", "inside"),
        default="apart",
        help="trademesh's stand-in in a process of its own, as cryptofeed's (the venue's config "
        "replay_url; default), or inside the venue (--replay: counted in the venue's CPU)",
    )
    args = parser.parse_args()
    sides = [s for s in args.sides.split(",") if s]
    if "cryptofeed" in sides and not PEER_PYTHON.exists():
        sys.exit(f"{PEER_PYTHON} is missing: run `sh bench/peer_setup.sh` first")
    venue = VENUES[args.venue]
    into = args.captures or Path(f"/tmp/trademesh-peer-capture-{venue.name}-{args.loops}")
    t0 = time.monotonic()
    files, frames = looped_capture(venue, args.loops, into)
    print(f"capture: {frames:,} frames in {into} ({time.monotonic() - t0:.1f} s)")
    with common.claimed_redis_db(args.redis_db):
        await measure(venue, sides, files, frames, args)


async def measure(
    venue: VenueBench, sides: list[str], files: list[Path], frames: int, args: argparse.Namespace
) -> None:
    """The runs, alternating sides, their medians and ratios, and the result file."""
    runs: list[dict[str, Any]] = []
    headers = ["side", "frames", "entries", "CPU s", "CPU s/1k", "stand-in/1k", "frames/s", "s"]
    headers += ["load", "mach %"]
    for repeat in range(args.repeats):
        for side in sides:
            run = await one_run(venue, side, files, frames, args)
            run["repeat"] = repeat
            runs.append(run)
            common.print_table(headers, [_row(run)])
            if run["log_trouble"]:
                print(f"{side}'s logs tell of trouble: {json.dumps(run['log_trouble'], indent=1)}")
    for side in sides:  # a run that wrote less than its side's others did less work: not counted
        most = max(r["events"] for r in runs if r["side"] == side)
        for r in runs:
            if r["side"] == side:
                r["complete"] = r["events"] >= COMPLETE_SHARE * most
    by_side = {s: [r for r in runs if r["side"] == s and r["complete"]] for s in sides}
    medians = {
        s: {
            key: common.median([r[key] for r in rs])
            for key in ("cpu_s_per_1000", "standin_cpu_s_per_1000", "frames_per_s")
        }
        for s, rs in by_side.items()
    }
    print()
    common.print_table(headers, [_row(r) for r in runs])
    print(f"\nmedians: {json.dumps(medians)}")
    summary: dict[str, Any] = {"medians": medians}
    if "cryptofeed" in sides:
        for side in [s for s in OURS if s in sides]:
            summary[side] = _compared(side, runs, medians, by_side)
    if set(OURS) <= set(sides):
        summary["direct_vs_ingest_cpu_ratio"] = (
            medians["direct"]["cpu_s_per_1000"] / medians["trademesh"]["cpu_s_per_1000"]
        )
    for run in runs:
        written = run.pop("written")
        written.pop("books")
        run["written_counts"] = {
            "trades": len(written["trades"]),
            "tickers": sum(map(len, written["tickers"].values())),
            "tickers_by_symbol": {symbol: len(rows) for symbol, rows in written["tickers"].items()},
            "book_updates": written["book_updates"],
            "book_snapshots": written["book_snapshots"],
        }
    payload = {
        "benchmark": "market_data_peer",
        "venue": venue.name,
        "command": common.command_line(),
        "when": common.now_iso(),
        "source": common.source_version(),
        "machine": common.machine(),
        "loops": args.loops,
        "frames": frames,
        "peer": _peer_version(),
        "runs": runs,
        **summary,
    }
    print(f"\nwritten: {common.write_result(args.name, payload)}")


def _compared(
    side: str,
    runs: list[dict[str, Any]],
    medians: dict[str, dict[str, float]],
    by_side: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """One of trademesh's sides against cryptofeed: the ratios and the cross-check, printed."""
    ours, theirs = medians[side], medians["cryptofeed"]
    compared: dict[str, Any] = {
        "cpu_ratio": ours["cpu_s_per_1000"] / theirs["cpu_s_per_1000"],
        "cpu_ratio_standin_on_both": with_standin(ours) / with_standin(theirs),
        "pair_cpu_ratios": pair_ratios(runs, side),
        "throughput_ratio": ours["frames_per_s"] / theirs["frames_per_s"],
        "cross_check": cross_check(by_side[side][-1]["written"], by_side["cryptofeed"][-1]["written"]),
    }
    check = compared["cross_check"]
    print(
        f"\n{side}: CPU per event {side} / cryptofeed: {compared['cpu_ratio']:.2f} "
        f"(pairs {', '.join(f'{r:.2f}' for r in compared['pair_cpu_ratios'])}; "
        f"with the stand-in counted on both sides: {compared['cpu_ratio_standin_on_both']:.2f}); "
        f"throughput ratio {compared['throughput_ratio']:.3f}"
    )
    print(
        f"cross-check: trades {check['trades']} equal={check['trades_equal']}; "
        f"tickers {check['tickers']} equal={check['tickers_equal']}; "
        f"book updates {check['book_updates']}; "
        f"snapshots {check['book_snapshots']}; top of book equal={check['top_of_book_equal']}"
    )
    return compared


def _peer_version() -> str:
    if not PEER_PYTHON.exists():
        return "-"
    code = (
        "import importlib.metadata as m; print(', '.join(f'{n} {m.version(n)}' for n in "
        "('cryptofeed', 'websockets', 'aiohttp', 'yapic.json', 'uvloop', 'redis', 'order_book')))"
    )
    return subprocess.run([str(PEER_PYTHON), "-c", code], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "standin":
        import logging

        import uvloop

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

        if len(sys.argv) < 5 or sys.argv[2] not in VENUES or sys.argv[3] not in STANDIN_FOR:
            sys.exit(f"usage: {SELF.name} standin {{{','.join(VENUES)}}} {{{','.join(STANDIN_FOR)}}} FILE...")
        uvloop.run(serve_standin(sys.argv[2], sys.argv[3], [Path(p) for p in sys.argv[4:]]))
    else:
        asyncio.run(main())
