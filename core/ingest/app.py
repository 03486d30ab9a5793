"""The ingest process: a Follower per (venue, channel) and an ExecutionFollower per venue,
one BusWriter, until stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from core.foundations.bus.codec import decode
from core.foundations.bus.publisher import Publisher, Retention
from core.foundations.bus.redis import BusRedis, open_redis
from core.foundations.errors import Corrupt, InvalidArgument, Unavailable
from core.foundations.mesh_config import MeshConfig, VenueLink
from core.foundations.retry import until_reachable
from core.foundations.rpc.client import Metadata, auth_metadata
from core.foundations.rpc.server import Service
from core.foundations.rpc.status import unavailable
from core.foundations.service import ServiceContext
from core.ingest.executions import ExecutionFollower
from core.ingest.follow import Follower
from core.ingest.writer import BusWriter
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["Ingest", "IngestConfig"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 10.0
# Errors of a venue that is starting or briefly away: wait for it.
_NOT_YET = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class IngestConfig:
    mesh: MeshConfig
    redis_url: str
    # Written into every bus entry: who published it.
    source: str = field(default_factory=lambda: f"ingest/{socket.gethostname()}")
    # Bus entries held while Redis is slow or away before venues are paused.
    max_queued: int = 20_000
    # Follow every venue's executions into exec.<venue> too.
    executions: bool = True

    def __post_init__(self) -> None:
        if not self.mesh.venues:
            raise InvalidArgument.field(
                "venue", "no venues to follow: give --venue NAME=HOST:PORT or a mesh config"
            )
        if self.max_queued < 1:
            raise InvalidArgument.field("max-queued", f"must be at least 1, got {self.max_queued}")


def _channel_factory(address: str) -> Callable[[], grpc.aio.Channel]:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    return lambda: grpc.aio.insecure_channel(address, options=options)


class _NotAnswering(Exception):
    """A venue that is not answering yet (UNAVAILABLE, DEADLINE_EXCEEDED): retried."""


async def _list_symbols(link: VenueLink, metadata: Metadata) -> list[str]:
    async with _channel_factory(link.address)() as channel:
        try:
            reply = await md_grpc.MarketDataStub(channel).ListInstruments(
                md.ListInstrumentsRequest(), metadata=metadata, timeout=_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NOT_YET:
                raise _NotAnswering(exc.code().name) from None
            raise unavailable(exc, f"venue {link.name} at {link.address}") from None
    return sorted(i.symbol for i in reply.instruments)


async def _symbols(link: VenueLink, metadata: Metadata, stop: asyncio.Event) -> list[str]:
    """The configured symbols, or every instrument the venue lists (waits for the venue to answer)."""
    if link.symbols:
        return list(link.symbols)
    symbols = await until_reachable(
        lambda: _list_symbols(link, metadata),
        what=f"ingest: venue {link.name} at {link.address}",
        retry_on=(_NotAnswering,),
        stop=stop,
    )
    if symbols is None:
        raise Unavailable(f"venue {link.name} at {link.address} never answered")
    return symbols


async def _resume_from_bus(redis: BusRedis, follower: Follower) -> None:
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


async def _resume_executions_from_bus(redis: BusRedis, follower: ExecutionFollower) -> None:
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


class Ingest:
    """The ingest service: a Follower per (venue, channel), an ExecutionFollower per venue, one
    BusWriter, until stopped."""

    name = "ingest"

    def __init__(self, config: IngestConfig) -> None:
        self.config = config

    def grpc_services(self) -> Sequence[Service]:
        return ()

    async def run(self, ctx: ServiceContext) -> None:
        redis = open_redis(self.config.redis_url)
        try:
            await self._follow(redis, ctx)
        finally:
            await redis.aclose()

    async def _follow(self, redis: BusRedis, ctx: ServiceContext) -> None:
        config = self.config
        metadata = auth_metadata()
        publisher = Publisher(redis, Retention(config.mesh.rate_per_s, config.mesh.outage_minutes))
        writer = BusWriter(publisher, config.source, config.max_queued)
        if not await writer.connect(ctx.stop, config.redis_url):
            return
        followers: list[Follower | ExecutionFollower] = []
        followers += await self._followers(redis, writer, metadata, ctx.stop)
        followers += await self._execution_followers(redis, writer, metadata)

        def bus_lost(since_ns: int) -> None:
            for follower in followers:
                follower.mark_bus_loss(since_ns)

        writer.on_loss = bus_lost
        tasks = [asyncio.create_task(f.run(ctx.stop), name=f.stream) for f in followers]
        tasks.append(asyncio.create_task(writer.watch_groups([f.stream for f in followers], ctx.stop)))
        flusher = asyncio.create_task(writer.run(ctx.stop))
        await ctx.ready()
        log.info("ingest: following %s", ", ".join(f.stream for f in followers))
        try:
            await ctx.stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await flusher

    async def _followers(
        self, redis: BusRedis, writer: BusWriter, metadata: Metadata, stop: asyncio.Event
    ) -> list[Follower]:
        followers: list[Follower] = []
        for link in self.config.mesh.venues:
            symbols = await _symbols(link, metadata, stop)
            for channel in link.channels:
                follower = Follower(
                    link, channel, symbols, _channel_factory(link.address), metadata, writer.publish
                )
                await _resume_from_bus(redis, follower)
                followers.append(follower)
        return followers

    async def _execution_followers(
        self, redis: BusRedis, writer: BusWriter, metadata: Metadata
    ) -> list[ExecutionFollower]:
        if not self.config.executions:
            return []
        followers = []
        for link in self.config.mesh.venues:
            follower = ExecutionFollower(
                link, _channel_factory(link.address), metadata, writer.publish_executions
            )
            await _resume_executions_from_bus(redis, follower)
            followers.append(follower)
        return followers
