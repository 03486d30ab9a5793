"""The closed bars of one timeframe from every venue's bar stream (bars.{<venue>}.<timeframe>).

The leading Overwatch reads every bar stream whole (XREAD, no consumer group): its state is
the regime of every market, in memory, so it needs every bar. A stream found (at start, or
later by a periodic SCAN: a venue that starts trading) is read from its first retained entry:
the bars already there warm its markets (the stream holds the bar service's retention, hours of
1m bars at the mesh's rates, more than the 100-bar warm-up and most of the 500-bar long-run
memory). The entries up to the stream's last one when it was found are the warm-up (`Read.warm`):
their regime changes are history and are not published one by one (a leader, once warm,
publishes what the bus is owed of them: trademesh.core.overwatch.resume).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.reads import read_after, read_back
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt

__all__ = ["BarFeed", "Read", "entry_position", "is_warm"]

_START = "0-0"


def entry_position(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("1700000000000-3") as a comparable (milliseconds, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def is_warm(entry_id: str, warm_until: tuple[int, int] | None) -> bool:
    """Whether an entry was on its stream when the stream was found (so: warm-up history)."""
    return warm_until is not None and entry_position(entry_id) <= warm_until


@dataclass(frozen=True, slots=True)
class Read:
    """The bars of one stream's entry."""

    stream: str
    entry_id: str
    bars: tuple[bus.Bar, ...]
    warm: bool


class BarFeed:
    def __init__(self, redis: BusRedis, timeframe: Timeframe, batch: int = 500, block_ms: int = 1000) -> None:
        self._redis = redis  # redis.asyncio.Redis
        self.timeframe = timeframe
        self.pattern = f"bars.*.{timeframe.label}"
        self._batch, self._block_ms = batch, block_ms
        self._positions: dict[str, str] = {}  # stream -> id of the last entry read
        self._warm_until: dict[str, tuple[int, int]] = {}
        self.undecodable = 0  # entries skipped as not an Envelope of bars

    @property
    def streams(self) -> list[str]:
        return sorted(self._positions)

    @property
    def warming(self) -> bool:
        """Some stream's warm-up entries are not all read yet."""
        return any(
            entry_position(self._positions[stream]) < until for stream, until in self._warm_until.items()
        )

    async def discover(self) -> list[str]:
        """Look for new bar streams of the timeframe; the new ones, each to be read from its start."""
        found = []
        async for key in self._redis.scan_iter(match=self.pattern, count=1000, _type="STREAM"):
            stream = key.decode() if isinstance(key, bytes) else str(key)
            if stream in self._positions or not stream.endswith(f".{self.timeframe.label}"):
                continue
            last = await read_back(self._redis, stream, count=1)
            if last:
                self._warm_until[stream] = entry_position(_text(last[0][0]))
            self._positions[stream] = _START
            found.append(stream)
        return sorted(found)

    async def read(self) -> list[Read]:
        """The next entries of every stream (waiting up to block_ms for one), oldest first per stream."""
        if not self._positions:
            return []
        reply = await read_after(self._redis, dict(self._positions), count=self._batch, block=self._block_ms)
        if not reply:
            # Nothing more on any stream: a warm-up mark not reached never will be (its stream was
            # deleted, or recreated with lower ids), and must not hold readiness back.
            self._warm_until.clear()
        reads: list[Read] = []
        for raw_stream, entries in reply or ():
            stream = _text(raw_stream)
            reads.extend(self._reads(stream, entries))
        return reads

    def _reads(self, stream: str, entries: Iterable[tuple[Any, dict[bytes, bytes]]]) -> list[Read]:
        reads = []
        until = self._warm_until.get(stream)
        for raw_id, fields in entries:
            entry_id = _text(raw_id)
            self._positions[stream] = entry_id
            try:
                envelope = decode(fields)
            except Corrupt:
                self.undecodable += 1
                continue
            if envelope.WhichOneof("body") != "bars":
                self.undecodable += 1
                continue
            reads.append(Read(stream, entry_id, tuple(envelope.bars.bars), is_warm(entry_id, until)))
        return reads


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
