"""Sliding-window order counts per venue and per strategy, by each order's intent time.

A rate limit is for the pace at which strategies decide, not for the pace at which the mesh
delivers: an intent is counted, and checked, at its own time (`ExecutionIntent.created_ns`,
the advisor's clock when it made the intent), not at the time it reached the core. A backlog the
mesh held back (an inspector failover: the intents queued while no leader read them, delivered
together to the next) is then judged as it would have been, one by one as it was made, and a
strategy that does decide too fast is throttled whenever its intents arrive. Its time is taken
at most `LATE_NS` back and never after the core's now (a stamp from the future would count in
no window yet); an intent past its expiry is refused as expired before any rate is looked at.

The times of one name may be recorded out of order (a late intent among timely ones), so they are
kept sorted; those older than any intent's time can reach are dropped.
"""

from __future__ import annotations

from bisect import bisect_right, insort

from trademesh.core.domain.contracts.intent import ExecutionIntent

__all__ = ["LATE_NS", "RateWindow", "rate_time"]

# How far back an intent's own time counts. Beyond any failover's backlog (seconds), and past the
# advisor's intent ttl (60 s) so an unexpired intent is always judged at its own time; a stamp
# older than this is taken as this old, so a strategy cannot hide from the window by back-dating.
LATE_NS = 300 * 1_000_000_000


def rate_time(intent: ExecutionIntent, now_ns: int) -> int:
    """The time an intent counts at in the rate windows: its own, within [now - LATE_NS, now];
    now when it has none (0)."""
    if intent.created_ns <= 0:
        return now_ns
    return max(now_ns - LATE_NS, min(intent.created_ns, now_ns))


class RateWindow:
    """Times of the orders placed per name, sorted, kept while an intent's time can reach them."""

    def __init__(self) -> None:
        self._times: dict[str, list[int]] = {}

    def count(self, name: str, at_ns: int, window_ns: int) -> int:
        """The orders of `name` within (at - window, at]."""
        times = self._times.get(name)
        if not times:
            return 0
        return bisect_right(times, at_ns) - bisect_right(times, at_ns - window_ns)

    def names(self) -> list[str]:
        return sorted(self._times)

    def latest(self) -> int | None:
        """The latest time counted of any name (None: none kept): past it and a window, every
        count is 0 until an order is recorded."""
        return max((times[-1] for times in self._times.values() if times), default=None)

    def record(self, name: str, at_ns: int, now_ns: int, window_ns: int) -> None:
        """An order of `name` counted at `at_ns`; the times no intent judged at `now_ns` or later
        can count (older than now - LATE_NS - window) are dropped."""
        times = self._times.setdefault(name, [])
        insort(times, at_ns)
        del times[: bisect_right(times, now_ns - LATE_NS - window_ns)]
