"""The venues ingest follows now, each with its followers, started and dropped as the mesh changes.

`Fleet.apply(venues)` takes the venues the mesh has now (core.foundations.rpc.discovery): a new one
gets its followers (a Follower per channel, an ExecutionFollower), resumed from where the bus
says the last run stopped; one gone (unregistered, its heartbeats stopped, or moved to another
address) is stopped, and every stream it was writing gets a gap marker since its last event, as
for any lost venue: its events from then on may be missing until it is followed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import grpc
import redis.asyncio as aioredis

from core.foundations.bus.codec import decode
from core.foundations.errors import Corrupt, TrademeshError
from core.foundations.mesh_config import VenueLink
from core.foundations.rpc.client import Metadata
from core.foundations.rpc.discovery import Venues
from core.ingest.executions import ExecutionFollower
from core.ingest.follow import Follower
from core.ingest.symbols import venue_symbols
from core.ingest.writer import BusWriter

__all__ = ["Fleet", "VenueFollowing", "channel_factory"]

log = logging.getLogger(__name__)


def channel_factory(address: str) -> Callable[[], grpc.aio.Channel]:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    return lambda: grpc.aio.insecure_channel(address, options=options)


class VenueFollowing:
    """One venue's followers and their tasks, from the venue's instrument list to its drop."""

    def __init__(self, link: VenueLink, fleet: Fleet) -> None:
        self.link = link
        self.market: list[Follower] = []
        self.executions: ExecutionFollower | None = None
        self._fleet = fleet
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"ingest {link.name}")

    @property
    def streams(self) -> list[str]:
        executions = [] if self.executions is None else [self.executions.stream]
        return [f.stream for f in self.market] + executions

    def mark_bus_loss(self, since_ns: int) -> None:
        for follower in self._followers():
            follower.mark_bus_loss(since_ns)

    async def stop(self, reason: str | None) -> None:
        """Stops its followers; with a reason, a gap marker in each market stream it wrote."""
        self._stop.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if reason is None:
            return
        for follower in self.market:
            await follower.mark_left(reason)

    def _followers(self) -> list[Follower | ExecutionFollower]:
        executions = [] if self.executions is None else [self.executions]
        return [*self.market, *executions]

    async def _run(self) -> None:
        fleet, link = self._fleet, self.link
        try:
            symbols = await venue_symbols(link, fleet.metadata, self._stop)
        except TrademeshError as exc:
            log.error("ingest: venue %s at %s not followed: %s", link.name, link.address, exc)
            return
        if symbols is None:
            return
        factory = channel_factory(link.address)
        for channel in link.channels:
            follower = Follower(link, channel, symbols, factory, fleet.metadata, fleet.writer.publish)
            await _resume_from_bus(fleet.redis, follower)
            self.market.append(follower)
        if fleet.executions:
            executions = ExecutionFollower(link, factory, fleet.metadata, fleet.writer.publish_executions)
            await _resume_executions_from_bus(fleet.redis, executions)
            self.executions = executions
        log.info("ingest: following %s", ", ".join(self.streams))
        runs = [asyncio.create_task(f.run(self._stop), name=f.stream) for f in self._followers()]
        try:
            await asyncio.gather(*runs)
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)


class Fleet:
    """Every venue followed now, by name."""

    def __init__(
        self, redis: aioredis.Redis, writer: BusWriter, metadata: Metadata, executions: bool
    ) -> None:
        self.redis = redis
        self.writer = writer
        self.metadata = metadata
        self.executions = executions
        self.following: dict[str, VenueFollowing] = {}

    @property
    def streams(self) -> list[str]:
        return [stream for venue in self.following.values() for stream in venue.streams]

    def mark_bus_loss(self, since_ns: int) -> None:
        for venue in self.following.values():
            venue.mark_bus_loss(since_ns)

    async def apply(self, venues: Venues) -> None:
        """Follows the venues new or moved, stops those gone (gap-marked)."""
        for name, following in list(self.following.items()):
            now = venues.get(name)
            if now is not None and now == following.link:
                continue
            reason = "the venue left the mesh" if now is None else f"the venue moved to {now.address}"
            log.warning("ingest: venue %s at %s dropped: %s", name, following.link.address, reason)
            del self.following[name]
            await following.stop(reason)
        for name, link in sorted(venues.items()):
            if name not in self.following:
                log.info("ingest: venue %s at %s found", name, link.address)
                self.following[name] = VenueFollowing(link, self)

    async def close(self) -> None:
        for following in self.following.values():
            await following.stop(None)
        self.following.clear()


async def _resume_from_bus(redis: aioredis.Redis, follower: Follower) -> None:
    """Where the last run stopped: the last entry on the stream carries the venue's position."""
    entries: Any = await redis.xrevrange(follower.stream, count=20)
    for _, fields in entries or []:
        try:
            envelope = decode(fields)
        except Corrupt:
            continue
        if envelope.WhichOneof("body") == "market" and envelope.market.epoch:
            follower.position.note(envelope.market)
            log.info("ingest %s: will resume after position %d", follower.stream, follower.position.position)
            return


async def _resume_executions_from_bus(redis: aioredis.Redis, follower: ExecutionFollower) -> None:
    """Where the last run stopped: the last entry of exec.<venue> carries the venue's point."""
    entries: Any = await redis.xrevrange(follower.stream, count=20)
    for _, fields in entries or []:
        try:
            envelope = decode(fields)
        except Corrupt:
            continue
        if envelope.WhichOneof("body") == "executions" and envelope.executions.epoch:
            follower.note(envelope.executions)
            log.info("ingest %s: will resume after execution %d", follower.stream, follower.position)
            return
