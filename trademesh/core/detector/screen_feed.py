"""The live detector's ear on the Screener: the results of the screens its screen-driven
strategies follow, on the bus streams `screens.<name>` (bus.v1.Envelope.screen_result), handed to
each strategy's roster (trademesh.core.detector.screens), whose changes the shell carries out (patches
started and retired: trademesh.core.detector.app).

At start every result still on a stream (the Screener keeps about a thousand) is read in order and
replayed through the roster: the set is then what a detector that had followed the screen all
along would hold, holds included, and the patches the start found (restored from the store) are
reconciled with it once. Then the streams are followed from their last entry read (XREAD,
blocking up to a second), and after each read the leaving patches whose position is now flat
retire (`settle`). A stream not there yet (no Screener, or not evaluated yet) is read once it is.

The detector reads the results, not the Screener's code (the services meet through contracts).
Redis away: said once, retried with backoff; the patches run on as they are meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from trademesh.core.detector.metrics import SCREEN_RESULTS
from trademesh.core.detector.screens import Ranking, RosterChange, ScreenRoster
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.follow import read_on
from trademesh.core.platform.bus.names import screens_stream
from trademesh.core.platform.bus.reads import read_after, read_range
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt

__all__ = ["Apply", "ScreenRosterFeed", "ranking_of"]

log = logging.getLogger(__name__)

_START = "0-0"
_NS = 1_000_000_000

# Carries out a roster's change: (the strategy's id, its roster, the change).
Apply = Callable[[str, ScreenRoster, RosterChange], Awaitable[None]]


def ranking_of(fields: dict[bytes, bytes]) -> Ranking:
    """A stream entry's result as a roster reads it (Corrupt: no Envelope of a screen result)."""
    envelope = decode(fields)
    if envelope.WhichOneof("body") != "screen_result":
        raise Corrupt(f"an entry of {envelope.WhichOneof('body')}, not a screen result")
    result = envelope.screen_result
    symbols = tuple(row.symbol for row in result.ranked[: result.top_n])
    return Ranking(result.screen, result.venue, result.computed_ns, symbols, result.top_n,
                   result.min_hold_s * _NS)  # fmt: skip


class ScreenRosterFeed:
    def __init__(
        self,
        redis: BusRedis,
        rosters: Mapping[str, ScreenRoster],  # strategy id -> its roster
        apply: Apply,
        clock: Callable[[], int],
        block_ms: int = 1000,
        page: int = 1000,
    ) -> None:
        self._redis = redis
        self.rosters = rosters
        self._apply, self._clock = apply, clock
        self._block_ms, self._page = block_ms, page
        self.streams = sorted({screens_stream(r.screen.screen) for r in rosters.values()})
        self.positions: dict[str, str] | None = None  # stream -> last entry read; None before the start
        self.undecodable = 0
        self._foreign_said: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        if not self.streams:  # no strategy follows a screen: nothing to read (XREAD of none fails)
            await stop.wait()
            return
        await read_on(self._read_once, stop, self._away, back=self._back)

    async def _read_once(self) -> None:
        if self.positions is None:
            await self.start()
        await self.follow_once()
        await self.settle()

    def _away(self, exc: Exception, delay: float, first: bool) -> None:
        if first:
            shown = ", ".join(self.streams)
            log.warning("detector: the screens' results (%s): Redis: %s (retrying)", shown, exc)

    def _back(self) -> None:
        log.info("detector: the screens' results are heard again")

    async def start(self) -> None:
        """Every retained result of each stream, replayed through its rosters at once."""
        positions = {}
        for stream in self.streams:
            read, last = [], _START
            while True:
                after = "-" if last == _START else f"({last}"
                entries = await read_range(self._redis, stream, min=after, count=self._page)
                if entries:
                    last = _text(entries[-1][0])
                read += self._rankings(entries)
                if len(entries) < self._page:
                    break
            positions[stream] = last
            SCREEN_RESULTS.labels("start").inc(len(read))
            log.info("detector: %d results of %s at start", len(read), stream)
            await self._hand(stream, read)
        self.positions = positions

    async def follow_once(self) -> None:
        """The entries after the positions (waiting up to block_ms for some), handed on in order."""
        assert self.positions is not None
        reply = await read_after(self._redis, dict(self.positions), count=self._page, block=self._block_ms)
        for raw_stream, entries in reply or ():
            stream = _text(raw_stream)
            if entries:
                self.positions[stream] = _text(entries[-1][0])
            read = self._rankings(entries)
            SCREEN_RESULTS.labels("live").inc(len(read))
            await self._hand(stream, read)

    async def settle(self) -> None:
        """Each roster's leaving patches whose position is flat now, retired."""
        now = self._clock()
        for strategy_id, roster in self.rosters.items():
            change = roster.settle(now)
            if change:
                await self._apply(strategy_id, roster, change)

    async def _hand(self, stream: str, rankings: Sequence[Ranking]) -> None:
        if not rankings:
            return
        for strategy_id, roster in self.rosters.items():
            if screens_stream(roster.screen.screen) != stream:
                continue
            foreign = roster.foreign
            change = roster.on_results(rankings)
            if roster.foreign > foreign and strategy_id not in self._foreign_said:
                self._foreign_said.add(strategy_id)
                log.warning(
                    "detector: strategy %s trades %s, and %s ranks another venue's symbols: not followed",
                    strategy_id, roster.venue, stream,
                )  # fmt: skip
            if change:
                await self._apply(strategy_id, roster, change)

    def _rankings(self, entries: Sequence[tuple[Any, dict[bytes, bytes]]]) -> list[Ranking]:
        out = []
        for raw_id, fields in entries:
            try:
                out.append(ranking_of(fields))
            except Corrupt as exc:
                self.undecodable += 1
                SCREEN_RESULTS.labels("skipped").inc()
                log.warning("detector: screen result %s skipped: %s", _text(raw_id), exc)
        return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
