"""Per-stream statistics for Admin.GetStatus, kept cheap enough for the hot path.

The hot path only adds to counters; a sampler turns totals into rates once a second,
and judges each stream's silence against the stream's own usual silences:

- each stream learns how long it usually stays silent: whenever a sample sees new events,
  the silence that ended (since the last sample that saw some) is compared with what was
  learned, which holds the longest recent silence and halves every `_SILENCE_HALF_LIFE_S`
  of the stream's life (so one long lull is remembered for a while, and forgotten as the
  stream keeps busy); a book that ticks ten times a second, a pair whose trades come in
  bursts and an option whose trades come a few times an hour are each judged by their own;
- a connected stream is STALE once it has been silent for longer than `Staleness.factor`
  times its usual silence, and at least `Staleness.floor_s`; a stream whose pace is not
  known yet (fewer than `Staleness.learn_windows` silences seen) is never stale: a quiet
  stream is not a broken one.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from trademesh.core.domain.model import StreamKey

__all__ = ["Staleness", "StreamState", "StreamStats", "StreamTable"]

# Weight of the newest one-second sample in the smoothed rate.
_RATE_SMOOTHING = 0.5
# How fast a stream forgets a long silence while it keeps busy.
_SILENCE_HALF_LIFE_S = 600.0


class StreamState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"  # removed by an operator
    FAILED = "failed"  # stopped for good by an error (see StreamStats.detail)


@dataclass(frozen=True)
class Staleness:
    """When a connected stream's silence counts as abnormal (see the module docstring)."""

    factor: float = 4.0
    floor_s: float = 15.0
    learn_windows: int = 3


@dataclass
class StreamStats:
    key: StreamKey
    state: StreamState = StreamState.CONNECTING
    events_total: int = 0
    last_event_ns: int = 0  # the venue's time of the last event
    last_recv_ns: int = 0  # when we received it
    events_per_s: float = 0.0
    reconnects: int = 0
    resyncs: int = 0
    rate_limit_hits: int = 0
    malformed_messages: int = 0
    checksum_mismatches: int = 0
    duplicate_trades: int = 0
    # 0: the venue streams it; else it is polled (a REST read) this often (a funding rate where
    # the venue has no funding stream).
    poll_interval_ms: int = 0
    # Why the stream is FAILED (set by the connector) or stale (set by the sampler).
    detail: str = ""
    stale: bool = False
    # Why its book is not the venue's whole book (it never got the venue's snapshot: a replayed
    # session that recorded none); "" for a book that started from one, and for other streams.
    incomplete: str = ""
    usual_silence_s: float = 0.0
    _learned_at: float = 0.0
    _active_windows: int = 0
    _judged_state: StreamState = StreamState.CONNECTING
    _last_active: float = 0.0  # monotonic time of the last sample that saw new events
    _sampled_total: int = 0
    _sampled_at: float = 0.0

    def sample(self, now: float) -> None:
        elapsed = now - self._sampled_at
        new = self.events_total - self._sampled_total
        if self._sampled_at > 0 and elapsed > 0:
            rate = new / elapsed
            self.events_per_s += _RATE_SMOOTHING * (rate - self.events_per_s)
        if new > 0:
            self._learn_silence(now)
        self._sampled_total = self.events_total
        self._sampled_at = now

    def _learn_silence(self, now: float) -> None:
        if self._last_active > 0:
            silence = now - self._last_active
            held = self.usual_silence_s * 0.5 ** ((now - self._learned_at) / _SILENCE_HALF_LIFE_S)
            self.usual_silence_s = max(silence, held)
            self._learned_at = now
            self._active_windows += 1
        self._last_active = now

    def silence_s(self, now: float) -> float:
        """Seconds since a sample last saw an event of this stream (0 before the first)."""
        return 0.0 if self._last_active == 0 else now - self._last_active

    def judge(self, now: float, policy: Staleness) -> bool | None:
        """True when the stream has just gone stale, False when it has just recovered, else None."""
        if self.state is not self._judged_state:
            if self.state is StreamState.CONNECTED and self._judged_state is StreamState.DISCONNECTED:
                self._last_active = now  # after a reconnect, silence counts from the new connection
            self._judged_state = self.state
        if self.state is not StreamState.CONNECTED or self._active_windows < policy.learn_windows:
            stale = False
        else:
            stale = self.silence_s(now) > max(policy.floor_s, policy.factor * self.usual_silence_s)
        if stale == self.stale:
            return None
        self.stale = stale
        self.detail = self.stale_detail(now) if stale else ""
        return stale

    def stale_detail(self, now: float) -> str:
        return (
            f"no event for {self.silence_s(now):.0f} s, though this stream is usually silent for "
            f"{self.usual_silence_s:.0f} s at most: the venue may have stopped sending it"
        )

    def incomplete_notice(self) -> str:
        """The GAP notice's reason for a book that never got the venue's snapshot."""
        return f"stream incomplete: {self.incomplete}"

    def fail(self, reason: str) -> None:
        self.state = StreamState.FAILED
        self.stale = False
        self.detail = reason

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

    def sample(self, policy: Staleness | None = None) -> list[tuple[StreamStats, bool]]:
        """Sample every stream; the streams that went stale (True) or recovered (False) since."""
        now = time.monotonic()
        changed: list[tuple[StreamStats, bool]] = []
        for stats in self._stats.values():
            stats.sample(now)
            if policy is not None:
                verdict = stats.judge(now, policy)
                if verdict is not None:
                    changed.append((stats, verdict))
        return changed
