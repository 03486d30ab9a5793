"""Closed candles kept as fixed-capacity columns of int64, for hours of 1s history in flat memory.

A row is a candle's integer fields, its open time first. The columns are allocated at their
full capacity up front, so a sim's memory does not grow as its history fills; the oldest row
is overwritten once the ring is full. About 8 bytes per field, where a dataclass per candle
took hundreds.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["CandleRing"]

Row = tuple[int, ...]


class CandleRing:
    """The last `capacity_entries` rows of `width` ints, in the order they were appended.

    The open time (column 0) is an int64 of nanoseconds, as everywhere on the wire; any other
    value outside int64 (a notional of price ticks * lots can be) is kept exact in a side table
    that holds the whole row of its slot.
    """

    def __init__(self, width: int, capacity_entries: int) -> None:
        if width < 1 or capacity_entries < 1:
            raise ValueError(f"a ring needs width and capacity >= 1, got {width}, {capacity_entries}")
        self.width = width
        self.capacity_entries = capacity_entries
        self._columns = [array("q", [0]) * capacity_entries for _ in range(width)]
        self._times, *self._values = self._columns
        self._exact: dict[int, Row] = {}
        self._next = 0
        self._count = 0
        self._appended = 0
        # The sequence number of the latest row appended with an earlier open time than the
        # row before it: while that pair is retained, ranges are found by scanning, not bisecting.
        self._disorder = 0

    def __len__(self) -> int:
        return self._count

    def append(self, row: Sequence[int]) -> None:
        if len(row) != self.width:
            raise ValueError(f"a row of {len(row)} values in a ring of width {self.width}")
        slot, times = self._next, self._times
        late = self._count > 0 and row[0] < times[slot - 1]
        times[slot] = row[0]
        if late:
            self._disorder = self._appended
        if self._exact:
            self._exact.pop(slot, None)
        try:
            for index, column in enumerate(self._values, 1):
                column[slot] = row[index]
        except OverflowError:
            self._exact[slot] = tuple(row)
        self._next = slot + 1 if slot + 1 < self.capacity_entries else 0
        if self._count < self.capacity_entries:
            self._count += 1
        self._appended += 1

    def between(self, start_ns: int, end_ns: int) -> list[Row]:
        """The rows with start_ns <= open time < end_ns, oldest appended first."""
        ordered = self._disorder <= self._appended - self._count
        found: list[Row] = []
        for lo, hi in self._segments():
            if ordered:
                lo, hi = bisect_left(self._times, start_ns, lo, hi), bisect_left(self._times, end_ns, lo, hi)
                found += self._rows(lo, hi)
            else:
                found += [row for row in self._rows(lo, hi) if start_ns <= row[0] < end_ns]
        return found

    def _segments(self) -> list[tuple[int, int]]:
        # The retained slots in append order: one run, or two when they wrap past the end.
        first = (self._next - self._count) % self.capacity_entries
        if first + self._count <= self.capacity_entries:
            return [(first, first + self._count)]
        return [(first, self.capacity_entries), (0, self._next)]

    def _rows(self, lo: int, hi: int) -> list[Row]:
        rows = list(zip(*(column[lo:hi] for column in self._columns), strict=True))
        for slot, row in self._exact.items():
            if lo <= slot < hi:
                rows[slot - lo] = row
        return rows
