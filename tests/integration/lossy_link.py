"""A link to Redis that loses one answer: a writer that sent a write and never heard back.

The reply to the first request holding a given marker (b"EVALSHA", b"XADD") is dropped and the
connection cut, after Redis ran the request: the writer sees a connection error while its write
may well be done (its network failed, or it was killed reading the answer). Everything else
passes through untouched.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

__all__ = ["LossyLink"]


class LossyLink:
    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self._unix = parts.path if parts.scheme == "unix" else None
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        query_db = parse_qs(parts.query).get("db", [""])[0]
        self._db = query_db if self._unix else parts.path.strip("/")
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.lost = 0  # answers lost so far

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """The Redis URL through the link (the same database)."""
        return f"redis://127.0.0.1:{self.port}/{self._db or 0}"

    def lose_answer_to(self, marker: bytes) -> None:
        """Drop the answer to the next request holding `marker`, cutting its connection."""
        self._marker = marker

    async def stop(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._unix is not None:
            return await asyncio.open_unix_connection(self._unix)
        return await asyncio.open_connection(*self._target)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._open()
        self._writers |= {writer, up_writer}
        losing = asyncio.Event()  # set once a request whose answer is to be lost went up
        await asyncio.gather(
            self._up(reader, up_writer, losing), self._down(up_reader, writer, up_writer, losing),
            return_exceptions=True,
        )  # fmt: skip
        self._writers -= {writer, up_writer}

    async def _up(
        self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, losing: asyncio.Event
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    losing.set()
                up.write(data)
                await up.drain()
        finally:
            up.close()

    async def _down(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: asyncio.StreamWriter,
        losing: asyncio.Event,
    ) -> None:  # fmt: skip
        try:
            while data := await up_reader.read(65536):
                if losing.is_set():  # the answer came: Redis ran the request; it never arrives
                    self.lost += 1
                    writer.transport.abort()
                    up.transport.abort()
                    return
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
