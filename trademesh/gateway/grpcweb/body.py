"""Reading a gRPC-web request body: a limit per route, refused as early as it can be, and the
costly part (base64 of text mode) off the event loop.

- Health is open (no token), so anyone can send it a body: its requests are a service name,
  and its limit is 4 KiB. Every other route takes what the services behind it take
  (trademesh.core.platform.rpc.server.MAX_REQUEST_BYTES, 1 MiB of message), base64's third more in text mode.
- A Content-Length over the limit is refused before one byte of the body is read; a body
  without one (chunked) is refused when the count passes the limit.
- A text-mode body over 64 KiB is decoded in a worker thread, so a few large bodies do not
  hold up every other call of the gateway while they are decoded.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.types import Receive

from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.server import MAX_REQUEST_BYTES
from trademesh.gateway.grpcweb.text import decode_text

__all__ = ["OPEN_REQUEST_BYTES", "BodyGone", "body_limit", "read_body"]

OPEN_REQUEST_BYTES = 4 * 1024
_FRAME_HEADER_BYTES = 5
# Bodies larger than this (text mode) are decoded in a thread; smaller ones cost less than the hop.
_THREAD_DECODE_BYTES = 64 * 1024


class BodyGone(Exception):
    """The client disconnected before its body was whole."""


def body_limit(open_route: bool, text: bool, message_bytes: int = MAX_REQUEST_BYTES) -> int:
    """The most body bytes a route takes: one frame of at most `message_bytes` (4 KiB when the
    route is open to callers without a token), base64-encoded in text mode."""
    framed = (OPEN_REQUEST_BYTES if open_route else message_bytes) + _FRAME_HEADER_BYTES
    return 4 * ((framed + 2) // 3) if text else framed


async def read_body(receive: Receive, headers: Headers, limit: int, text: bool) -> bytes:
    """The whole body, base64-decoded in text mode; ResourceExhausted past `limit`."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResourceExhausted(f"request body of {int(declared)} bytes is larger than {limit} bytes")
    body = await _receive_all(receive, limit)
    if not text:
        return body
    if len(body) > _THREAD_DECODE_BYTES:
        return await asyncio.to_thread(decode_text, body)
    return decode_text(body)


async def _receive_all(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ResourceExhausted(f"request body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
