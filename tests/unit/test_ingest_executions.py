"""Ingest's execution follower without a network: what each venue response puts on the bus."""

from __future__ import annotations

from typing import Any

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.ingest.dial import VenueDial
from trademesh.core.ingest.executions import ExecutionFollower, gap_marker
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

EPOCH = 1_700_000_000_000_000_000


class Bus:
    def __init__(self) -> None:
        self.entries: list[tuple[str, bus.Executions, int, int]] = []

    async def publish(self, stream: str, data: bytes, epoch: int, position: int) -> None:
        self.entries.append((stream, bus.Executions.FromString(data), epoch, position))


def _follower(published: Bus) -> ExecutionFollower:
    def no_channel() -> Any:
        raise AssertionError("no network in this test")

    return ExecutionFollower(VenueDial(VenueLink("sim", "127.0.0.1:1"), no_channel, ()), published.publish)


def _response(epoch: int, *sequences: int, position: int = 0, **extra: Any) -> bytes:
    executions = [tf.Execution(venue="sim", sequence=s) for s in sequences]
    last = sequences[-1] if sequences else position
    return tf.StreamExecutionsResponse(
        executions=executions, position=last, epoch=epoch, **extra
    ).SerializeToString()


async def test_a_fresh_follower_asks_for_everything_then_resumes_from_what_it_published() -> None:
    published = Bus()
    follower = _follower(published)
    assert follower.stream == "exec.{sim}"
    request = follower.request()
    assert request.HasField("resume") and (request.resume.epoch, request.resume.position) == (0, 0)
    await follower.take(_response(EPOCH, position=0))  # the header: nothing to publish
    await follower.take(_response(EPOCH, 1, 2))
    await follower.take(_response(EPOCH, 3))
    assert [(e.position, p) for _, e, _, p in published.entries] == [(2, 2), (3, 3)]
    assert all(entry.venue == "sim" and epoch == EPOCH for _, entry, epoch, _ in published.entries)
    assert [x.sequence for x in published.entries[0][1].executions] == [1, 2]
    again = follower.request()
    assert (again.resume.epoch, again.resume.position) == (EPOCH, 3)


async def test_a_venue_gap_goes_to_the_bus_as_a_marker_before_the_replay() -> None:
    published = Bus()
    follower = _follower(published)
    follower.note(bus.Executions(epoch=EPOCH - 1, position=40))
    await follower.take(_response(EPOCH, position=0, gap=True, gap_reason="another process"))
    await follower.take(_response(EPOCH, 1))
    (_, marker, epoch, position), (_, first, _, _) = published.entries
    assert marker.gap and marker.gap_reason == "another process" and (epoch, position) == (EPOCH, 0)
    assert [x.sequence for x in first.executions] == [1]
    assert follower.gaps == 1 and (follower.epoch, follower.position) == (EPOCH, 1)


async def test_a_bus_that_lost_entries_gets_a_gap_marker_before_the_next_batch() -> None:
    published = Bus()
    follower = _follower(published)
    await follower.take(_response(EPOCH, 1))
    follower.mark_bus_loss(0)
    await follower.take(_response(EPOCH, 2))
    assert [(e.gap, e.position) for _, e, _, _ in published.entries] == [(False, 1), (True, 1), (False, 2)]
    assert published.entries[1][1] == bus.Executions.FromString(
        gap_marker("sim", EPOCH, 1, "the bus lost entries (Redis restarted without them)")
    )
