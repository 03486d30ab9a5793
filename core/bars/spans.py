"""Spans of event time whose bars must be rebuilt from the venue's candles.

A span says: trades in [start_ns, end_ns] may be missing from the bars (a gap marker, the
first trade of a symbol never seen before, a trade that came after its bar was closed).
Every bar of every timeframe that overlaps the span is replaced once it is closed. A span
opened by a gap marker stays open-ended until the symbol's next trade: the seam runs from
the last trade before the marker to the first one after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.bars.timeframes import TIMEFRAMES
from core.foundations.model import Timeframe

__all__ = ["MAX_SPAN_NS", "RepairTask", "Span", "add_span"]

# Spans closer than this are merged: one repair instead of many small ones.
_MERGE_NS = 60 * 1_000_000_000
# The longest span repaired: venues keep about a week of 1m candles.
MAX_SPAN_NS = 7 * 86_400 * 1_000_000_000
_ALL_DONE = (1 << len(TIMEFRAMES)) - 1


@dataclass(frozen=True)
class RepairTask:
    """Replace the `timeframe` bars opening in [first_open_ns, last_open_ns] of one symbol."""

    symbol: str
    timeframe: Timeframe
    first_open_ns: int
    last_open_ns: int

    @property
    def end_ns(self) -> int:
        return self.last_open_ns + self.timeframe.ns


@dataclass(slots=True)
class Span:
    start_ns: int
    end_ns: int
    # Waiting for the first trade after a gap marker to know where the seam ends.
    open_end: bool = False
    # Bit i: the bars of TIMEFRAMES[i] were repaired.
    done: int = 0

    def bounds(self, timeframe: Timeframe) -> tuple[int, int]:
        """Open times of the first and last `timeframe` bars the span touches."""
        return timeframe.open_time_ns(self.start_ns), timeframe.open_time_ns(self.end_ns)

    def due(self, symbol: str, watermark_ns: int) -> list[RepairTask]:
        """The repairs whose bars are all closed by now and not yet done."""
        if self.open_end:
            return []
        found = []
        for index, timeframe in enumerate(TIMEFRAMES):
            first, last = self.bounds(timeframe)
            if not self.done >> index & 1 and last + timeframe.ns <= watermark_ns:
                found.append(RepairTask(symbol, timeframe, first, last))
        return found

    def mark_done(self, task: RepairTask) -> bool:
        """Record a repair of this span's bars; False when the span has grown since (redo it)."""
        if self.open_end or self.bounds(task.timeframe) != (task.first_open_ns, task.last_open_ns):
            return False
        self.done |= 1 << TIMEFRAMES.index(task.timeframe)
        return True

    @property
    def finished(self) -> bool:
        return self.done == _ALL_DONE

    def close_end(self, ts_ns: int) -> None:
        self.end_ns = max(self.end_ns, ts_ns)
        self.open_end = False


def _merged(old: Span, new: Span) -> Span:
    merged = Span(min(old.start_ns, new.start_ns), max(old.end_ns, new.end_ns), old.open_end or new.open_end)
    for index, timeframe in enumerate(TIMEFRAMES):
        # A timeframe already repaired stays so only when the merge added no bar to it.
        if old.done >> index & 1 and merged.bounds(timeframe) == old.bounds(timeframe):
            merged.done |= 1 << index
    return merged


def add_span(spans: list[Span], new: Span) -> None:
    """Add `new`, merged with every span it overlaps or nearly touches."""
    new.start_ns = max(new.start_ns, new.end_ns - MAX_SPAN_NS)
    keep = []
    for span in spans:
        if span.start_ns - _MERGE_NS <= new.end_ns and new.start_ns <= span.end_ns + _MERGE_NS:
            new = _merged(span, new)
        else:
            keep.append(span)
    keep.append(new)
    keep.sort(key=lambda s: s.start_ns)
    spans[:] = keep
