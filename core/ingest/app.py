"""The ingest process: a Follower per (venue, channel), one BusWriter, until stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import grpc
import redis.asyncio as aioredis

from core.bus.codec import decode
from core.bus.publisher import Publisher, Retention
from core.errors import Corrupt, InvalidArgument, Unavailable
from core.ingest.follow import Follower
from core.ingest.writer import BusWriter
from core.mesh.config import MeshConfig, VenueLink
from core.rpc.client import Metadata, auth_metadata
from core.service import Ready
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["IngestOptions", "run_ingest"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 10.0


class IngestOptions:
    def __init__(
        self, config: MeshConfig, redis_url: str, source: str | None = None, max_queued: int = 20_000
    ):
        if not config.venues:
            raise InvalidArgument.field(
                "venue", "no venues to follow: give --venue NAME=HOST:PORT or a mesh config"
            )
        self.config = config
        self.redis_url = redis_url
        self.source = source or f"ingest/{socket.gethostname()}"
        self.max_queued = max_queued


def _channel_factory(address: str) -> Callable[[], grpc.aio.Channel]:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    return lambda: grpc.aio.insecure_channel(address, options=options)


async def _symbols(link: VenueLink, metadata: Metadata, stop: asyncio.Event) -> list[str]:
    """The configured symbols, or every instrument the venue lists (waits for the venue to answer)."""
    if link.symbols:
        return list(link.symbols)
    delay = 0.2
    while True:
        async with _channel_factory(link.address)() as channel:
            try:
                reply = await md_grpc.MarketDataStub(channel).ListInstruments(
                    md.ListInstrumentsRequest(), metadata=metadata, timeout=_CALL_TIMEOUT_S
                )
                return sorted(i.symbol for i in reply.instruments)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise Unavailable(
                        f"venue {link.name} at {link.address}: {exc.code().name} {exc.details()}"
                    ) from None
                log.warning(
                    "ingest: venue %s at %s not answering (%s); retrying",
                    link.name,
                    link.address,
                    exc.code().name,
                )
        if stop.is_set():
            raise Unavailable(f"venue {link.name} at {link.address} never answered")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


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


async def run_ingest(options: IngestOptions, stop: asyncio.Event, ready: Ready) -> None:
    redis = aioredis.Redis.from_url(options.redis_url, socket_timeout=10, health_check_interval=5)
    metadata = auth_metadata()
    publisher = Publisher(redis, Retention(options.config.rate_per_s, options.config.outage_minutes))
    writer = BusWriter(publisher, options.source, options.max_queued)
    await writer.connect()
    followers: list[Follower] = []
    for link in options.config.venues:
        symbols = await _symbols(link, metadata, stop)
        for channel in link.channels:
            follower = Follower(
                link, channel, symbols, _channel_factory(link.address), metadata, writer.publish
            )
            await _resume_from_bus(redis, follower)
            followers.append(follower)

    def bus_lost(since_ns: int) -> None:
        for follower in followers:
            follower.mark_bus_loss(since_ns)

    writer.on_loss = bus_lost
    tasks = [asyncio.create_task(f.run(stop), name=f.stream) for f in followers]
    tasks.append(asyncio.create_task(writer.watch_groups([f.stream for f in followers], stop)))
    flusher = asyncio.create_task(writer.run(stop))
    await ready()
    log.info("ingest: following %s", ", ".join(f.stream for f in followers))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await flusher
        await redis.aclose()
