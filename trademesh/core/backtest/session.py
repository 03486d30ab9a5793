"""Drive a backtest over a stream of recorded events: group them by timestamp into steps
(trademesh.core.backtest.run), and say how far it got. RunProgress is the shell's business: the wall clock
is read here (events/s, the ETA), never by the run or the cores.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.run import Backtest, Tape
from trademesh.core.domain.convert import TIMEFRAME_FROM_PB
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Item", "RunProgress", "drive", "drive_sync", "item_time"]

_REPORT_EVERY_S = 0.25
_NS = 1_000_000_000


@dataclass(frozen=True)
class RunProgress:
    start_ns: int
    end_ns: int
    data_ns: int  # the data time reached
    events: int
    elapsed_s: float
    done: bool = False

    @property
    def fraction(self) -> float:
        span = self.end_ns - self.start_ns
        return 1.0 if span <= 0 or self.done else min(1.0, max(0.0, (self.data_ns - self.start_ns) / span))

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (None before any progress)."""
        fraction = self.fraction
        if fraction <= 0:
            return None
        return self.elapsed_s * (1 - fraction) / fraction


OnProgress = Callable[[RunProgress], None]


Item = md.MarketEvent | bus.Bar  # a recorded market event, or a bar (at its close)
# A bar's length by its wire timeframe (an Enum's value is a Python call: read once here).
_BAR_NS = {pb: timeframe.value * _NS for pb, timeframe in TIMEFRAME_FROM_PB.items()}


def item_time(item: Item) -> int:
    if isinstance(item, md.MarketEvent):
        return item.ts_event_ns
    return item.open_time_ns + _BAR_NS[item.timeframe]


class _Stepper:
    def __init__(self, backtest: Backtest, on_progress: OnProgress | None) -> None:
        self.backtest = backtest
        self.on_progress = on_progress
        self.at = -1
        self.events: list[md.MarketEvent] = []
        self.bars: list[bus.Bar] = []
        self.started = time.monotonic()
        self.reported = self.started

    def add(self, item: Item) -> None:
        if isinstance(item, md.MarketEvent):
            if item.ts_event_ns != self.at:
                self._turn(item.ts_event_ns)
            self.events.append(item)
        else:
            at = item.open_time_ns + _BAR_NS[item.timeframe]  # item_time's, without its call
            if at != self.at:
                self._turn(at)
            self.bars.append(item)

    def _turn(self, at: int) -> None:
        """The items of a new time begin: the step of the time before is run."""
        self.flush()
        self.at = at
        if self.on_progress is not None and time.monotonic() - self.reported >= _REPORT_EVERY_S:
            self.report(False)

    def flush(self) -> None:
        if self.events or self.bars:
            self.backtest.step(self.at, self.events, self.bars)
            self.events, self.bars = [], []

    def end(self) -> Tape:
        self.flush()
        tape = self.backtest.finish()
        self.report(True)
        return tape

    def report(self, done: bool) -> None:
        if self.on_progress is None:
            return
        self.reported = time.monotonic()
        settings, tape = self.backtest.settings, self.backtest.tape
        self.on_progress(
            RunProgress(
                settings.start_ns,
                settings.end_ns,
                tape.data_ns,
                tape.events,
                self.reported - self.started,
                done,
            )
        )


async def drive(
    backtest: Backtest, items: AsyncIterable[Item], on_progress: OnProgress | None = None
) -> Tape:
    """Run `backtest` over `items` (in time order, within its range) to the end of its range."""
    stepper = _Stepper(backtest, on_progress)
    async for item in items:
        stepper.add(item)
    return stepper.end()


def drive_sync(backtest: Backtest, items: Iterable[Item], on_progress: OnProgress | None = None) -> Tape:
    """`drive` over items already in memory (tests, synthetic data)."""
    stepper = _Stepper(backtest, on_progress)
    add = stepper.add
    for item in items:
        add(item)
    return stepper.end()
