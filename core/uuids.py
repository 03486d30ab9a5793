"""Deterministic ids as text: `str(uuid.uuid5(namespace, name))` made without building a
`uuid.UUID` (its __init__ and __str__ are Python: most of a uuid5's cost). The advisor makes
one or two a decision and the detector one a signal; a backtest's year makes about 50,000.
"""

from __future__ import annotations

import hashlib

__all__ = ["uuid5_text"]


def uuid5_text(namespace: bytes, name: str) -> str:
    """The same text as `str(uuid.uuid5(UUID(bytes=namespace), name))` (RFC 4122: SHA-1 of the
    namespace's 16 bytes and the name's UTF-8, its first 16 bytes with version 5 and the RFC
    variant set). `namespace`: a UUID's `bytes`, read once by the caller."""
    digest = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
