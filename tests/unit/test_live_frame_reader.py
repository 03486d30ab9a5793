"""A connection's frames read by one task for its life (trademesh/venues/live/exchange.py `_read_frames`, in
place of ccxt's receive loop, which makes a task a frame): the same steps as ccxt's loop.

- frames aiohttp has buffered are handled in order, all but the last without a receive, and
  their sizes are given back to its queue's last entry as ccxt gives them;
- a receive that fails rejects the client's futures with NetworkError and ends the reading;
- a connection found closed ends it with on_close(1006), as ccxt's loop does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import ccxt
import pytest

from trademesh.venues.live.exchange import _read_frames, _start_reading


class Client:
    """ccxt's ws Client as its receive loop uses it."""

    def __init__(self, frames: list[Any], buffered: list[tuple[Any, int]] | None = None) -> None:
        self.frames = deque(frames)
        self.buffer: deque[tuple[Any, int]] | None = deque(buffered or [])
        self.handled: list[Any] = []
        self.rejected: list[Exception] = []
        self.closes: list[int] = []
        self.open = True
        self.asyncio_loop = asyncio.get_running_loop()

    def closed(self) -> bool:
        return not self.open

    async def receive(self) -> Any:
        await asyncio.sleep(0)
        frame = self.frames.popleft()
        if isinstance(frame, Exception):
            raise frame
        if self.buffer:  # aiohttp's queue: the frame received is its first entry
            self.buffer.popleft()
        return frame

    def handle_message(self, message: Any) -> None:
        self.handled.append(message)
        if message == "close":
            self.open = False

    def reject(self, error: Exception) -> None:
        self.rejected.append(error)

    def on_close(self, code: int) -> None:
        self.closes.append(code)


async def test_buffered_frames_are_handled_in_order_and_their_sizes_given_back() -> None:
    buffered = [("a", 10), ("b", 20), ("c", 30)]
    client = Client(["c", "close"], buffered)
    await _read_frames(client)
    assert client.handled == ["a", "b", "c", "close"]
    assert client.closes == [1006] and client.rejected == []


async def test_the_sizes_drained_go_to_the_last_buffered_entry() -> None:
    from ccxt.async_support.base.ws.client import MSG_SIZE_OVERHEAD

    client = Client([])
    client.buffer = deque([("a", 10), ("b", 20), ("c", 30)])

    async def stop() -> Any:
        client.open = False
        return "last"

    client.receive = stop  # type: ignore[method-assign]
    await _read_frames(client)
    assert client.handled == ["a", "b", "last"]
    assert list(client.buffer) == [("c", 30 + 10 + 20 + 2 * MSG_SIZE_OVERHEAD)]


async def test_a_failed_receive_rejects_the_futures_and_ends_the_reading() -> None:
    client = Client(["x", OSError("reset by peer"), "never"])
    await _read_frames(client)
    assert client.handled == ["x"]
    assert [type(e) for e in client.rejected] == [ccxt.NetworkError]
    assert "reset by peer" in str(client.rejected[0])
    assert client.closes == [] and list(client.frames) == ["never"]


async def test_one_task_reads_the_connection_and_a_closed_one_is_closed_at_once() -> None:
    client = Client(["x", "y", "close"])
    _start_reading(client)
    reader = client._trademesh_reader  # type: ignore[attr-defined]
    await asyncio.wait_for(reader, timeout=5)
    assert client.handled == ["x", "y", "close"] and client.closes == [1006]
    closed = Client([])
    closed.open = False
    _start_reading(closed)
    assert closed.closes == [1006] and not hasattr(closed, "_trademesh_reader")


async def test_a_cancelled_reader_stops_quietly() -> None:
    client = Client([])
    gate = asyncio.Event()

    async def wait() -> Any:
        await gate.wait()

    client.receive = wait  # type: ignore[method-assign]
    _start_reading(client)
    reader = client._trademesh_reader  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert client.closes == [] and client.rejected == []
