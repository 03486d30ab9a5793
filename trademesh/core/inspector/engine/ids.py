"""Deterministic client order ids: uuid5 of what the order is for, as 32 hex digits (within
every venue's length limit), so a duplicated intent or a replay gives the same id."""

from __future__ import annotations

import uuid

__all__ = ["entry_order_id", "flatten_order_id", "protective_order_id", "reduce_order_id"]

_NAMESPACE = uuid.UUID("6f1e0c4a-3b2d-4e8f-9a7c-696e73706563")


def entry_order_id(intent_id: str) -> str:
    return uuid.uuid5(_NAMESPACE, f"order/{intent_id}").hex


def protective_order_id(venue: str, symbol: str, role: str, generation: int, book: str = "") -> str:
    """The `generation`-th protective order of a role on a position: a resize is a new order.
    `book` names the core's lifetime (its journal's start), so another journal's first stop
    is not taken by the venue for this one's (a venue keeps client order ids it has seen)."""
    return uuid.uuid5(_NAMESPACE, f"protect/{book}/{venue}/{symbol}/{role}/{generation}").hex


def flatten_order_id(venue: str, symbol: str, at_ns: int) -> str:
    return uuid.uuid5(_NAMESPACE, f"flatten/{venue}/{symbol}/{at_ns}").hex


def reduce_order_id(venue: str, symbol: str, at_ns: int) -> str:
    """A position reduced by policy for being too near its liquidation price."""
    return uuid.uuid5(_NAMESPACE, f"reduce/{venue}/{symbol}/{at_ns}").hex
