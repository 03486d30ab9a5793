"""A download's progress on stderr, per series: rows, rows/s and ETA. On a terminal, a bar redrawn
in place; otherwise (a log, a pipe) a plain line every `interval_s`, so a log is not flooded."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from trademesh.core.history.download import Fetched

__all__ = ["Progress", "eta_text", "fraction_done"]

_BAR_CELLS = 24


def fraction_done(fetched: Fetched) -> float:
    """How far through its range the series is, by time (bars and trades alike)."""
    span = fetched.job.end_ns - fetched.resumed_ns
    if span <= 0 or fetched.finished is not None:
        return 1.0
    return min(1.0, max(0.0, (fetched.cursor_ns - fetched.resumed_ns) / span))


def eta_text(fraction: float, seconds: float) -> str:
    if fraction <= 0.0 or seconds <= 0.0:
        return "--:--"
    left = int(seconds * (1.0 - fraction) / fraction + 0.5)
    hours, rest = divmod(left, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    def __init__(self, stream: TextIO, tty: bool | None = None, interval_s: float = 5.0) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._interval_s = interval_s
        self._last_line = 0.0
        self._drawn = False

    def __call__(self, fetched: Fetched) -> None:
        """Report where a series is (called at its start, after each page and at its end)."""
        line = self._line(fetched)
        if self._tty:
            self._stream.write(f"\r{line}\x1b[K")
            self._drawn = fetched.finished is None
            if not self._drawn:
                self._stream.write("\n")
            self._stream.flush()
            return
        now = time.monotonic()
        if fetched.finished is None and now - self._last_line < self._interval_s and fetched.pages:
            return
        self._last_line = now
        self._stream.write(line + "\n")
        self._stream.flush()

    def say(self, text: str) -> None:
        """A line of its own (a wait, a refusal), below the bar being drawn."""
        if self._tty and self._drawn:
            self._stream.write("\r\x1b[K")
        self._stream.write(text + "\n")
        self._stream.flush()

    def _line(self, fetched: Fetched) -> str:
        fraction = fraction_done(fetched)
        seconds = fetched.seconds
        rate = fetched.rows / seconds if seconds > 0 else 0.0
        of = "" if fetched.expected is None else f"/{fetched.expected:,}"
        if fetched.finished is not None:
            state = "failed" if fetched.failure is not None else "done"
            rows = f"{fetched.rows:,}{of} rows"
            return f"{fetched.job.name}: {rows}, {rate:,.0f} rows/s, {state} in {seconds:.1f} s"
        filled = int(fraction * _BAR_CELLS)
        bar = "#" * filled + "." * (_BAR_CELLS - filled) if self._tty else ""
        shown_bar = f" [{bar}]" if bar else ""
        return (
            f"{fetched.job.name}:{shown_bar} {fraction:4.0%} {fetched.rows:,}{of} rows, "
            f"{rate:,.0f} rows/s, ETA {eta_text(fraction, seconds)}"
        )
