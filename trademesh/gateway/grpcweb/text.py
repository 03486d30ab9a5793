"""grpc-web-text: the same frames, base64-encoded.

A client may send its body as several base64 chunks one after another, each padded on its
own ("AAAA...==AAAB..."), so the body is decoded chunk by chunk: a base64 quantum (4
characters) that holds padding ends a chunk. Responses are encoded one frame at a time for
the same reason: a client can decode each as it arrives.
"""

from __future__ import annotations

import base64
import binascii
import re

from trademesh.core.platform.errors import InvalidArgument

__all__ = ["MAX_CHUNKS", "decode_text", "encode_text"]

# Padded chunks one body may hold. A client encodes its one request message in one go (or in
# a few writes); a body of thousands of two-byte chunks costs the gateway a Python call each.
MAX_CHUNKS = 64

_WHITESPACE = re.compile(rb"\s+")
# A run of padding ends a chunk (where it is valid: at the end of a 4-character quantum).
_PADDING = re.compile(rb"=+")


def encode_text(chunk: bytes) -> bytes:
    return base64.b64encode(chunk)


def decode_text(body: bytes) -> bytes:
    text = _WHITESPACE.sub(b"", body)
    if len(text) % 4:
        # Tolerate an unpadded last chunk: pad it as a strict decoder expects.
        text += b"=" * (-len(text) % 4)
    parts: list[bytes] = []
    start = 0
    for count, padding in enumerate(_PADDING.finditer(text), 1):
        if count > MAX_CHUNKS:
            raise InvalidArgument.field("body", f"more than {MAX_CHUNKS} base64 chunks (padded parts)")
        end = padding.end()
        parts.append(_decode(text[start:end], start))
        start = end
    if start < len(text):
        parts.append(_decode(text[start:], start))
    return b"".join(parts)


def _decode(chunk: bytes, offset: int) -> bytes:
    try:
        return base64.b64decode(chunk, validate=True)
    except binascii.Error as exc:
        raise InvalidArgument.field("body", f"bad base64 at character {offset}: {exc}") from None
