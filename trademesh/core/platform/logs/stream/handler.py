"""The logging handler that puts each record on the `logs` stream without ever holding its caller.

emit() (on the caller's thread, any thread) turns the record into a stream entry and appends
it to a bounded in-process queue: no lock shared with the network, no I/O. One daemon thread
(not an event loop: records come from sync code too) wakes when lines wait, lingers a moment
to gather a batch, and XADDs the batch to the stream through one pipeline, `MAXLEN ~ N`.

A full queue drops the new line; a batch Redis does not take (unreachable, too slow) is
dropped, and the thread retries with the next batch after a back-off. Both are counted
(trademesh_log_lines_dropped_total{reason}); nothing is raised into the caller, nothing is
written to stderr about it (the stream is the copy; stderr keeps every line). close() (called
by logging.shutdown at exit) sends what waits, for at most FLUSH_S.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import redis
from prometheus_client import Counter
from redis.cluster import ClusterNode, RedisCluster

from trademesh.core.platform.logs.stream.config import StreamSettings
from trademesh.core.platform.logs.stream.entry import FIELD, STREAM
from trademesh.core.platform.logs.stream.scrubber import Scrubber

__all__ = ["FLUSH_S", "LINES_DROPPED", "LINES_TOTAL", "StreamLogHandler"]

LINES_TOTAL = Counter(
    "trademesh_log_lines_total", "Log lines handed to the log stream's handler, by level", ["level"]
)
LINES_DROPPED = Counter(
    "trademesh_log_lines_dropped_total",
    "Log lines that never reached the log stream: queue_full (the queue was full), "
    "unavailable (Redis did not take their batch)",
    ["reason"],
)
# How long close() waits for the last lines to go.
FLUSH_S = 1.0
_CONNECT_TIMEOUT_S = 0.5
_SOCKET_TIMEOUT_S = 1.0
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
# A line's text is cut here: the stream's bound is in entries, its memory in their size.
_MESSAGE_CHARS = 16 * 1024
_EXCEPTION_CHARS = 32 * 1024
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# A line: its entry's one field's value (entry.py).
Entry = str


class StreamLogHandler(logging.Handler):
    def __init__(
        self,
        settings: StreamSettings,
        service: str,
        instance: str,
        fields_of: Callable[[logging.LogRecord], Mapping[str, Any]],
        *,
        queue_entries: int = 10_000,
        batch_entries: int = 500,
        linger_s: float = 0.02,
        scrubber: Scrubber | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._fixed = {"svc": service, "inst": instance, "proc": f"{socket.gethostname()}:{os.getpid()}"}
        self._fields_of = fields_of
        self._scrub = scrubber or Scrubber.from_environment()
        self._capacity = queue_entries
        self._batch = batch_entries
        self._linger_s = linger_s
        self._xadd = _xadd_head(settings.maxlen_entries)
        self._queue: collections.deque[Entry] = collections.deque()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._full = LINES_DROPPED.labels("queue_full")
        self._unavailable = LINES_DROPPED.labels("unavailable")
        self._lines: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="log stream", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is self._thread:
            return  # the sender's own (redis-py's) records: never fed back to itself
        counter = self._lines.get(record.levelname)
        if counter is None:
            counter = self._lines[record.levelname] = LINES_TOTAL.labels(record.levelname)
        counter.inc()
        if len(self._queue) >= self._capacity:
            self._full.inc()
            return
        try:
            entry = self._entry(record)
        except Exception:
            self.handleError(record)
            return
        self._queue.append(entry)
        if not self._wake.is_set():
            self._wake.set()

    def close(self) -> None:
        """Send what waits (at most FLUSH_S), then stop the thread."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(FLUSH_S)
        super().close()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _entry(self, record: logging.LogRecord) -> Entry:
        line: dict[str, Any] = {
            "t": int(record.created * 1_000_000_000),
            "lvl": record.levelname,
            **self._fixed,
            "log": record.name,
            "msg": record.getMessage()[:_MESSAGE_CHARS],
        }
        fields = self._fields_of(record)
        if fields:
            line["f"] = {k: v if isinstance(v, str) else str(v) for k, v in fields.items()}
        if record.exc_info is not None and record.exc_info[0] is not None:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
            line["exc"] = text.rstrip()[-_EXCEPTION_CHARS:]
        # Scrubbed as JSON text: a secret is replaced wherever it is, escaped alike in every place.
        return self._scrub(json.dumps(line, ensure_ascii=False))

    def _run(self) -> None:
        client: Any = None
        failures = 0
        while True:
            self._wake.wait()
            if not self._closing.is_set():
                self._closing.wait(self._linger_s)  # gather a batch
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
                client, sent = self._send(client, batch)
                if sent:
                    failures = 0
                    continue
                self._unavailable.inc(len(batch))
                failures += 1
                if self._closing.is_set():  # no retry at exit: what waits is dropped
                    self._unavailable.inc(len(self._queue))
                    self._queue.clear()
                    break
                self._closing.wait(_BACKOFF_S[min(failures, len(_BACKOFF_S)) - 1])
            if self._closing.is_set():
                if client is not None:
                    client.close()
                return

    def _send(self, client: Any, batch: list[Entry]) -> tuple[Any, bool]:
        try:
            if client is None:
                client = _client(self._settings.url)
            if isinstance(client, RedisCluster):
                pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
                for entry in batch:
                    pipe.xadd(STREAM, {FIELD: entry}, maxlen=self._settings.maxlen_entries, approximate=True)
                pipe.execute()
            else:
                _send_packed(client, self._xadd, batch)
            return client, True
        except Exception:  # whatever Redis (or the client) says, the caller never hears of it
            if client is not None:
                client.close()
            return None, False


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _xadd_head(maxlen_entries: int) -> bytes:
    """`XADD logs MAXLEN ~ N * j` in RESP, all but the value: the same for every line."""
    words = [b"XADD", STREAM.encode(), b"MAXLEN", b"~", str(maxlen_entries).encode(), b"*", FIELD.encode()]
    return b"*8\r\n" + b"".join(_bulk(word) for word in words)


def _send_packed(client: Any, head: bytes, batch: list[Entry]) -> None:
    """The batch's XADDs written as one buffer, then their answers read (a pipeline without
    redis-py's per-command packing, which cost more than the rest of the line's path)."""
    payload = b"".join(head + _bulk(entry.encode()) for entry in batch)
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([payload])
        for _ in batch:
            connection.read_response()
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


def _client(url: str) -> Any:
    """A blocking client for `url` (a redis+cluster:// URL: the cluster's, found from its nodes)."""
    options: dict[str, Any] = {
        "socket_timeout": _SOCKET_TIMEOUT_S,
        "socket_connect_timeout": _CONNECT_TIMEOUT_S,
    }
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _CLUSTER_SCHEMES:
        return redis.Redis.from_url(url, **options)
    credentials, at, hosts = parts.netloc.rpartition("@")
    addresses = [address for address in hosts.split(",") if address]
    first = parts._replace(scheme=_CLUSTER_SCHEMES[parts.scheme], netloc=f"{credentials}{at}{addresses[0]}")
    nodes = [ClusterNode(*_host_port(address)) for address in addresses]  # type: ignore[no-untyped-call]
    return RedisCluster.from_url(urllib.parse.urlunsplit(first), startup_nodes=nodes, **options)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (address, 6379) if not host else (host.strip("[]"), int(port))
