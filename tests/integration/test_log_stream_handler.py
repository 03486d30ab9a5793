"""The log stream's handler (trademesh.core.platform.logs.stream) against a real Redis and against one that
never answers: lines with their fields and no secret on the stream; a full queue drops and counts;
a logging call never waits for Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.logs.setup import log_fields, record_fields
from trademesh.core.platform.logs.stream import STREAM, StreamLogHandler, StreamSettings, decode_entry
from trademesh.core.platform.logs.stream.handler import LINES_DROPPED
from trademesh.core.platform.logs.stream.scrubber import Scrubber

__all__ = ["redis_url"]  # the fixture, for pytest


@contextlib.contextmanager
def streamed(url: str, **options: Any) -> Iterator[tuple[logging.Logger, StreamLogHandler]]:
    options.setdefault("scrubber", Scrubber(["s3cr3t-token"]))
    handler = StreamLogHandler(StreamSettings(url, 1000), "probe", "p1", record_fields, **options)
    logger = logging.getLogger(f"tests.logstream.{uuid.uuid4().hex[:6]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def silent_redis() -> Iterator[str]:
    """A TCP server that takes connections and never answers: a Redis that hangs."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def dropped(reason: str) -> float:
    return float(LINES_DROPPED.labels(reason)._value.get())


async def test_lines_reach_the_stream_with_their_fields_and_no_secret(bus_url: str) -> None:
    """On one Redis and on a Redis Cluster (bus_url's two params: the stream's key lives on one
    of its masters)."""
    url = bus_url
    client: Any = open_redis(url)
    try:
        with streamed(url) as (logger, _):
            with log_fields(venue="sim", trace_id="t-1"):
                logger.warning("order %s refused, token s3cr3t-token", "o-1", extra={"symbol": "BTC/USDT"})
            try:
                raise RuntimeError("s3cr3t-token in an exception")
            except RuntimeError:
                logger.exception("failed")

            async def written() -> list[Any] | None:
                entries: Any = await client.xrange(STREAM)
                return entries if len(entries) == 2 else None

            entries = await until(written, 10, what="two entries on the stream")
        first, second = (decode_entry(entry_id, raw) for entry_id, raw in entries)
        assert (first.service, first.instance, first.level, first.logger) == (
            "probe",
            "p1",
            "WARNING",
            logger.name,
        )
        assert first.message == "order o-1 refused, token ***"
        assert dict(first.fields) == {"venue": "sim", "trace_id": "t-1", "symbol": "BTC/USDT"}
        assert abs(first.time_ns - time.time_ns()) < 60e9
        assert "RuntimeError: *** in an exception" in second.exception and "s3cr3t" not in second.exception
    finally:
        await client.aclose()


async def test_a_full_queue_drops_new_lines_and_counts_them() -> None:
    with silent_redis() as url, streamed(url, queue_entries=10, batch_entries=10) as (logger, handler):
        before = dropped("queue_full")
        for n in range(100):
            logger.info("line %d", n)
        assert handler.queued <= 10
        # At most one batch left the queue (the sender waits on the silent Redis with it).
        assert dropped("queue_full") - before >= 80


async def test_a_logging_call_never_waits_for_a_redis_that_hangs() -> None:
    with silent_redis() as url, streamed(url, queue_entries=100_000) as (logger, _):
        before = dropped("unavailable")
        over_1ms = blocked = calls = 0
        # Paced (about 4,000 lines/s) for longer than the sender's 1 s socket timeout: the calls
        # are made while it is stuck in a send, and after it gave the batch up.
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            for _ in range(20):
                started = time.perf_counter()
                logger.info("line %d", calls)
                took = time.perf_counter() - started
                calls += 1
                over_1ms += took > 0.001
                # A call that waited on the network would wait out a 0.5-1 s socket timeout.
                blocked += took > 0.1
            await asyncio.sleep(0.005)
        assert blocked == 0, f"{blocked} of {calls} calls blocked ({over_1ms} over 1 ms)"
        await until(
            lambda: _async(dropped("unavailable") > before or None), 10, what="the sender giving up a batch"
        )


async def _async(value: Any) -> Any:
    return value


# A secret with each character the line's JSON encoding escapes: a quote, a backslash, a newline,
# a control character. The handler scrubs the encoded line, where each reads escaped.
_ESCAPED_SECRETS = ('pa"ss-word-1', "pa\\ss-word-2", "pa\nss-word-3", "pa\x01ss-word-4")


async def test_secrets_the_json_encoding_escapes_are_scrubbed_on_the_stream(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        await _escaped_secrets_scrubbed(url)


async def _escaped_secrets_scrubbed(url: str) -> None:
    client: Any = open_redis(url)
    scrubber = Scrubber(list(_ESCAPED_SECRETS))
    try:
        with streamed(url, scrubber=scrubber) as (logger, _):
            for secret in _ESCAPED_SECRETS:
                logger.warning("connecting with %s failed", secret, extra={"dsn": f"x={secret}"})

            async def written() -> list[Any] | None:
                entries: Any = await client.xrange(STREAM)
                return entries if len(entries) == len(_ESCAPED_SECRETS) else None

            entries = await until(written, 10, what="a line per secret on the stream")
        lines = [decode_entry(entry_id, raw) for entry_id, raw in entries]
        assert [line.message for line in lines] == ["connecting with *** failed"] * len(_ESCAPED_SECRETS)
        assert [dict(line.fields) for line in lines] == [{"dsn": "x=***"}] * len(_ESCAPED_SECRETS)
    finally:
        await client.aclose()


async def test_the_passwords_of_the_telegram_base_url_and_of_a_flags_url_are_scrubbed(
    redis_url: str, monkeypatch: Any
) -> None:
    """TRADEMESH_TELEGRAM_BASE_URL's password (the environment) and the Supervisor's
    --gateway-url's (the command line, held by the CLI before the handler is made)."""
    from trademesh.core.platform.logs.stream.scrubber import hold_urls

    monkeypatch.setenv("TRADEMESH_TELEGRAM_BASE_URL", "https://bot:tg-proxy-pw@proxy.example")
    hold_urls(["http://ops:gw-flag-pw@127.0.0.1:8081", 5, None])
    async with redis_db(redis_url) as url:
        await _url_passwords_scrubbed(url)


async def _url_passwords_scrubbed(url: str) -> None:
    client: Any = open_redis(url)
    try:
        with streamed(url, scrubber=Scrubber.from_environment()) as (logger, _):
            logger.warning("proxy said tg-proxy-pw; the gateway gw-flag-pw")

            async def written() -> list[Any] | None:
                entries: Any = await client.xrange(STREAM)
                return entries or None

            entries = await until(written, 10, what="the line on the stream")
        assert decode_entry(*entries[0]).message == "proxy said ***; the gateway ***"
    finally:
        await client.aclose()
