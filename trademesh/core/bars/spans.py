"""Spans of event time whose bars must be rebuilt from the venue's candles.

A span says: trades in [start_ns, end_ns] may be missing from the bars (a gap marker, the
first trade of a symbol never seen before, a trade that came after its bar was closed).
Every bar of every timeframe that overlaps the span is replaced once it is closed. A span
opened by a gap marker stays open-ended until the symbol's next trade: the seam runs from
the last trade before the marker to the first one after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trademesh.core.bars.timeframes import TIMEFRAMES
from trademesh.core.domain.model import Timeframe

__all__ = ["MAX_SPAN_NS", "RepairTask", "Span", "add_span"]

# Spans closer than this are merged: one repair instead of many small ones.
_MERGE_NS = 60 * 1_000_000_000
# The longest span repaired: venues keep about a week of 1m candles.
MAX_SPAN_NS = 7 * 86_400 * 1_000_000_000
_ALL_DONE = (1 << len(TIMEFRAMES)) - 1
# Span.repaired of a timeframe none of whose bars were repaired (an open time can be below 0).
_NONE_REPAIRED = -(2**63)


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
    # Per TIMEFRAMES[i]: the span's bars of it opening before this were repaired. A bar
    # is repaired once it is closed, not when the span's last one is: a late trade's span merged
    # with one reaching into bars still open (a seam's first trade) would otherwise leave its
    # published bar wrong until those close, which a stream gone quiet never does.
    repaired: list[int] = field(default_factory=lambda: [_NONE_REPAIRED] * len(TIMEFRAMES))

    def bounds(self, timeframe: Timeframe) -> tuple[int, int]:
        """Open times of the first and last `timeframe` bars the span touches."""
        return timeframe.open_time_ns(self.start_ns), timeframe.open_time_ns(self.end_ns)

    def due(self, symbol: str, watermark_ns: int) -> list[RepairTask]:
        """The repairs of the span's closed bars (by `watermark_ns`) not yet done."""
        if self.open_end:
            return []
        found = []
        for index, timeframe in enumerate(TIMEFRAMES):
            if self.done >> index & 1:
                continue
            first, last = self.bounds(timeframe)
            first = max(first, self.repaired[index])
            # The last bar of the span whose end the watermark has passed.
            last = min(last, timeframe.open_time_ns(watermark_ns - timeframe.ns))
            if first <= last:
                found.append(RepairTask(symbol, timeframe, first, last))
        return found

    def mark_done(self, task: RepairTask) -> bool:
        """Record a repair of this span's bars; False when it is not the next of them (the span
        has grown at its start since: redo it)."""
        if self.open_end:
            return False
        index = TIMEFRAMES.index(task.timeframe)
        first, last = self.bounds(task.timeframe)
        if not task.first_open_ns <= max(first, self.repaired[index]) < task.end_ns:
            return False
        self.repaired[index] = task.end_ns
        if task.end_ns > last:
            self.done |= 1 << index
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
        first, last = merged.bounds(timeframe)
        if first != old.bounds(timeframe)[0]:
            continue  # bars added before those repaired: all redone
        # The bars repaired stay so; the timeframe stays done only when the merge added no bar to it.
        merged.repaired[index] = old.repaired[index]
        if old.done >> index & 1 and last == old.bounds(timeframe)[1]:
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
