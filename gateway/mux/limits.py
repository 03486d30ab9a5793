"""The multiplexer's bounds: what one session, and one credential's key, may hold at once."""

from __future__ import annotations

from dataclasses import dataclass

from core.foundations.errors import FieldViolation, InvalidArgument

__all__ = ["MuxLimits"]


@dataclass(frozen=True)
class MuxLimits:
    # Live subscriptions of one session (a tab): Studio's pages need a handful each.
    max_subscriptions: int = 64
    # Open sessions of one API key (its Studio sessions and the key itself together): one per
    # tab or tool; a leaking client hits this instead of the gateway's memory.
    max_sessions_per_key: int = 32
    # Frames waiting for a slow client, per session. A subscription whose next frame does not
    # fit is ended with RESOURCE_EXHAUSTED (gateway.mux.session), so a stalled tab costs at
    # most this much memory and never slows the services it reads.
    max_queued_bytes: int = 4 * 1024 * 1024
    # How often an open session checks its credential again: a revoked key or an expired
    # Studio session ends the stream (UNAUTHENTICATED) within this (plus the key refresh).
    recheck_s: float = 2.0

    def __post_init__(self) -> None:
        violations = [
            FieldViolation(name, f"{value} is not a positive number")
            for name, value in (
                ("max_subscriptions", self.max_subscriptions),
                ("max_sessions_per_key", self.max_sessions_per_key),
                ("max_queued_bytes", self.max_queued_bytes),
                ("recheck_s", self.recheck_s),
            )
            if not value > 0
        ]
        if violations:
            raise InvalidArgument(violations)
