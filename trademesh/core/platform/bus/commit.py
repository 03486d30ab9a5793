"""Group commit: each write awaited by its caller; the writes made while one round trip is on
the wire go together in the next, so under load many callers share one. They complete in the
order they were made. A round trip that fails fails each of its writes, which may or may not
have landed: the caller decides (nothing is retried here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from trademesh.core.platform.bus.append import Append

__all__ = ["GroupCommit"]

# Sends appends in one round trip; their entry ids, in order.
Send = Callable[[list[Append]], Awaitable[list[bytes]]]


@dataclass
class _Waiting:
    append: Append
    done: asyncio.Future[bytes]


class GroupCommit:
    def __init__(self, send: Send, most: int = 500) -> None:
        self._send = send
        self._most = most  # writes per round trip at most
        self._waiting: list[_Waiting] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, append: Append) -> bytes:
        """Write `append` in the next round trip; its entry id once it is written. Raises what
        the round trip raised."""
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(append, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_waiting())
        return await done

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            try:
                ids = await self._send([waiting.append for waiting in batch])
            except BaseException as exc:  # each waiter gets the error: its entry may not be written
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
                if not isinstance(exc, Exception):
                    raise
                continue
            for waiting, entry_id in zip(batch, ids, strict=True):
                if not waiting.done.done():
                    waiting.done.set_result(entry_id)
