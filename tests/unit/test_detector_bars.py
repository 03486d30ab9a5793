"""Bars built in the detector from trades equal the bar service's (trademesh.core.bars) for the same
trades in the same order: duplicates, reordering and late trades included."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.detector_support import BASE_NS, S
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bars.engine import VenueBars
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.detector.engine.values import BarValue, TradeValue
from trademesh.core.detector.modules.sources import TradeBarsSource
from trademesh.core.domain.model import Timeframe

LATENESS_NS = 2 * S
ENTRY_MS = 1_800_000_000_000
Row = tuple[int, float, float, float, float, float, float, int]


def core_bars(trades: list[tuple[int, str, str, str]], timeframe: Timeframe) -> list[Row]:
    engine = VenueBars("v", WatermarkRules(lateness_ns=LATENESS_NS, idle_close_ns=10**15))
    outputs = []
    for i, (ts, trade_id, price, size) in enumerate(trades):
        envelope = bus.Envelope()
        event = envelope.market.events.add(venue="v", symbol="BTC-USDT", ts_event_ns=ts)
        event.trade.trade_id, event.trade.price, event.trade.size = trade_id, price, size
        outputs.append(engine.process([(f"{ENTRY_MS}-{i}", envelope)]))
    outputs.append(engine.close_all())
    return [
        (
            b.open_time_ns,
            float(b.open),
            float(b.high),
            float(b.low),
            float(b.close),
            float(b.volume),
            float(b.quote_volume),
            b.trade_count,
        )
        for out in outputs
        for b in out.bars.get(timeframe, [])
    ]


def detector_bars(trades: list[tuple[int, str, str, str]], timeframe: Timeframe) -> list[Row]:
    source = TradeBarsSource(
        {
            "venue": "v",
            "symbol": "BTC-USDT",
            "timeframe": timeframe.label,
            "lateness_ms": LATENESS_NS // 1_000_000,
        }
    )
    bars: list[BarValue] = []
    for ts, trade_id, price, size in trades:
        source.feed(TradeValue("BTC-USDT", ts, float(price), float(size), None, trade_id))
        bars += _drain(source)
    source.on_tick(2**62)
    bars += _drain(source)
    return [
        (b.open_time_ns, b.open, b.high, b.low, b.close, b.volume, b.quote_volume, b.trade_count)
        for b in bars
    ]


def _drain(source: TradeBarsSource) -> list[BarValue]:
    found = []
    while source.backlog():
        bar = source.step(None, 0)["bar"]  # type: ignore[arg-type]
        assert isinstance(bar, BarValue)
        found.append(bar)
    return found


@st.composite
def tapes(draw: st.DrawFn) -> list[tuple[int, str, str, str]]:
    """Trades over a few minutes, with copies, arriving reordered (some later than the lateness)."""
    count = draw(st.integers(1, 80))
    trades = []
    for trade_id in draw(st.lists(st.integers(1, 10**6), min_size=count, max_size=count, unique=True)):
        ts = (
            BASE_NS
            + draw(st.integers(0, 240)) * S
            + draw(st.sampled_from([0, 1, S - 1, draw(st.integers(0, S - 1))]))
        )
        price = draw(st.decimals("0.001", "100000", places=3))
        size = draw(st.decimals("0.00001", "50", places=5))
        trades.append((ts, str(trade_id), str(price), str(size)))
    copies = draw(st.lists(st.sampled_from(trades), max_size=15))
    rng = random.Random(draw(st.integers(0, 2**32)))
    return sorted(trades + copies, key=lambda t: t[0] + rng.randrange(3 * LATENESS_NS))


@pytest.mark.parametrize("timeframe", [Timeframe.S1, Timeframe.M1])
@settings(max_examples=100, deadline=None)
@given(tape=tapes())
def test_bars_from_trades_equal_the_bar_service_bars(
    timeframe: Timeframe, tape: list[tuple[int, str, str, str]]
) -> None:
    assert detector_bars(tape, timeframe) == core_bars(tape, timeframe)


def test_a_bar_closes_at_a_tick_past_its_end_plus_the_lateness() -> None:
    source = TradeBarsSource({"venue": "", "symbol": "BTC-USDT", "timeframe": "1m", "lateness_ms": 500})
    assert source.feed(TradeValue("BTC-USDT", BASE_NS + S, 10.0, 1.0, True, "1")) is False
    end = BASE_NS - BASE_NS % (60 * S) + 60 * S
    assert source.on_tick(end + 499_000_000) is False
    assert source.on_tick(end + 500_000_000) is True
    bar = source.step(None, 0)["bar"]  # type: ignore[arg-type]
    assert isinstance(bar, BarValue) and (bar.open, bar.close, bar.trade_count) == (10.0, 10.0, 1)
