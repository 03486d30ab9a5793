"""Overwatch's shell, its pure parts: bus bars to candles, filters, the warm-up boundary, the
subscribers' queues, and a round of reads through the engine."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from prometheus_client import REGISTRY

from tests.overwatch_support import bus_bar
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.domain.regime import ClassifierConfig, Features, Regime
from trademesh.core.overwatch.classify import classify
from trademesh.core.overwatch.convert import candle_of, change_to_pb, close_time_ns
from trademesh.core.overwatch.engine import MarketKey, Overwatch, OverwatchConfig, RegimeChange
from trademesh.core.overwatch.feed import Read, entry_position, is_warm
from trademesh.core.overwatch.filters import MAX_FILTER_ITEMS, Markets, market_filter
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.overwatch.watchers import RegimeWatchers
from trademesh.core.platform.errors import InvalidArgument
from trademesh.overwatch.v1 import overwatch_pb2 as ow


def _candles(count: int) -> list[Candle]:
    return segment_bars(Regime.RANGE, 1, seed=3, spec=SeriesSpec(warmup_bars=count - 1)).bars


def test_a_bus_bar_is_a_closed_candle_with_exact_prices_and_its_close_is_its_time() -> None:
    candle = _candles(1)[0]
    read = candle_of(bus_bar(candle))
    assert read == dataclasses.replace(candle, closed=True)
    assert close_time_ns(read) == candle.open_time_ns + 60 * 10**9


@pytest.mark.parametrize(
    ("change", "field"),
    [({"timeframe": common.TIMEFRAME_UNSPECIFIED}, "timeframe"), ({"high": "abc"}, "high"),
     ({"close": "NaN"}, "close"), ({"volume": ""}, "volume")],
)  # fmt: skip
def test_a_bus_bar_that_is_no_candle_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    bar = bus_bar(_candles(1)[0])
    for name, value in change.items():
        setattr(bar, name, value)
    with pytest.raises(InvalidArgument) as caught:
        candle_of(bar)
    assert [v.field for v in caught.value.violations] == [field]


def test_a_filter_names_every_bad_item_by_its_index() -> None:
    with pytest.raises(InvalidArgument) as caught:
        market_filter(
            ow.MarketFilter(venues=["sim", "Not A Venue"], symbols=["BTC/USDT", "BTCUSDT", "x" * 100])
        )
    assert [v.field for v in caught.value.violations] == [
        "filter.venues[1]",
        "filter.symbols[1]",
        "filter.symbols[2]",
    ]
    with pytest.raises(InvalidArgument, match=r"filter.venues: 1001 items, at most 1000"):
        market_filter(ow.MarketFilter(venues=["sim"] * (MAX_FILTER_ITEMS + 1)))


def test_an_empty_filter_matches_every_market_and_a_field_narrows_it() -> None:
    key = MarketKey("sim", "BTC/USDT", "1m")
    assert key in market_filter(ow.MarketFilter())
    assert key in Markets(frozenset({"sim"}), frozenset({"BTC/USDT"}))
    assert key not in Markets(frozenset({"kraken"}))
    assert key not in Markets(symbols=frozenset({"ETH/USDT"}))


def test_warm_up_is_what_was_on_the_stream_when_it_was_found() -> None:
    assert entry_position("1700000000000-12") == (1_700_000_000_000, 12)
    until = entry_position("1700000000000-3")
    assert is_warm("1699999999999-9", until) and is_warm("1700000000000-3", until)
    assert not is_warm("1700000000000-4", until)
    assert not is_warm("1-0", None)  # a stream found empty: nothing of it is history


def _round(bars: list[bus.Bar], warm: bool) -> Read:
    return Read("bars.{sim}.1m", "1-0", tuple(bars), warm)


def test_a_round_classifies_the_timeframe_s_bars_and_keeps_warm_changes_apart() -> None:
    engine = Overwatch(OverwatchConfig(ClassifierConfig(warmup_bars=30, confirm_bars=2)))
    candles = _candles(60)
    other = bus_bar(candles[0])
    other.timeframe = common.TIMEFRAME_1_HOUR  # not the timeframe followed: skipped
    warm = classify(engine, Timeframe.M1, [_round([bus_bar(c) for c in candles[:40]] + [other], True)])
    assert warm.bars == 40 and warm.live == []
    assert [c.previous for c in warm.warm] == [Regime.UNKNOWN]  # the first regime: during the warm-up
    live = classify(engine, Timeframe.M1, [_round([bus_bar(c) for c in candles[40:]], False)])
    assert live.bars == 20 and live.warm == []
    [entry] = engine.board(0).entries
    assert entry.bars == 60 and entry.updated_ns == candles[-1].open_time_ns + 60 * 10**9


def test_a_bad_bar_is_counted_and_skipped_and_the_others_are_read() -> None:
    engine = Overwatch()
    candles = _candles(3)
    bad = bus_bar(candles[1])
    bad.high = "0"  # at or below zero: the classifier refuses it
    again = bus_bar(candles[0])  # not after the market's last: stale, dropped
    bars = [bus_bar(candles[0]), bad, again, bus_bar(candles[2])]
    out = classify(engine, Timeframe.M1, [_round(bars, False)])
    assert out.bars == 4
    assert engine.board(0).entries[0].bars == 2 and engine.stale_bars == 1


def _change(venue: str) -> RegimeChange:
    features = Features(30.0, 25.0, 10.0, 1.0, 1.0)
    return RegimeChange(MarketKey(venue, "BTC/USDT", "1m"), Regime.RANGE, Regime.TREND_UP, 1, 5, 6, features)


async def test_a_watcher_gets_its_markets_changes_and_one_that_falls_behind_is_ended() -> None:
    watchers = RegimeWatchers(size=2)
    mine = watchers.watch_markets(Markets(frozenset({"sim"})))
    watchers.publish([_change("kraken"), _change("sim")])
    assert await mine.queue.get() == _change("sim") and mine.queue.empty()
    watchers.publish([_change("sim")] * 3)  # one more than its queue holds
    assert mine.overflowed and len(watchers) == 0
    items = [mine.queue.get_nowait() for _ in range(mine.queue.qsize())]
    assert items[-1] is None  # the end, after what it had queued


async def test_stopping_ends_every_stream_and_a_later_watch_ends_at_once() -> None:
    watchers = RegimeWatchers()
    open_one = watchers.watch_markets(Markets())
    await watchers.close()
    assert await asyncio.wait_for(open_one.queue.get(), 1) is None and not open_one.overflowed
    late = watchers.watch_markets(Markets())
    assert late.queue.get_nowait() is None


def test_a_change_on_the_wire_carries_the_market_the_regimes_and_the_times() -> None:
    message = change_to_pb(_change("sim"))
    assert (message.venue, message.symbol, message.timeframe) == (
        "sim",
        "BTC/USDT",
        common.TIMEFRAME_1_MINUTE,
    )
    assert (message.previous, message.regime) == (ow.REGIME_RANGE, ow.REGIME_TREND_UP)
    assert (message.since_ns, message.at_bar_ns, message.at_ns, message.features.adx) == (1, 5, 6, 30.0)
    assert {ow.Regime.Name(v) for v in ow.Regime.values()} - {"REGIME_UNSPECIFIED"} == {
        f"REGIME_{r.name}" for r in Regime
    }


def _regime_series(venue: str) -> dict[str, float]:
    """The market's series of trademesh_overwatch_regime: its regime label -> value."""
    return {
        sample.labels["regime"]: sample.value
        for metric in REGISTRY.collect()
        if metric.name == "trademesh_overwatch_regime"
        for sample in metric.samples
        if sample.labels["venue"] == venue
    }


def test_a_market_has_one_regime_series_unknown_while_warming_then_its_current_regime() -> None:
    venue = "regime-series"
    engine = Overwatch(OverwatchConfig(ClassifierConfig(warmup_bars=30, confirm_bars=2)))
    series = segment_bars(Regime.THIN_LIQUIDITY, 80, seed=7, spec=SeriesSpec(warmup_bars=60))
    first = classify(engine, Timeframe.M1, [_round([bus_bar(c, venue) for c in series.bars[:10]], True)])
    assert first.warm == [] and _regime_series(venue) == {"unknown": 1.0}
    changes = []
    for start in range(10, len(series.bars), 10):
        read = _round([bus_bar(c, venue) for c in series.bars[start : start + 10]], False)
        out = classify(engine, Timeframe.M1, [read])
        changes += out.live
        assert len(_regime_series(venue)) == 1, "one series per market"
    assert len(changes) >= 2, "the first regime, then at least one change"
    [entry] = engine.board(0).entries
    assert _regime_series(venue) == {entry.regime.value: 1.0}
    assert entry.regime is changes[-1].regime is Regime.THIN_LIQUIDITY
