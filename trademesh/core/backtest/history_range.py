"""A run's range bounded by the recorded history: clipped to it, or refused when it holds none.

A run's simulated clock runs from its start to its end whatever the data (the detector ticks
at 10 Hz, the inspector marks once a second, the curve samples every step), so a range of a
century over an hour of history is a century of ticks: a run over 1970-2070 held a hub's only
slot for an hour. The range is cut to the whole seconds around the first and last recorded
events of the run's venue and symbols within it (book events, trades and the advisor's bars,
what the run reads), with a notice saying so; a range with no recorded event is refused,
naming `from`. The cut is on whole seconds so the range stays exact as ISO text (the hub
hands it to its child that way), and cutting a cut range changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.source import RecordedSource
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.errors import InvalidArgument

__all__ = ["clip_to_history", "iso_seconds"]

_S = 1_000_000_000


def iso_seconds(ns: int) -> str:
    """A whole second as ISO text (parse_time_ns reads it back exactly)."""
    return datetime.fromtimestamp(ns // _S, UTC).isoformat()


async def clip_to_history(config: BacktestConfig, symbols: list[str]) -> tuple[BacktestConfig, str | None]:
    """The config with its range cut to the recorded history of its venue and `symbols`, and
    the notice to give when it was cut (None when it was not); InvalidArgument (`from`) when
    the range holds no recorded event."""
    source = RecordedSource(
        config.database_url,
        config.venue,
        symbols,
        config.start_ns,
        config.end_ns,
        kinds=("book", "trade", "bar"),
        # The advisor's bars, and those --bars puts the sources on (history of bars alone).
        timeframes=tuple(
            dict.fromkeys(Timeframe.from_label(tf) for tf in (config.timeframe, config.bars) if tf)
        ),
    )
    found = await source.bounds()
    wanted = f"[{_iso(config.start_ns)}, {_iso(config.end_ns)})"
    if found is None:
        raise InvalidArgument.field(
            "from",
            f"the recorded history of {config.venue} {', '.join(symbols)} holds no event in {wanted}",
        )
    first, last = found
    start = max(config.start_ns, first // _S * _S)
    end = min(config.end_ns, -(-(last + 1) // _S) * _S)
    if (start, end) == (config.start_ns, config.end_ns):
        return config, None
    notice = f"the range {wanted} is cut to the recorded history: [{_iso(start)}, {_iso(end)})"
    return replace(config, start_ns=start, end_ns=end), notice


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / _S, UTC).isoformat().replace("+00:00", "Z")
