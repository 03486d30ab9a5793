"""The bus's stream and hash reads, typed as the bus's client answers them.

The client (trademesh.core.platform.bus.redis.open_redis) leaves responses undecoded: an entry's id and
its fields are bytes, a hash's fields and values too. redis-py types its replies for either
setting (bytes or str, and None where a reply may be nil), so each read is typed here once, as
the bus gets it, and its callers read entries without a cast of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, cast

from redis.typing import KeyT, StreamIdT

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt

__all__ = ["RawEntry", "StreamReply", "read_after", "read_back", "read_hash", "read_last", "read_range"]

RawEntry = tuple[Any, dict[bytes, bytes]]  # (entry id, fields) as Redis gives it
StreamReply = list[tuple[bytes, list[RawEntry]]]  # XREAD's answer: (stream, its entries) a stream


async def read_range(
    redis: BusRedis, stream: str, min: str = "-", max: str = "+", count: int | None = None
) -> list[RawEntry]:
    """XRANGE: the stream's entries from `min` to `max`, oldest first."""
    return cast(list[RawEntry], await redis.xrange(stream, min=min, max=max, count=count))


async def read_back(
    redis: BusRedis, stream: str, max: str = "+", min: str = "-", count: int | None = None
) -> list[RawEntry]:
    """XREVRANGE: the stream's entries from `max` back to `min`, newest first."""
    return cast(list[RawEntry], await redis.xrevrange(stream, max=max, min=min, count=count))


async def read_last(redis: BusRedis, stream: str, body: str) -> bus.Envelope | None:
    """The stream's last entry when it holds a `body` (a writer resumes from it); None when the
    stream is empty, its last entry holds another body or cannot be read."""
    for _, fields in await read_back(redis, stream, count=1) or []:
        with contextlib.suppress(Corrupt):
            envelope = decode(fields)
            if envelope.WhichOneof("body") == body:
                return envelope
    return None


async def read_after(
    redis: BusRedis, positions: Mapping[str, str], count: int | None = None, block: int | None = None
) -> StreamReply:
    """XREAD: each stream's entries after its position, waiting up to `block` ms for one (None:
    no wait); empty when none came."""
    streams: dict[KeyT, StreamIdT] = {stream: position for stream, position in positions.items()}
    return cast(StreamReply, await redis.xread(streams, count=count, block=block) or [])


async def read_hash(redis: BusRedis, key: str) -> dict[bytes, bytes]:
    """HGETALL: the hash's fields and values (empty when there is no such key)."""
    return cast(dict[bytes, bytes], await redis.hgetall(key))
