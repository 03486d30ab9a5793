"""Open the bus's Redis client, the one way: with deadlines on every socket operation.

A client without timeouts hangs forever on a Redis that stopped answering (a paused VM, a
dropped connection with no RST); with them, the call fails and the caller's retry loop
(trademesh.core.platform.aio.retry) takes over. The read timeout stays well above the consumers'
XREADGROUP block (trademesh.core.platform.bus.consumer, 0.5 s).

`checked_ping` is every service's first word with the bus: a server that answers but is not
Redis (an HTTP server on the port; PostgreSQL, which closes the connection on a PING), or one
that refuses the URL itself (a database past its count), is InvalidArgument naming the setting
(REDIS_URL or --redis-url): no retry mends it, and a service retrying it (or dying of it with a
traceback) hid the mistake.

A Redis Cluster is named by the scheme `redis+cluster://` (`rediss+cluster://` with TLS) and one
or more of its nodes, comma-separated: `redis+cluster://10.0.0.1:7000,10.0.0.2:7000`; the client
(redis.asyncio.RedisCluster) learns the others and routes each command by its keys' slot. A
cluster has only database 0. What differs for the bus on a cluster (reading by slot, scanning
every master) is here too: `is_cluster`, `slot_groups`, `server_run_id`, `stream_run_ids`.

On a cluster, "cannot be reached now" includes the cluster refusing while it fails over a master
(CLUSTERDOWN, TRYAGAIN, a slot not covered yet): REDIS_UNREACHABLE, retried as an outage. redis-py
8.1's cluster client closes every connection of the client on a CLUSTERDOWN (to learn the layout
again), and a command of another task on one of them then fails with an AttributeError or TypeError
out of its connection (redis/redis-py#4287, fixed after 8.1.0): `unreachable(exc)` counts those too,
so a writer rides them out instead of ending (a venue on a healthy master stopped writing for good).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    InvalidResponse,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.platform.aio.retry import until_reachable
from trademesh.core.platform.config.env import REDIS_URL, setting_of
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.redact import redact_url

log = logging.getLogger(__name__)

__all__ = [
    "CLUSTER_SCHEMES",
    "CONNECT_TIMEOUT_S",
    "READ_TIMEOUT_S",
    "REDIS_UNREACHABLE",
    "BusRedis",
    "checked_ping",
    "is_cluster",
    "open_redis",
    "reach_redis",
    "refresh_layout",
    "server_run_id",
    "slot_groups",
    "stream_run_ids",
    "unreachable",
]

# The client open_redis returns: one Redis, or a cluster's.
BusRedis = aioredis.Redis | RedisCluster
# URL schemes that name a Redis Cluster (the rest of the URL: one or more nodes, comma-separated).
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# The errors that say Redis cannot be reached now (a later try may reach it), not a refusal: on a
# cluster, also a cluster failing over a master (CLUSTERDOWN, TRYAGAIN, a slot not covered yet).
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
# An idle connection is pinged before reuse after this long, so a dead one is found first.
_HEALTH_CHECK_S = 5


def open_redis(url: str, read_timeout_s: float = READ_TIMEOUT_S) -> BusRedis:
    """A client for `url` (connects lazily, on its first command): a RedisCluster for a
    `redis+cluster://` URL (module docstring)."""
    timeouts: dict[str, Any] = {
        "socket_timeout": read_timeout_s,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "health_check_interval": _HEALTH_CHECK_S,
    }
    if urllib.parse.urlsplit(url).scheme in CLUSTER_SCHEMES:
        return _open_cluster(url, timeouts)
    client: aioredis.Redis = aioredis.Redis.from_url(url, **timeouts)
    return client


def _open_cluster(url: str, options: dict[str, Any]) -> RedisCluster:
    """A RedisCluster for `redis+cluster://[user:password@]host:port[,host:port ...][/0][?...]`."""
    parts = urllib.parse.urlsplit(url)
    credentials, at, hosts = parts.netloc.rpartition("@")
    addresses = [address for address in hosts.split(",") if address]
    setting = setting_of(url, REDIS_URL, "redis-url")
    if not addresses:
        raise InvalidArgument.field(setting, f"{redact_url(url)} names no node")
    if parts.path not in ("", "/", "/0"):
        raise InvalidArgument.field(setting, f"{redact_url(url)}: a Redis Cluster has only database 0")
    # The first node as a plain URL (with the credentials and options), every node to start from.
    first = parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme], netloc=f"{credentials}{at}{addresses[0]}")
    nodes = [ClusterNode(*_host_port(address)) for address in addresses]
    return RedisCluster.from_url(urllib.parse.urlunsplit(first), startup_nodes=nodes, **options)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host:
        return address, 6379
    return host.strip("[]"), int(port)


async def refresh_layout(client: Any) -> None:
    """A cluster's slots asked of its nodes again (a failover moved a master's): redis-py refreshes
    its map only on the errors it counts, and a pipeline retried after the dead master's connection
    errors kept writing to it past its replica's promotion (30 s and on, under load). A writer
    retrying an outage asks at each retry; until the cluster has settled the map may still be the
    old one, and the next retry asks again. Nothing on a single Redis."""
    if not is_cluster(client):
        return
    try:
        await client.nodes_manager.initialize()
    except Exception as exc:  # no node answers yet: the retry asks again
        log.debug("cluster layout not refreshed: %s", exc)


def is_cluster(client: Any) -> bool:
    """Whether `client` talks to a Redis Cluster."""
    return isinstance(client, RedisCluster)


def slot_groups(client: Any, streams: Iterable[str]) -> list[list[str]]:
    """`streams` in groups one command may name together: all of them on one Redis; those of
    one hash slot each on a cluster (a multi-key command, XREADGROUP of many streams too, takes
    keys of one slot there). In the order of their first stream."""
    if not is_cluster(client):
        return [list(streams)]
    groups: dict[int, list[str]] = {}
    for stream in streams:
        groups.setdefault(client.keyslot(stream), []).append(stream)
    return list(groups.values())


async def server_run_id(client: BusRedis) -> str:
    """The server's run id (a new one after every restart); a cluster's masters' together."""
    if not isinstance(client, RedisCluster):
        return str((await client.info("server"))["run_id"])
    answer: dict[str, Any] = await client.info("server", target_nodes=RedisCluster.PRIMARIES)
    if "run_id" in answer:  # one master: its answer, not one per node
        return str(answer["run_id"])
    return ",".join(sorted(str(info["run_id"]) for info in answer.values()))


async def stream_run_ids(client: BusRedis, streams: Iterable[str]) -> dict[str, str]:
    """Per stream, the run id of the server that holds it now: the one Redis's, or on a cluster
    the master of its slot's (asked once per master). A stream's data is lost only when that
    server's run id changed (restarted empty, or a replica promoted in its place), not another's."""
    names = list(streams)
    if not isinstance(client, RedisCluster):
        run_id = str((await client.info("server"))["run_id"])
        return dict.fromkeys(names, run_id)
    by_node: dict[str, tuple[ClusterNode, list[str]]] = {}
    for stream in names:
        node = client.get_node_from_key(stream)
        if node is None:  # the layout being learned again: asked again after the outage
            raise SlotNotCoveredError(f"no master known for {stream}'s slot")
        by_node.setdefault(node.name, (node, []))[1].append(stream)
    found: dict[str, str] = {}
    for node, held in by_node.values():
        answer: dict[str, Any] = await client.info("server", target_nodes=node)
        found.update(dict.fromkeys(held, str(answer["run_id"])))
    return found


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says Redis cannot be reached now: REDIS_UNREACHABLE, or what redis-py 8.1 lets
    out of a connection another task closed under it (module docstring): an AttributeError or
    TypeError raised inside redis-py's or asyncio's own code."""
    if isinstance(exc, REDIS_UNREACHABLE):
        return True
    if not isinstance(exc, (AttributeError, TypeError)):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    return "/redis/" in where or "/asyncio/" in where


async def checked_ping(client: BusRedis, url: str) -> bool:
    """PING; InvalidArgument naming the URL's setting when what answers is not a Redis that
    takes the URL (unreachable stays a ConnectionError or OSError, for the caller to retry)."""
    try:
        return bool(await client.ping())
    except InvalidResponse as exc:
        raise InvalidArgument.field(
            setting_of(url, REDIS_URL, "redis-url"), f"{redact_url(url)} answers, but not as Redis ({exc})"
        ) from None
    except (ClusterDownError, TryAgainError):  # a cluster failing over: retried, not a refusal
        raise
    except ResponseError as exc:  # (LOADING is a ConnectionError: retried)
        raise InvalidArgument.field(
            setting_of(url, REDIS_URL, "redis-url"), f"{redact_url(url)}: Redis refuses it: {exc}"
        ) from None
    except RedisClusterException as exc:  # the cluster's client found no cluster there
        if "not enabled" in str(exc):
            raise InvalidArgument.field(
                setting_of(url, REDIS_URL, "redis-url"), f"{redact_url(url)} is not a Redis Cluster ({exc})"
            ) from None
        raise RedisConnectionError(str(exc)) from exc  # unreachable: the caller retries
    except RedisConnectionError as exc:
        if "closed by server" in str(exc) and await _closes_on_ping(url):
            raise InvalidArgument.field(
                setting_of(url, REDIS_URL, "redis-url"),
                f"{redact_url(url)} takes a connection, but closes it on a PING: not Redis",
            ) from None
        raise


async def reach_redis(
    client: BusRedis,
    url: str,
    service: str,
    stop: asyncio.Event,
    retry_on: tuple[type[BaseException], ...] = REDIS_UNREACHABLE,
) -> bool:
    """Whether Redis at `url` answered a checked PING before `stop` was set: an error of
    `retry_on` is logged (as the service's) and retried, a refusal raised (checked_ping)."""
    reached = await until_reachable(
        lambda: checked_ping(client, url),
        what=f"{service}: Redis at {redact_url(url)}",
        retry_on=retry_on,
        stop=stop,
    )
    return reached is not None


async def _closes_on_ping(url: str) -> bool:
    """Whether the server at `url` (redis://) takes a TCP connection and closes it on an inline
    PING without a byte of answer: not Redis (a Redis shutting down refuses the connection; one
    that refuses the client says why first)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis":
        return False
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "localhost", parts.port or 6379), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(1), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
    return answer == b""
