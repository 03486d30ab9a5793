"""gRPC-web message framing: a flag byte, a 4-byte big-endian length, then the payload.

Data frames carry the protobuf message bytes untouched (forwarded as they came; the gateway
decodes only the few requests whose scope depends on them,
trademesh.core.platform.access.scopes.REQUEST_SCOPES); the trailer frame (flag 0x80) carries the
call's status as HTTP/1-style header lines.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "COMPRESSED_FLAG",
    "DATA_FLAG",
    "TRAILER_FLAG",
    "data_frame",
    "decode_frames",
    "request_message",
    "trailer_frame",
]

DATA_FLAG = 0x00
COMPRESSED_FLAG = 0x01
TRAILER_FLAG = 0x80

_HEADER = struct.Struct(">BI")


def data_frame(message: bytes) -> bytes:
    return _HEADER.pack(DATA_FLAG, len(message)) + message


def trailer_frame(trailers: Sequence[tuple[str, str]]) -> bytes:
    block = "".join(f"{name}: {value}\r\n" for name, value in trailers).encode("ascii")
    return _HEADER.pack(TRAILER_FLAG, len(block)) + block


def decode_frames(body: bytes) -> list[tuple[int, bytes]]:
    """(flag, payload) of every frame; InvalidArgument when the body is cut inside a frame."""
    frames: list[tuple[int, bytes]] = []
    view = memoryview(body)
    offset = 0
    while offset < len(view):
        if len(view) - offset < _HEADER.size:
            raise InvalidArgument.field("body", f"truncated frame header at byte {offset}")
        flag, length = _HEADER.unpack_from(view, offset)
        start = offset + _HEADER.size
        if start + length > len(view):
            raise InvalidArgument.field(
                "body", f"frame at byte {offset} announces {length} bytes, only {len(view) - start} follow"
            )
        frames.append((flag, bytes(view[start : start + length])))
        offset = start + length
    return frames


def request_message(body: bytes) -> bytes:
    """The one request message of a unary or server-streaming call."""
    frames = decode_frames(body)
    if len(frames) != 1:
        raise InvalidArgument.field("body", f"expected exactly one message frame, got {len(frames)}")
    flag, payload = frames[0]
    if flag & COMPRESSED_FLAG:
        # Browsers' gRPC-web clients never compress requests; nothing here can inflate them.
        raise InvalidArgument.field("body", "compressed messages are not supported (send them uncompressed)")
    if flag != DATA_FLAG:
        raise InvalidArgument.field("body", f"unexpected frame flag 0x{flag:02x} in a request")
    return payload
