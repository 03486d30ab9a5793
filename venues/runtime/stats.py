"""Per-stream statistics for Admin.GetStatus, kept cheap enough for the hot path.

The hot path only adds to counters; a sampler turns totals into rates once a second.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from core.model import StreamKey

__all__ = ["StreamState", "StreamStats", "StreamTable"]

# Weight of the newest one-second sample in the smoothed rate.
_RATE_SMOOTHING = 0.5


class StreamState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


@dataclass
class StreamStats:
    key: StreamKey
    state: StreamState = StreamState.CONNECTING
    events_total: int = 0
    last_event_ns: int = 0
    events_per_s: float = 0.0
    reconnects: int = 0
    resyncs: int = 0
    rate_limit_hits: int = 0
    malformed_messages: int = 0
    _sampled_total: int = 0
    _sampled_at: float = 0.0

    def sample(self, now: float) -> None:
        elapsed = now - self._sampled_at
        if self._sampled_at > 0 and elapsed > 0:
            rate = (self.events_total - self._sampled_total) / elapsed
            self.events_per_s += _RATE_SMOOTHING * (rate - self.events_per_s)
        self._sampled_total = self.events_total
        self._sampled_at = now

    def last_event_age_ms(self, now_ns: int) -> int:
        return -1 if self.last_event_ns == 0 else max(0, (now_ns - self.last_event_ns) // 1_000_000)


class StreamTable:
    """The stats of every stream a venue has had open, by key."""

    def __init__(self) -> None:
        self._stats: dict[StreamKey, StreamStats] = {}

    def get(self, key: StreamKey) -> StreamStats:
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = StreamStats(key)
        return stats

    def all(self) -> list[StreamStats]:
        return sorted(self._stats.values(), key=lambda s: (s.key.symbol, s.key.channel.value))

    def sample(self) -> None:
        now = time.monotonic()
        for stats in self._stats.values():
            stats.sample(now)
