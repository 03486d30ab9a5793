"""Deterministic client order ids: uuid5 of what the order is for, as 32 hex digits (within
every venue's length limit), so a duplicated intent or a replay gives the same id."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["entry_order_id", "flatten_order_id", "protective_order_id", "reduce_order_id"]

_NAMESPACE = uuid.UUID("6f1e0c4a-3b2d-4e8f-9a7c-696e73706563")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def _uuid5_hex(name: str) -> str:
    """uuid.uuid5(_NAMESPACE, name).hex, without the UUID built to read its hex (every protective
    order placed makes one)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def entry_order_id(intent_id: str) -> str:
    return _uuid5_hex(f"order/{intent_id}")


def protective_order_id(venue: str, symbol: str, role: str, generation: int, book: str = "") -> str:
    """The `generation`-th protective order of a role on a position: a resize is a new order.
    `book` names the core's lifetime (its journal's start), so another journal's first stop
    is not taken by the venue for this one's (a venue keeps client order ids it has seen)."""
    return _uuid5_hex(f"protect/{book}/{venue}/{symbol}/{role}/{generation}")


def flatten_order_id(venue: str, symbol: str, at_ns: int) -> str:
    return _uuid5_hex(f"flatten/{venue}/{symbol}/{at_ns}")


def reduce_order_id(venue: str, symbol: str, at_ns: int) -> str:
    """A position reduced by policy for being too near its liquidation price."""
    return _uuid5_hex(f"reduce/{venue}/{symbol}/{at_ns}")
