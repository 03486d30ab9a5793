"""The fixed set of metrics a screen can filter and score by, each computed from one
instrument's inputs (trademesh.core.screener.engine.inputs) at a given time.

| metric        | from               | what                                                           |
|---------------|--------------------|----------------------------------------------------------------|
| volume_24h    | ticker             | the venue's 24h volume in the quote asset (else base x last)    |
| bar_volume    | bars               | quote volume of the last `bars.volume` closed bars              |
| spread_bps    | ticker             | (ask - bid) / mid, in basis points                              |
| top_depth     | ticker             | the thinner side of the top of book, in the quote asset          |
| volatility    | bars               | sample stdev of the last `bars.volatility` log returns (per bar) |
| momentum      | bars               | close / close `bars.momentum` bars before - 1                   |
| funding_rate  | funding            | the rate the venue states now, per funding interval             |

A metric is missing (None) when its input is absent, too old, or cannot give it (no bid, a
crossed book, too few bars, a price of 0): the instrument is then left out of the ranking and
counted, never scored as 0. Too old: a ticker or a funding rate more than `max_age_ns` before
now; bars whose newest closed more than one bar plus `max_age_ns` before now (a bar missing).

Metrics are floats: statistics to compare and rank, not money. Where an input gives them
exactly (a spread), the arithmetic is Decimal and only the result is a float.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.screener.engine.inputs import InstrumentInputs

__all__ = [
    "ABSENT", "BAR_METRICS", "FUNDING_METRICS", "METRICS", "STALE", "TICKER_METRICS", "Measured", "Meter",
]  # fmt: skip

TICKER_METRICS = ("volume_24h", "spread_bps", "top_depth")
BAR_METRICS = ("bar_volume", "volatility", "momentum")
FUNDING_METRICS = ("funding_rate",)
# Every metric, in the order results list them.
METRICS: tuple[str, ...] = (*TICKER_METRICS, *BAR_METRICS, *FUNDING_METRICS)

_BPS = Decimal(10_000)


@dataclass(slots=True)
class Measured:
    """One instrument's metrics: the values found, the metrics missing (each with why: "absent"
    or "stale", an input too old), and the event times of the inputs used (0 when none)."""

    values: dict[str, float] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    oldest_ns: int = 0
    newest_ns: int = 0

    def used(self, ts_ns: int) -> None:
        self.oldest_ns = ts_ns if not self.oldest_ns else min(self.oldest_ns, ts_ns)
        self.newest_ns = max(self.newest_ns, ts_ns)


ABSENT, STALE = "absent", "stale"


@dataclass(frozen=True)
class Meter:
    """Computes the metrics a screen needs, with its bar windows and its age limit."""

    timeframe: Timeframe
    momentum_bars: int
    volatility_bars: int
    volume_bars: int
    max_age_ns: int

    def bars_needed(self, needed: Sequence[str]) -> int:
        """How many closed bars the needed metrics read, at most."""
        counts = {"momentum": self.momentum_bars + 1, "volatility": self.volatility_bars + 1}
        counts["bar_volume"] = self.volume_bars
        return max((counts[name] for name in needed if name in counts), default=0)

    def measure(self, inputs: InstrumentInputs, now_ns: int, needed: Sequence[str]) -> Measured:
        """The `needed` metrics of one instrument at `now_ns`."""
        out = Measured()
        t, f = inputs.ticker, inputs.funding
        ticker_needed = any(name in TICKER_METRICS for name in needed)
        ticker = self._fresh(None if t is None else t.ts_ns, ticker_needed, now_ns, out)
        funding = self._fresh(None if f is None else f.ts_ns, "funding_rate" in needed, now_ns, out)
        bars = self._bars(inputs, now_ns, needed, out)
        fresh: object
        for name in needed:
            value: float | None = None
            if name in TICKER_METRICS:
                fresh = ticker
                value = _TICKER[name](inputs) if ticker is True else None
            elif name in BAR_METRICS:
                fresh = bars
                value = self._bar_metric(name, bars) if isinstance(bars, list) and bars else None
            else:
                fresh = funding
                value = float(inputs.funding.rate) if funding is True and inputs.funding else None
            if value is None or not math.isfinite(value):
                out.missing[name] = STALE if fresh == STALE else ABSENT
            else:
                out.values[name] = value
        return out

    # ---- inputs, checked for age

    # Each reader says True (or the bars) when its input is there and fresh, STALE when too old,
    # False when absent or not needed.

    def _fresh(self, ts_ns: int | None, needed: bool, now_ns: int, out: Measured) -> bool | str:
        """The ticker's or the funding rate's reader, given its time (None: absent)."""
        if ts_ns is None or not needed:
            return False
        if now_ns - ts_ns > self.max_age_ns:
            return STALE
        out.used(ts_ns)
        return True

    def _bars(
        self, inputs: InstrumentInputs, now_ns: int, needed: Sequence[str], out: Measured
    ) -> list[Candle] | str:
        """The newest closed bars of the timeframe the metrics read (oldest first); [] when
        none, STALE when the newest closed too long ago."""
        count = self.bars_needed(needed)
        if not count:
            return []
        bars = _tail(inputs.bars, self.timeframe, count)
        if not bars:
            return []
        closed_ns = bars[-1].open_time_ns + self.timeframe.ns
        if now_ns - closed_ns > self.timeframe.ns + self.max_age_ns:
            return STALE
        out.used(closed_ns)
        return bars

    def _bar_metric(self, name: str, bars: list[Candle]) -> float | None:
        if name == "momentum":
            return _momentum(bars, self.momentum_bars)
        if name == "volatility":
            return _volatility(bars, self.volatility_bars)
        return _bar_volume(bars, self.volume_bars)


def _tail(bars: Sequence[Candle], timeframe: Timeframe, count: int) -> list[Candle]:
    """The last `count` closed bars of `timeframe`, oldest first (fewer when there are not)."""
    tail = list(bars[-count:])
    if all(bar.closed and bar.timeframe is timeframe for bar in tail):
        return tail  # the shell's usual case: only closed bars of the timeframe, one check each
    found: list[Candle] = []
    for bar in reversed(bars):
        if bar.closed and bar.timeframe is timeframe:
            found.append(bar)
            if len(found) == count:
                break
    found.reverse()
    return found


# ---- ticker metrics


def _volume_24h(inputs: InstrumentInputs) -> float | None:
    """The quote volume the venue states; where it states the base volume only (OKX's linear
    swaps), that volume at the last price: an estimate, which a venue's own figure always wins over."""
    ticker = inputs.ticker
    if ticker is None:
        return None
    volume = ticker.volume_24h
    if volume is None and ticker.base_volume_24h is not None and ticker.last is not None:
        volume = ticker.base_volume_24h * ticker.last
    return None if volume is None or volume < 0 else float(volume)


def _spread_bps(inputs: InstrumentInputs) -> float | None:
    ticker = inputs.ticker
    if ticker is None or ticker.bid is None or ticker.ask is None:
        return None
    bid, ask = ticker.bid, ticker.ask
    if bid <= 0 or ask < bid:  # no bid, or a crossed book: no spread to rank by
        return None
    return float((ask - bid) * 2 * _BPS / (ask + bid))


def _top_depth(inputs: InstrumentInputs) -> float | None:
    ticker = inputs.ticker
    if ticker is None:
        return None
    bid, ask, bid_size, ask_size = ticker.bid, ticker.ask, ticker.bid_size, ticker.ask_size
    if bid is None or ask is None or bid_size is None or ask_size is None:
        return None
    return float(min(bid * bid_size, ask * ask_size))


_TICKER: dict[str, Callable[[InstrumentInputs], float | None]] = {
    "volume_24h": _volume_24h,
    "spread_bps": _spread_bps,
    "top_depth": _top_depth,
}


# ---- bar metrics


def _momentum(bars: list[Candle], window: int) -> float | None:
    if len(bars) < window + 1:
        return None
    before, last = bars[-1 - window].close, bars[-1].close
    if before <= 0:
        return None
    return float(last / before) - 1.0


def _volatility(bars: list[Candle], window: int) -> float | None:
    """The sample standard deviation of the last `window` log returns, close to close."""
    if len(bars) < window + 1:
        return None
    closes = [float(bar.close) for bar in bars[-1 - window :]]
    if min(closes) <= 0:
        return None
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    mean = math.fsum(returns) / window
    return math.sqrt(math.fsum((r - mean) ** 2 for r in returns) / (window - 1))


def _bar_volume(bars: list[Candle], window: int) -> float | None:
    if len(bars) < window:
        return None
    return float(sum((bar.quote_volume or Decimal(0) for bar in bars[-window:]), Decimal(0)))
