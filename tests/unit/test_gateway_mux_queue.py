"""The multiplexer's per-session queue: bounded in bytes of data frames, control frames never
refused or dropped, and the room each subscription takes known (trademesh.gateway.mux.queue)."""

from __future__ import annotations

import asyncio

from trademesh.gateway.grpcweb.status import CallStatus
from trademesh.gateway.mux.frames import data_frame, end_frame
from trademesh.gateway.mux.queue import FrameQueue
from trademesh.mux.v1 import mux_pb2 as mux


async def test_data_frames_are_refused_once_the_bound_is_reached_and_a_lone_frame_always_fits() -> None:
    queue = FrameQueue(100)
    assert queue.offer("a", b"x" * 500)  # alone: fits, however large
    assert not queue.offer("b", b"y")
    assert await queue.take() == b"x" * 500
    assert queue.offer("a", b"x" * 60) and queue.offer("b", b"y" * 40)
    assert not queue.offer("a", b"x")
    assert queue.queued_bytes == 100


async def test_control_frames_pass_the_bound_and_survive_a_drop() -> None:
    queue = FrameQueue(10)
    assert queue.offer("a", b"a" * 10)
    queue.put_control(b"end-of-b")
    assert queue.offer("b", b"b") is False
    assert queue.drop("a") == 1
    assert queue.queued_bytes == 0
    # The control frame is still there, and a data frame alone fits beside it.
    assert queue.offer("b", b"b" * 50)
    assert [await queue.take(), await queue.take()] == [b"end-of-b", b"b" * 50]


async def test_the_heaviest_subscription_is_the_one_holding_the_most_bytes() -> None:
    queue = FrameQueue(1000)
    assert queue.heaviest() is None
    for owner, size in (("quiet", 10), ("busy", 300), ("quiet", 10), ("busy", 300)):
        assert queue.offer(owner, b"." * size)
    queue.put_control(b"c" * 900)  # control frames do not count
    assert queue.heaviest() == "busy" and queue.bytes_of("busy") == 600
    assert queue.bytes_of("quiet") == 20
    queue.drop("busy")
    assert queue.heaviest() == "quiet" and queue.queued_bytes == 20


async def test_frames_come_out_in_order_and_a_closed_queue_answers_none() -> None:
    queue = FrameQueue(1000)
    frames = [data_frame("a", b"1"), end_frame("a", CallStatus.ok()), data_frame("b", b"2")]
    queue.offer("a", frames[0])
    queue.put_control(frames[1])
    queue.offer("b", frames[2])
    taken = [await queue.take() for _ in frames]
    assert taken == frames
    decoded = [mux.OpenResponse.FromString(f) for f in frames]
    assert [d.WhichOneof("frame") for d in decoded] == ["data", "end", "data"]
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    queue.close()
    assert await asyncio.wait_for(waiting, 1) is None
    queue.offer("a", b"late")
    assert await queue.take() is None
