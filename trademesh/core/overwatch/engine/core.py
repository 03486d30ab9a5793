"""A classifier per market, fed closed bars; what changed, and the board of all markets.

A market is (venue, symbol, timeframe): the same symbol on 1m and 1h bars has two regimes.
A bar not after the market's last one (a redelivery after a restart, a replay's overlap) is
dropped and counted, not refused: the shell cannot tell a duplicate from a new bar any other
way, and counting it twice would skew every window. Any other bad bar is refused by the
classifier (InvalidArgument naming the field).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime import Classifier, ClassifierConfig, ClassifierReading, Features, Regime
from trademesh.core.platform.errors import InvalidArgument, ResourceExhausted

__all__ = ["BoardEntry", "MarketKey", "Overwatch", "OverwatchConfig", "RegimeBoard", "RegimeChange"]


@dataclass(frozen=True)
class OverwatchConfig:
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    max_markets: int = 10_000  # markets tracked at once; past it a new market is refused

    def __post_init__(self) -> None:
        if isinstance(self.max_markets, bool) or not 1 <= self.max_markets <= 1_000_000:
            raise InvalidArgument.field("overwatch.max_markets", "must be 1..1000000")


@dataclass(frozen=True, order=True, slots=True)
class MarketKey:
    venue: str
    symbol: str
    timeframe: str  # the Timeframe's label: "1m", "1h"


@dataclass(frozen=True, slots=True)
class RegimeChange:
    """A market's regime changed on a closed bar (from unknown too: its first regime)."""

    key: MarketKey
    previous: Regime
    regime: Regime
    since_ns: int  # open time of the regime's first bar (confirm_bars before at_bar_ns)
    at_bar_ns: int  # open time of the bar that confirmed it
    at_ns: int  # the time given with that bar
    features: Features


@dataclass(frozen=True, slots=True)
class BoardEntry:
    key: MarketKey
    regime: Regime
    since_ns: int
    features: Features
    bars: int
    last_bar_ns: int  # open time of the last bar read
    updated_ns: int  # the time given with it


@dataclass(frozen=True, slots=True)
class RegimeBoard:
    """Every market's regime, in key order (a screen draws it as is)."""

    as_of_ns: int
    entries: tuple[BoardEntry, ...]


@dataclass(slots=True)
class _Market:
    classifier: Classifier
    reading: ClassifierReading | None = None
    updated_ns: int = 0
    last_open_ns: int | None = None


class Overwatch:
    def __init__(self, config: OverwatchConfig | None = None) -> None:
        self._cfg = config or OverwatchConfig()
        self._markets: dict[MarketKey, _Market] = {}
        self.stale_bars = 0  # bars dropped as not after their market's last

    def __len__(self) -> int:
        """Markets tracked."""
        return len(self._markets)

    def on_bar(self, venue: str, symbol: str, bar: Candle, now_ns: int) -> RegimeChange | None:
        """Read one closed bar of a market; the change it made, if any."""
        key = MarketKey(venue, symbol, bar.timeframe.label)
        market = self._markets.get(key) or self._new_market()
        if market.last_open_ns is not None and bar.open_time_ns <= market.last_open_ns:
            self.stale_bars += 1
            return None
        reading = market.classifier.update(bar)  # a bad bar raises here: no market made for it
        self._markets[key] = market
        previous = market.reading.regime if market.reading is not None else Regime.UNKNOWN
        market.reading, market.updated_ns, market.last_open_ns = reading, now_ns, bar.open_time_ns
        if not reading.changed:
            return None
        return RegimeChange(
            key, previous, reading.regime, reading.since_ns, bar.open_time_ns, now_ns, reading.features
        )

    def _new_market(self) -> _Market:
        if len(self._markets) >= self._cfg.max_markets:
            raise ResourceExhausted(f"overwatch tracks {len(self._markets)} markets, its max_markets")
        return _Market(Classifier(self._cfg.classifier))

    def forget(self, key: MarketKey) -> bool:
        """Drop a retired market (its regime starts from unknown if it comes back)."""
        return self._markets.pop(key, None) is not None

    def regime(self, key: MarketKey) -> Regime:
        market = self._markets.get(key)
        reading = market.reading if market is not None else None
        return reading.regime if reading is not None else Regime.UNKNOWN

    def board(self, now_ns: int) -> RegimeBoard:
        entries = tuple(
            BoardEntry(key, r.regime, r.since_ns, r.features, r.bars, r.bar_open_ns, market.updated_ns)
            for key, market in sorted(self._markets.items())
            if (r := market.reading) is not None
        )
        return RegimeBoard(now_ns, entries)
