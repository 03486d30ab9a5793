"""The bus's one way to write (trademesh.core.platform.bus: Append, Publisher, GroupWrite) on a real Redis:
each guarantee a writer relies on, a write retried after its answer was lost, a writer killed
while sending, and a second writer of the same point or the same mark."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.integration.lossy_link import LossyLink
from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from trademesh.core.platform.bus.append import Append, Retention
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.group import (
    Ack,
    Fenced,
    GroupOutcome,
    GroupWrite,
    Marked,
    Numbered,
    SetFields,
    SetKey,
    at_most_once,
    queue_commands,
    script_call,
    write_group,
)
from trademesh.core.platform.bus.lua import GROUP_WRITE
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.replicas.lease import Lease

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

_RETENTION = Retention(entries_per_s=10, outage_minutes=2)  # MAXLEN ~ 1200


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[tuple[str, Any]]:
    """A fresh database's URL and a client of it."""
    async with redis_db(redis_url) as url:
        client: Any = aioredis.Redis.from_url(url)
        try:
            yield url, client
        finally:
            await client.aclose()


@pytest.fixture
async def link(bus: tuple[str, Any]) -> AsyncIterator[tuple[LossyLink, Any]]:
    """A link to the same database that can lose an answer, and a client through it."""
    lossy = LossyLink(bus[0])
    await lossy.start()
    client: Any = aioredis.Redis.from_url(lossy.url)
    try:
        await client.ping()  # connected (its handshake through) before any answer is lost
        yield lossy, client
    finally:
        await client.aclose()
        await lossy.stop()


def _data(stream_entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[bytes]:
    return [fields[FIELD] for _, fields in stream_entries]


async def _pending_entries(client: Any, stream: str, group: str, count: int) -> list[str]:
    """`count` entries of `stream` delivered to `group` and not acknowledged (inputs in hand)."""
    ids = [(await client.xadd(stream, {FIELD: f"in-{i}".encode()})).decode() for i in range(count)]
    await client.xgroup_create(stream, group, id="0")
    await client.xreadgroup(group, "c", {stream: ">"}, count=count)
    return ids


async def _pending(client: Any, stream: str, group: str) -> int:
    return int((await client.xpending(stream, group))["pending"])


def _decision(token: str, ack: Ack | None) -> GroupWrite:
    """An input's effect as the advisor's is: entries on two streams, a mark, the input's ack."""
    return GroupWrite(
        appends=[Append("decisions", f"decision {token}".encode(), 1000),
                 Append("intents", f"intent {token}".encode(), 1000)],
        ack=ack,
        guard=Marked("decided:s1", token, 60),
        otherwise=[Append("telemetry", f"loose {token}".encode(), 1000)],
    )  # fmt: skip


# ---- batched appends (market data): at least once, trimmed


async def test_a_flush_whose_answer_was_lost_is_written_again_whole_none_lost(
    bus: tuple[str, Any], link: tuple[LossyLink, Any]
) -> None:
    _, client = bus
    lossy, through = link
    publisher = Publisher(through, _RETENTION)
    for i in range(50):
        publisher.add("md.{t}.trades", f"batch {i}".encode())
    lossy.lose_answer_to(b"XADD")
    with pytest.raises(RedisConnectionError):
        await publisher.flush()
    assert lossy.lost == 1 and publisher.queued == 50, "kept for the next flush"
    await publisher.flush()
    written = _data(await client.xrange("md.{t}.trades"))
    assert {f"batch {i}".encode() for i in range(50)} <= set(written), "none lost"
    assert len(written) >= 50 and publisher.queued == 0


async def test_appends_are_trimmed_to_their_retention(bus: tuple[str, Any]) -> None:
    _, client = bus
    publisher = Publisher(client, Retention(entries_per_s=1, outage_minutes=1))  # MAXLEN ~ 1000
    for round_ in range(6):
        for i in range(1000):
            publisher.add("md.{t}.book", f"{round_}-{i}".encode())
        await publisher.flush()
    length = await client.xlen("md.{t}.book")
    assert 1000 <= length < 2000, length
    unbounded = Publisher(client)  # no Retention: untrimmed (a stream its owner trims)
    for _ in range(3000):
        unbounded.add("journal", b"x")
    await unbounded.flush()
    assert await client.xlen("journal") == 3000


# ---- a venue's batches under its lease: each run once (the direct path, ingest)


async def _held_fence(client: Any) -> Fenced:
    lease = Lease(client, "ingest.{t}", "writer@test", 60_000)
    assert await lease.acquire() and lease.token is not None
    return Fenced(lease.key, lease.token)


async def test_a_fenced_flush_whose_answer_was_lost_is_written_once_when_retried(
    bus: tuple[str, Any], link: tuple[LossyLink, Any]
) -> None:
    _, client = bus
    lossy, through = link
    fence = await _held_fence(client)
    publisher = Publisher(through, _RETENTION)
    for i in range(30):
        publisher.add("md.{t}.trades", f"batch {i}".encode(), fence=fence)
    lossy.lose_answer_to(b"EVALSHA")
    with pytest.raises(RedisConnectionError):
        await publisher.flush()  # it ran: only its answer was lost
    assert lossy.lost == 1 and publisher.queued == 30, "kept for the next flush"
    for i in range(30, 40):  # added while Redis was away: a run of their own
        publisher.add("md.{t}.trades", f"batch {i}".encode(), fence=fence)
    ids = await publisher.flush()
    assert ids == [None] * 30 + ids[30:] and all(ids[30:]), "the retried run was done already"
    assert _data(await client.xrange("md.{t}.trades")) == [f"batch {i}".encode() for i in range(40)]
    assert publisher.queued == 0 and not publisher.fenced


async def test_a_numbered_run_arriving_after_a_later_one_writes_nothing(bus: tuple[str, Any]) -> None:
    """The first copy of a retried flush may run after the retry (Redis reads what a gone client
    sent once it goes on): it finds its number passed."""
    _, client = bus
    fence = await _held_fence(client)

    def run(number: int, data: bytes) -> GroupWrite:
        return GroupWrite(
            appends=[Append("md.{t}.trades", data, 1000)],
            guard=Numbered("lease.ingest.{t}.runs.w1", number, 60),
            fence=fence,
        )

    assert (await write_group(client, run(1, b"one"))).outcome is GroupOutcome.WRITTEN
    assert (await write_group(client, run(2, b"two"))).outcome is GroupOutcome.WRITTEN
    for late in (run(1, b"one"), run(2, b"two")):
        assert (await write_group(client, late)).outcome is GroupOutcome.DONE
    assert _data(await client.xrange("md.{t}.trades")) == [b"one", b"two"]
    assert await client.get("lease.ingest.{t}.runs.w1") == b"2"
    assert 0 < await client.ttl("lease.ingest.{t}.runs.w1") <= 60


# ---- at most once per venue point (executions)


async def test_a_point_is_written_once_though_the_flush_is_retried_after_a_lost_answer(
    bus: tuple[str, Any], link: tuple[LossyLink, Any]
) -> None:
    _, client = bus
    lossy, through = link
    publisher = Publisher(through, _RETENTION)
    for position in range(1, 21):
        publisher.add("exec.{t}", f"p{position}".encode(), once=(7, position))
    lossy.lose_answer_to(b"EVALSHA")
    with pytest.raises(RedisConnectionError):
        await publisher.flush()
    assert lossy.lost == 1 and publisher.queued == 20, "kept for the next flush"
    await publisher.flush()
    written = await client.xrange("exec.{t}")
    assert _data(written) == [f"p{position}".encode() for position in range(1, 21)], "each point once"
    assert [(f[b"e"], f[b"p"]) for _, f in written][-1] == (b"7", b"20")
    assert publisher.queued == 0


async def test_a_second_writer_of_the_same_points_writes_nothing_and_a_new_epoch_starts_over(
    bus: tuple[str, Any],
) -> None:
    _, client = bus
    first, second = Publisher(client, _RETENTION), Publisher(client, _RETENTION)
    for position in (1, 2, 3):
        first.add("exec.{t}", f"first {position}".encode(), once=(7, position))
    assert all(await first.flush())
    for position in (2, 3, 4):  # overlapping: only what goes past the stream's point lands
        second.add("exec.{t}", f"second {position}".encode(), once=(7, position))
    assert [entry_id is not None for entry_id in await second.flush()] == [False, False, True]
    assert (
        await write_group(client, at_most_once(Append("exec.{t}", b"old"), 7, 1))
    ).outcome is GroupOutcome.DONE
    restarted = await write_group(client, at_most_once(Append("exec.{t}", b"new epoch"), 8, 1))
    assert restarted.outcome is GroupOutcome.WRITTEN and len(restarted.ids) == 1
    assert _data(await client.xrange("exec.{t}")) == [
        b"first 1", b"first 2", b"first 3", b"second 4", b"new epoch"
    ]  # fmt: skip


# ---- atomic groups, unless already done (decisions, checkpoints)


async def test_a_group_is_written_whole_with_its_mark_and_its_input_acknowledged(
    bus: tuple[str, Any],
) -> None:
    _, client = bus
    (entry,) = await _pending_entries(client, "signals", "advisor", 1)
    result = await write_group(client, _decision("d1", Ack("signals", "advisor", (entry,))))
    assert result.outcome is GroupOutcome.WRITTEN and len(result.ids) == 2
    assert _data(await client.xrange("decisions")) == [b"decision d1"]
    assert _data(await client.xrange("intents")) == [b"intent d1"]
    assert await client.get("decided:s1") == b"d1" and 0 < await client.ttl("decided:s1") <= 60
    assert await _pending(client, "signals", "advisor") == 0
    assert not await client.exists("telemetry"), "`otherwise` is for a group another writer did"


async def test_a_group_retried_after_its_answer_was_lost_is_written_once(
    bus: tuple[str, Any], link: tuple[LossyLink, Any]
) -> None:
    _, client = bus
    lossy, through = link
    (entry,) = await _pending_entries(client, "signals", "advisor", 1)
    group = _decision("d1", Ack("signals", "advisor", (entry,)))
    lossy.lose_answer_to(b"EVALSHA")
    with pytest.raises(RedisConnectionError):
        await write_group(through, group)
    assert lossy.lost == 1
    again = await write_group(through, group)
    assert again.outcome is GroupOutcome.DONE and again.ids == []
    assert _data(await client.xrange("decisions")) == [b"decision d1"]
    assert _data(await client.xrange("intents")) == [b"intent d1"]
    assert await _pending(client, "signals", "advisor") == 0


async def test_a_second_writer_of_the_same_mark_writes_only_its_other_entries_and_the_ack(
    bus: tuple[str, Any],
) -> None:
    _, client = bus
    first, second = await _pending_entries(client, "signals", "advisor", 2)
    assert (
        await write_group(client, _decision("d1", Ack("signals", "advisor", (first,))))
    ).outcome is GroupOutcome.WRITTEN
    taken = await write_group(client, _decision("d2", Ack("signals", "advisor", (second,))))
    assert taken.outcome is GroupOutcome.TAKEN and len(taken.ids) == 1
    assert _data(await client.xrange("decisions")) == [b"decision d1"]
    assert _data(await client.xrange("intents")) == [b"intent d1"]
    assert _data(await client.xrange("telemetry")) == [b"loose d2"]
    assert await client.get("decided:s1") == b"d1", "the mark stays the first writer's"
    assert await _pending(client, "signals", "advisor") == 0


# Run both ways: a group without a guard (MULTI/EXEC) and one with a fresh mark (the script).
_BOTH_WAYS = pytest.mark.parametrize("guarded", [False, True], ids=["transaction", "script"])


@_BOTH_WAYS
async def test_a_writer_killed_while_sending_its_group_wrote_none_of_it(
    bus: tuple[str, Any], guarded: bool
) -> None:
    url, client = bus
    (entry,) = await _pending_entries(client, "md.{t}.trades", "bars", 1)
    group = GroupWrite(
        appends=[Append("bars.1s", b"s" * 5000, 1000), Append("bars.1m", b"m" * 5000, 1000)],
        state=[SetFields("bars:checkpoint", {"BTC": b"{}"})],
        ack=Ack("md.{t}.trades", "bars", (entry,)),
        guard=Marked("commit-1", "t", 60) if guarded else None,
    )
    request = await _wire_request(client, group)
    await asyncio.to_thread(_send_and_die, url, request[: len(request) * 2 // 3])
    assert not await client.exists("bars.1s", "bars.1m", "bars:checkpoint", "commit-1")
    assert await _pending(client, "md.{t}.trades", "bars") == 1
    assert (await write_group(client, group)).outcome is GroupOutcome.WRITTEN
    assert _data(await client.xrange("bars.1m")) == [b"m" * 5000]
    assert await _pending(client, "md.{t}.trades", "bars") == 0


@_BOTH_WAYS
async def test_no_reader_ever_sees_part_of_a_group(bus: tuple[str, Any], guarded: bool) -> None:
    """Entries of 100 kB: a write that were not one command (or one transaction) would reach
    Redis in several reads, and another client's commands would run between its parts (a plain
    pipeline's do)."""
    url, client = bus
    reader: Any = aioredis.Redis.from_url(url)
    seen: list[tuple[int, int, int]] = []
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            async with reader.pipeline(transaction=True) as pipe:
                seen.append(tuple(await pipe.xlen("bars.1s").xlen("bars.1m").hlen("checkpoint").execute()))

    watching = asyncio.create_task(read())
    big = b"x" * 100_000
    try:
        for i in range(100):
            group = GroupWrite(
                appends=[Append("bars.1s", big), Append("bars.1m", big)],
                state=[SetFields("checkpoint", {f"symbol-{i}": b"{}"})],
                guard=Marked(f"commit-{i}", "t", 60) if guarded else None,
            )
            assert (await write_group(client, group)).outcome is GroupOutcome.WRITTEN
    finally:
        done.set()
        await watching
        await reader.aclose()
        await client.delete("bars.1s", "bars.1m")
    assert len(seen) > 10, "the reader read while the groups were written"
    assert all(a == b == c for a, b, c in seen), [s for s in seen if len(set(s)) > 1][:5]
    assert await client.hlen("checkpoint") == 100


@_BOTH_WAYS
async def test_a_large_group_acknowledges_every_input_and_writes_every_field(
    bus: tuple[str, Any], guarded: bool
) -> None:
    """A catch-up's commit: more inputs and checkpoint fields than one Lua call takes at once."""
    _, client = bus
    entries = await _pending_entries(client, "md.{t}.trades", "bars", 1300)
    state = {f"symbol-{i}": f"state {i}".encode() for i in range(1100)}
    group = GroupWrite(
        appends=[Append("bars.1s", b"bars", 1000)],
        state=[SetFields("bars:checkpoint", state), SetKey("plain", b"v")],
        ack=Ack("md.{t}.trades", "bars", tuple(entries)),
        guard=Marked("catch-up", "t", 60) if guarded else None,
    )
    written = await write_group(client, group)
    assert written.outcome is GroupOutcome.WRITTEN and len(written.ids) == 1
    assert await _pending(client, "md.{t}.trades", "bars") == 0
    assert await client.hlen("bars:checkpoint") == 1100
    assert await client.hget("bars:checkpoint", "symbol-1099") == b"state 1099"
    assert await client.get("plain") == b"v" and await client.ttl("plain") == -1


# ---- awaited appends (the inspector's journal): group commit


async def test_awaited_writes_share_round_trips_and_complete_in_order(bus: tuple[str, Any]) -> None:
    _, client = bus
    publisher = Publisher(client)
    ids = await asyncio.gather(*(publisher.write(Append("journal", f"{i}".encode())) for i in range(400)))
    assert ids == sorted(ids, key=lambda entry_id: tuple(int(p) for p in entry_id.split(b"-")))
    assert _data(await client.xrange("journal")) == [f"{i}".encode() for i in range(400)]
    assert publisher.round_trips < 20, publisher.round_trips


async def test_an_awaited_write_whose_answer_was_lost_fails_and_is_not_written_again(
    bus: tuple[str, Any], link: tuple[LossyLink, Any]
) -> None:
    _, client = bus
    lossy, through = link
    publisher = Publisher(through)
    lossy.lose_answer_to(b"XADD")
    results = await asyncio.gather(
        *(publisher.write(Append("journal", f"{i}".encode())) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, RedisConnectionError) for result in results), results
    after = await publisher.write(Append("journal", b"after"))
    written = _data(await client.xrange("journal"))
    assert written[-1] == b"after" and len(written) == len(set(written)), "none written twice"
    assert after == (await client.xrevrange("journal", count=1))[0][0]


def _resp(*args: Any) -> bytes:
    """A command as Redis reads it off the wire."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


async def _wire_request(client: Any, group: GroupWrite) -> bytes:
    """The bytes `write_group` sends for `group`: the script's EVAL, or the MULTI/EXEC."""
    if group.guard is not None:
        keys, args = script_call(group)
        return _resp("EVAL", GROUP_WRITE, len(keys), *keys, *args)
    async with client.pipeline(transaction=True) as pipe:
        queue_commands(pipe, group)
        commands = [_resp(*args) for args, _ in pipe.command_stack]
    return _resp("MULTI") + b"".join(commands) + _resp("EXEC")


def _send_and_die(url: str, partial: bytes) -> None:
    """Select the URL's database, send part of a request, and close: a writer killed mid-send."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(parts.path)
        db = parts.query.partition("db=")[2] or "0"
    else:
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
        db = parts.path.strip("/") or "0"
    with sock:
        sock.sendall(_resp("SELECT", db))
        assert sock.recv(64).startswith(b"+OK")
        sock.sendall(partial)
