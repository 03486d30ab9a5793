"""Each symbol's market price over a run, for the report's trades chart.

The range is cut into at most `POINTS` equal buckets (a second at the least); where the run's
data crosses a bucket's end, each symbol's last trade price before it becomes a point of its
line. A year of 1-minute bars draws as a line of at most a few thousand points, so the memory
a line takes does not grow with the run's length. Pure: the run hands in its data time.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

__all__ = ["POINTS", "PriceLines"]

POINTS = 2000
_NS = 1_000_000_000


class PriceLines:
    def __init__(self, start_ns: int, end_ns: int, points: int = POINTS) -> None:
        self.start_ns = start_ns
        self.bucket_ns = max(_NS, -(-(end_ns - start_ns) // points))
        self.due_ns = start_ns + self.bucket_ns  # the next bucket's end
        self.lines: dict[str, list[tuple[int, Decimal]]] = {}

    def crossed(self, now_ns: int, prices: Mapping[str, Decimal]) -> None:
        """The data reached `now_ns` (at or past `due_ns`) with `prices` the last trades' before
        it: they stood at the bucket's end, a point there; the next end is the first after now."""
        self.point(self.due_ns, prices)
        passed = (now_ns - self.start_ns) // self.bucket_ns + 1
        self.due_ns = self.start_ns + passed * self.bucket_ns

    def point(self, at_ns: int, prices: Mapping[str, Decimal]) -> None:
        """Each symbol's price at `at_ns` (one point a time)."""
        for symbol, price in prices.items():
            line = self.lines.setdefault(symbol, [])
            if not line or line[-1][0] < at_ns:
                line.append((at_ns, price))
