"""When a bar is closed: the watermark rules, all driven by event time, never by the wall clock.

A symbol's watermark is the latest event time seen for it minus the allowed lateness. A bar
closes when the watermark passes its end; a trade whose 1s bar has closed is late. So a quiet
symbol's last bars do not wait for its next trade forever, the venue's latest event time
(any symbol) minus `idle_close_ns` also moves every symbol's watermark.

Because the rules read only the stream's own data (event times, entry ids), a replay of the
same entries after a crash decides every trade the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.platform.config.flags import setting

__all__ = ["WatermarkRules"]


# Nanoseconds a millisecond: the rules are in ns, their flags (`trademesh bars`) in ms.
_MS = 1_000_000


@dataclass(frozen=True)
class WatermarkRules:
    # How late (behind the latest event time of its symbol) a trade may arrive.
    lateness_ns: int = setting(
        1_000_000_000,
        type=int,
        flag="lateness-ms",
        scale=_MS,
        help="how late a trade may arrive behind its symbol's latest one",
    )
    # A symbol quiet for this long behind its venue's latest event has its bars closed.
    idle_close_ns: int = setting(
        10_000_000_000,
        type=int,
        flag="idle-close-ms",
        scale=_MS,
        help="close a quiet symbol's bars this far behind its venue's latest trade",
    )
    # Trades stamped further than this after their bus entry was written are refused: a venue
    # clock far ahead would otherwise close every open bar at once.
    max_future_ns: int = setting(
        60_000_000_000,
        type=int,
        flag="max-future-ms",
        scale=_MS,
        help="refuse trades stamped this far after their bus entry was written",
    )
    # The first trade of a symbol never seen (a fresh start) opens a seam reaching this far back,
    # so its bars of the recent past come from the venue's candles (trademesh.core.bars.engine): a fresh
    # mesh's consumers (the advisor's context) have history at once. 0: only its own bar.
    backfill_ns: int = setting(
        0,
        type=int,
        flag="backfill-s",
        scale=1_000_000_000,
        help="on a fresh start, repair each symbol's bars of this many seconds before its first trade "
        "from the venue's candles (0 to 86400; default {default}: none)",
    )

    def watermark(self, symbol_max_ns: int, venue_max_ns: int) -> int:
        pulled = venue_max_ns - self.idle_close_ns
        return (symbol_max_ns if symbol_max_ns > pulled else pulled) - self.lateness_ns

    def horizon(self, entry_ms: int) -> int:
        """The latest event time accepted from a bus entry written at entry_ms (its id's time)."""
        return entry_ms * 1_000_000 + self.max_future_ns
