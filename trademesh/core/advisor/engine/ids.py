"""Deterministic ids: uuid5 of what a thing is made from, so a backtest of the same inputs gives
the same decision, intent and telemetry ids as the live run, byte for byte."""

from __future__ import annotations

import uuid

__all__ = ["decision_event_id", "decision_id", "event_id_of", "intent_id", "telemetry_id"]

_NAMESPACE = uuid.UUID("2b7c6f0e-8d4a-4c1f-9a3e-616476697372")


def decision_id(signal_id: str, now_ns: int) -> str:
    # The time keeps a re-decided signal (Decide on a stored signal) apart from its first decision.
    return str(uuid.uuid5(_NAMESPACE, f"decision/{signal_id}/{now_ns}"))


def intent_id(decision: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"intent/{decision}"))


def telemetry_id(sequence: int, at_ns: int, decision: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"telemetry/{sequence}/{at_ns}/{decision}"))


def decision_event_id(decision: str, index: int) -> str:
    """The index-th event of a decision: its id with the last 16 bits replaced by the index.

    Still a UUID of the same version and variant, unique per decision (a decision makes far
    fewer than 65,536 events), and made without hashing: a decision makes about 35 of them.
    """
    return event_id_of(decision[:-4], index)


# The last 16 bits of the first events' ids, written once.
_SUFFIXES = tuple(f"{i:04x}" for i in range(256))


def event_id_of(prefix: str, index: int) -> str:
    """decision_event_id(decision, index), given the decision's id less its last 4 digits."""
    return prefix + (_SUFFIXES[index] if index < 256 else f"{index & 0xFFFF:04x}")
