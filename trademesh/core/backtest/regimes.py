"""The markets' regimes in a backtest, as the live detector hears them from Overwatch: the run's
closed 1m bars through Overwatch's own engine (trademesh.core.overwatch.engine, over the classifier of
trademesh.core.domain.regime), each bar at its close time as Overwatch's shell gives it, and each
change a RegimeValue for the patches' `regime` sources. The same bars give the same regimes and
times as live (docs/overwatch.md, "Input").

Only when some patch has a `regime` source (`listening`); only the 1m bars (the timeframe the
live source reads, trademesh.core.detector.modules.sources.REGIME_TIMEFRAME). A bar Overwatch would refuse is
skipped, as its shell skips it. Before the run, the stage is warmed from the bars closed before
the start (`warm`): live, Overwatch has read its bar streams' history, so a patch starts with
the regime of the start, not unknown for the first 100 bars.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.detector.replay import REGIME_TIMEFRAME, Patch, RegimeValue, Source
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.regime import ClassifierConfig
from trademesh.core.overwatch.replay import Overwatch, OverwatchConfig, candle_of, close_time_ns
from trademesh.core.platform.errors import InvalidArgument, ResourceExhausted

__all__ = ["WARM_BARS", "RegimeStage", "listens_to_regimes"]

# Bars of history before the start: the classifier's warm-up (100) and three times its long-run
# memory (500 bars, an exponential mean): Overwatch live has read more (its streams' retention),
# and a level this old weighs exp(-3) in it.
WARM_BARS = 1_600
_WANTED = TIMEFRAME_TO_PB[REGIME_TIMEFRAME]


def listens_to_regimes(patches: Iterable[Patch]) -> bool:
    """Whether some patch has a `regime` source."""
    return any(
        route[0] == "regime"
        for patch in patches
        for module in patch.modules.values()
        if isinstance(module, Source)
        for route in module.routes()
    )


class RegimeStage:
    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.engine = Overwatch(OverwatchConfig(config or ClassifierConfig()))
        self.refused = 0  # bars Overwatch refused (skipped, as its shell skips them)

    def on_bars(self, bars: Sequence[bus.Bar]) -> list[RegimeValue]:
        """The regime changes these closed bars make, in their order."""
        changes = []
        for bar in bars:
            if bar.timeframe != _WANTED:
                continue
            try:
                candle = candle_of(bar)
                change = self.engine.on_bar(bar.venue, bar.symbol, candle, close_time_ns(candle))
            except (InvalidArgument, ResourceExhausted):
                self.refused += 1
                continue
            if change is not None:
                venue, symbol = change.key.venue, change.key.symbol
                changes.append(RegimeValue(venue, symbol, change.regime, change.since_ns, change.at_ns))
        return changes

    def warm(self, bars: Sequence[bus.Bar]) -> list[RegimeValue]:
        """The bars closed before the start; each market's regime at the start (its last change)."""
        latest: dict[tuple[str, str], RegimeValue] = {}
        for value in self.on_bars(bars):
            latest[(value.venue, value.symbol)] = value
        return [latest[market] for market in sorted(latest)]
