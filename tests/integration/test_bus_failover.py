"""A Redis Cluster master killed under two venues writing their own streams (issue 56, item 5):
three masters, each with a replica (tests/integration/redis_cluster.py, a 2 s node timeout), and
two real sim venues (`trademesh venue sim --account ... --bus-direct`), one whose streams hash to
master A, one to master B. B is killed (kill -9) and its replica takes over: by itself (elected
about a second after the node timeout), or late (promoted by hand 2.5 s after the cluster marked
B failed: a replica that may not fail over by itself, `cluster-replica-no-failover`).

- The venue on A lost nothing: no gap marker on its streams, and it stalls no longer than the
  cluster refuses every write while B's slots have no master (`cluster-require-full-coverage`,
  Redis's default) plus a retry. Before, a refusal longer than redis-py's own retries (about 1 s)
  ended its writing for good (CLUSTERDOWN was no outage to the writer, nor the AttributeError
  redis-py 8.1 lets out of a connection another task closed); and an outage of its writer
  compared the run ids of every master together: it waited for B's replica, then marked its
  streams "entries may be lost".
- The venue on B: its streams are marked (the replica may lack B's last writes), and written
  again within the node timeout plus the election (or the delay) and a retry (docs/bus.md).

One writer of streams on both masters (ingest's shape: one writer for every venue it follows)
has an outage whatever the timing (its flush names B): only B's streams are said lost, not A's
(before: all of them, the run ids of every master compared together).

One cluster for the module (its start is about 2.5 s, most of it Redis's own wait before a new
master takes writes): each test kills a master of its own, one whose replica is still there, and
writes streams of its own (venue names of the test's own), beside a healthy master the earlier
tests left serving. A killed master stays in the cluster's table as failed, with no slots: it
counts in no majority (only masters serving slots vote and report failures).

bench/cluster_failover.py runs the process case with the 5 s default node timeout and reports the
figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from tests.integration.mesh import sim_config
from tests.integration.redis_cluster import LocalCluster, slot_ranges
from tests.integration.support import VENUE_ENV, until
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.bus.writer import BusWriter
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md

# Alone (tests/workers.py, `exclusive`): the stalls are bounded in seconds and the cluster's election
# runs on the machine's cores; beside three workers' tests a replica's promotion or the writers'
# retries ran past the bounds (2 of about 12 runs at load 10-14).
pytestmark = [pytest.mark.integration, pytest.mark.exclusive]

NODE_TIMEOUT_MS = 2000
CHANNELS = ("trades", "book")
# How long after the cluster marked B failed its replica is promoted in the "late" case.
LATE_S = 2.5
# The venue on the healthy master: the cluster's refusal while B's slots have no master (B marked
# failed, its replica not yet elected: about 1 s; or LATE_S) and a retry (redis-py's 3 x 0.25 s,
# the writer's at most 1.5 s), with room for a loaded machine.
HEALTHY_STALL_S = 3.0
# The venue on the failed master: the node timeout, the replica's election (0.5-1 s), redis-py's
# retries and the writer's next retry, with room for a loaded machine.
FAILED_STALL_S = NODE_TIMEOUT_MS / 1000 + 5.0


@dataclass
class Written:
    """What a venue's streams hold: the gap notices, and the longest a batch waited to be written."""

    gaps: int
    stall_s: float
    batches_after: int


def account_on(first_slot: int, last_slot: int, prefix: str) -> str:
    """An account name whose venue `sim.<account>` hashes into the slots [first, last]."""
    for i in range(100_000):
        account = f"{prefix}{i}"
        if first_slot <= key_slot(f"sim.{account}".encode()) <= last_slot:
            return account
    raise AssertionError("no account name hashes there")


@contextlib.asynccontextmanager
async def cluster_with_replicas(directory: Path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster(directory / "cluster", masters=3, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS)
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)


@dataclass
class Shared:
    """The module's cluster, and which of its masters the tests have killed (by slot range)."""

    cluster: LocalCluster
    killed: list[int] = field(default_factory=list)

    def serving(self, index: int) -> int:
        """The port of the node serving the index-th slot range: its master, or the replica that took over."""
        if index in self.killed:
            (replica,) = self.cluster.replica_ports(index)
            return replica
        return self.cluster.master_ports[index]

    @property
    def url(self) -> str:
        """The cluster's live nodes (the masters killed before left out: a client starts from the others)."""
        dead = {self.cluster.master_ports[i] for i in self.killed}
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.cluster.ports if p not in dead)

    async def fault(self) -> Fault:
        """A master for the test to kill (one whose replica is still there: B) and a healthy one
        (A), in the order the first test had them alone: B the second master, A the first; once
        the cluster is whole (an earlier test's failover over)."""
        b = next(i for i in (1, 2, 0) if i not in self.killed)
        a = next(i for i in (0, 1, 2) if i != b)
        (replica,) = self.cluster.replica_ports(b)
        fault = Fault(self, a, b, self.cluster.master_ports[b], replica, self.serving(a), self.url)
        self.killed.append(b)  # whatever the test does next: a kill that failed leaves it unsure
        await until(functools.partial(_cluster_state, fault.healthy, "ok"), 30, what="the cluster whole")
        return fault


@dataclass(frozen=True)
class Fault:
    shared: Shared
    a: int  # the healthy master's slot range
    b: int  # the failed one's
    master: int  # B's port
    replica: int  # B's replica's port
    healthy: int  # A's port (a node of the cluster that stays up)
    url: str  # the cluster's live nodes, B's master among them

    def kill(self) -> None:
        self.shared.cluster.kill(self.master)


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    async with cluster_with_replicas(tmp_path_factory.mktemp("failover")) as cluster:
        yield Shared(cluster)


def start_direct_sim(
    stack: contextlib.AsyncExitStack, tmp_path: Path, account: str, url: str
) -> ServiceProcess:
    venue = _direct_sim(tmp_path, account, url)
    stack.push_async_callback(asyncio.to_thread, venue.terminate)
    return venue


def _direct_sim(tmp_path: Path, account: str, url: str) -> ServiceProcess:
    config = sim_config(tmp_path, 50, 100, name=f"{account}.toml")
    args = ["venue", "sim", "--account", account, "--port", "0", "--metrics-port", "-1",
            "--config", str(config), "--bus-direct", "--redis-url", url]  # fmt: skip
    with (tmp_path / f"{account}.log").open("a") as log:
        return start_service(args, env=VENUE_ENV, stderr=log)


async def start_direct_sims(
    stack: contextlib.AsyncExitStack, tmp_path: Path, accounts: list[str], url: str
) -> None:
    """The venues started at once (each start waits for its serving line), each ended when `stack`
    closes, the ones started too when another failed to."""
    started = await asyncio.gather(
        *(asyncio.to_thread(_direct_sim, tmp_path, account, url) for account in accounts),
        return_exceptions=True,
    )
    for venue in started:
        if isinstance(venue, ServiceProcess):
            stack.push_async_callback(asyncio.to_thread, venue.terminate)
    for failed in started:
        if isinstance(failed, BaseException):
            raise failed


async def written(client: Any, venue: str, since_ms: float) -> Written:
    """The venue's market streams: gap notices, and the longest wait of a batch whose events came
    after `since_ms` (its entry id's time less the venue's receive time of its newest event)."""
    gaps, stall_ms, after = 0, 0.0, 0
    for channel in CHANNELS:
        for entry_id, fields in await client.xrange(f"md.{{{venue}}}.{channel}"):
            events = decode(fields).market.events
            gaps += sum(1 for e in events if e.HasField("notice") and e.notice.kind == md.NOTICE_KIND_GAP)
            received = [e.ts_recv_ns / 1e6 for e in events if not e.HasField("notice")]
            if received and max(received) > since_ms:
                after += 1
                stall_ms = max(stall_ms, int(entry_id.decode().split("-")[0]) - max(received))
    return Written(gaps, stall_ms / 1000, after)


def _config(port: int, name: str, value: str) -> None:
    with redis.Redis(port=port, socket_timeout=5) as client:
        client.config_set(name, value)


async def _cluster_state(port: int, state: str) -> bool | None:
    """Whether the node on `port` says the cluster is in `state` ("fail": a master's slots
    without a master; "ok")."""
    with redis.Redis(port=port, socket_timeout=5) as client:  # a local answer: in no time
        return True if str(client.cluster("INFO").get("cluster_state")) == state else None


async def _took_over(replica: int, healthy: int) -> bool | None:
    """Whether `replica` is a master now and the cluster (as `healthy` sees it) whole again."""
    with redis.Redis(port=replica, socket_timeout=5) as client:
        if client.info("replication").get("role") != "master":
            return None
    return await _cluster_state(healthy, "ok")


async def promote_late(healthy: int, replica: int) -> None:
    """B's replica promoted by hand LATE_S after the cluster (as `healthy` sees it) marked B failed."""
    failed = functools.partial(_cluster_state, healthy, "fail")
    await until(failed, 30, what="the cluster marks the master failed")
    await asyncio.sleep(LATE_S)  # the outside world's delay (an operator), not a wait for a condition
    with redis.Redis(port=replica, socket_timeout=5) as client:
        client.cluster("FAILOVER", "TAKEOVER")


@pytest.mark.parametrize("late", [False, True], ids=["elected", "promoted-late"])
async def test_a_master_killed_marks_and_stalls_only_its_own_streams(
    shared: Shared, tmp_path: Path, late: bool
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        fault = await shared.fault()
        replica = fault.replica
        if late:
            _config(replica, "cluster-replica-no-failover", "yes")
        ranges = slot_ranges(shared.cluster.masters)
        (a_first, a_last), (b_first, b_last) = ranges[fault.a], ranges[fault.b]
        case = "late" if late else "elected"  # venues of the test's own: streams of its own
        healthy = f"sim.{account_on(a_first, a_last, f'a{case}')}"
        failed = f"sim.{account_on(b_first, b_last, f'b{case}')}"
        url = fault.url
        await start_direct_sims(stack, tmp_path, [v.removeprefix("sim.") for v in (healthy, failed)], url)
        client: Any = open_redis(url)
        stack.push_async_callback(client.aclose)
        for venue in (healthy, failed):
            await until(functools.partial(_some, client, venue), 30, what=f"{venue}'s trades on the bus")

        killed_ms = time.time() * 1000
        fault.kill()
        if late:
            await promote_late(fault.healthy, replica)
        took_over = functools.partial(_took_over, replica, fault.healthy)
        await until(took_over, 30, what="B's replica took its slots over")
        # Both go on writing after the failover (a writer that ended has only its queue left).
        recovered_ms = time.time() * 1000 + 1000
        for venue in (healthy, failed):
            written_then = functools.partial(_written_after, client, venue, recovered_ms)
            await until(written_then, 30, what=f"{venue} writing after the failover")

        # B's marker follows the writer's first flush after the outage (the flush, then the run id
        # read, then the notice): it may come after the batches seen above.
        await until(functools.partial(_marked, client, failed, killed_ms), 30, what=f"{failed} marked")
        on_a, on_b = await written(client, healthy, killed_ms), await written(client, failed, killed_ms)
        assert on_a.gaps == 0, f"{healthy}: its master is healthy: nothing lost, no gap marker"
        late_s = LATE_S if late else 0.0
        assert on_a.stall_s < HEALTHY_STALL_S + late_s, f"{healthy} stalled {on_a.stall_s:.2f} s"
        assert on_b.gaps > 0, f"{failed}: its master failed over: entries may be lost, marked"
        assert on_b.stall_s < FAILED_STALL_S + late_s, f"{failed} stalled {on_b.stall_s:.2f} s"
        assert on_b.stall_s > NODE_TIMEOUT_MS / 1000, "B's slots had no master until the node timeout"


async def _marked(client: Any, venue: str, since_ms: float) -> bool | None:
    try:
        found = await written(client, venue, since_ms)
    except redis.RedisError:  # the cluster failing over: asked again
        return None
    return True if found.gaps > 0 else None


async def _some(client: Any, venue: str) -> bool | None:
    return True if await client.xlen(f"md.{{{venue}}}.trades") > 0 else None


async def _written_after(client: Any, venue: str, after_ms: float) -> Written | None:
    try:
        found = await written(client, venue, after_ms)
    except redis.RedisError:  # the cluster failing over: asked again
        return None
    return found if found.batches_after > 0 else None


async def test_one_writer_of_both_masters_says_only_the_failed_ones_streams_lost(shared: Shared) -> None:
    fault = await shared.fault()
    ranges = slot_ranges(shared.cluster.masters)
    (a_first, a_last), (b_first, b_last) = ranges[fault.a], ranges[fault.b]
    on_a = f"md.{{sim.{account_on(a_first, a_last, 'awriter')}}}.trades"
    on_b = f"md.{{sim.{account_on(b_first, b_last, 'bwriter')}}}.trades"
    url = fault.url
    client: Any = open_redis(url)
    writer = BusWriter(Publisher(client), "test")
    lost: list[Any] = []
    writer.on_loss = lost.append
    stop = asyncio.Event()
    try:
        assert await writer.connect(stop, url)
        running = asyncio.create_task(writer.run(stop))
        try:
            for stream in (on_a, on_b):
                await writer.publish_envelope(stream, b"before")
            await until(functools.partial(_lengths, client, (on_a, on_b), 1), 10, what="both written")
            # And their servers' run ids read (the writer's next step after the flush): a kill
            # before that read made the ids it compares after the outage the new master's.
            await until(functools.partial(_ids_read, writer, (on_a, on_b)), 10, what="both run ids read")
            fault.kill()
            for stream in (on_a, on_b):  # B's refused: the flush fails whole, an outage
                await writer.publish_envelope(stream, b"after")
            await until(functools.partial(_took_over, fault.replica, fault.healthy), 30, what="failover")
            await until(functools.partial(_lengths, client, (on_a, on_b), 2), 30, what="both written again")
            assert writer.outages > 0
            assert len(lost) == 1 and set(lost[0]) == {on_b}, f"only B's stream said lost: {lost}"
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
    finally:
        await client.aclose()


async def _ids_read(writer: BusWriter, streams: tuple[str, ...]) -> bool | None:
    return True if set(streams) <= set(writer._run_ids) else None


async def _lengths(client: Any, streams: tuple[str, ...], at_least: int) -> bool | None:
    try:
        lengths = [await client.xlen(stream) for stream in streams]
    except redis.RedisError:  # the cluster failing over: asked again
        return None
    return True if min(lengths) >= at_least else None
