"""The bar aggregator's small parts: VWAP rounding, spans, the checkpoint format, candles as bars."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.bars.checkpoint import dump_symbol, load_symbol
from trademesh.core.bars.engine import VenueBars
from trademesh.core.bars.repair import candle_bar
from trademesh.core.bars.spans import MAX_SPAN_NS, RepairTask, Span, add_span
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.bar import VWAP_PLACES, vwap_text
from trademesh.core.domain.model import Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md

S = 1_000_000_000


@pytest.mark.parametrize(
    ("quote", "volume", "expected"),
    [
        ("30.25", "0.3", "100.8333333333333333"),  # 100.8333...: rounded to 16 places
        ("200.5", "2", "100.25"),  # terminates: exact
        ("1", "3", "0.3333333333333333"),
        ("2", "3", "0.6666666666666667"),  # half-even rounding up
        ("65000.123456789012345678", "1", "65000.123456789012345678"),  # exact beyond 16 places
        ("0", "0", ""),
    ],
)
def test_vwap_is_exact_when_it_terminates_else_rounded_to_16_places(
    quote: str, volume: str, expected: str
) -> None:
    assert VWAP_PLACES == 16
    assert vwap_text(Decimal(quote), Decimal(volume)) == expected


def test_spans_close_together_merge_and_far_ones_do_not() -> None:
    spans: list[Span] = []
    add_span(spans, Span(100 * S, 101 * S))
    add_span(spans, Span(150 * S, 150 * S))  # within a minute: merged
    add_span(spans, Span(1000 * S, 1000 * S))
    assert [(s.start_ns // S, s.end_ns // S) for s in spans] == [(100, 150), (1000, 1000)]


def test_merging_keeps_a_timeframe_done_only_when_it_gained_no_bar() -> None:
    spans = [Span(3600 * S + 10 * S, 3600 * S + 12 * S)]
    for timeframe in (Timeframe.S1, Timeframe.H1):
        first, last = spans[0].bounds(timeframe)
        assert spans[0].mark_done(RepairTask("X", timeframe, first, last))
    add_span(spans, Span(3600 * S + 40 * S, 3600 * S + 40 * S))
    (merged,) = spans
    # The 1s bars grew (redo); the 1h bar is the same one (done); the rest were never done.
    assert {task.timeframe for task in merged.due("X", 10**20)} == set(Timeframe) - {Timeframe.H1}


def test_a_span_is_cut_to_the_longest_a_venue_keeps() -> None:
    spans: list[Span] = []
    add_span(spans, Span(1, 30 * 86_400 * S))
    assert spans[0].end_ns - spans[0].start_ns == MAX_SPAN_NS


def test_an_open_ended_span_is_never_due() -> None:
    span = Span(0, 5 * S, open_end=True)
    assert span.due("X", 10**20) == []
    span.close_end(8 * S)
    assert {t.timeframe for t in span.due("X", 10**20)} == set(Timeframe)


def test_a_symbol_survives_the_checkpoint_format_unchanged() -> None:
    engine = VenueBars("v", WatermarkRules())
    envelope = bus.Envelope()
    for i, (second, price) in enumerate([(0.25, "1.5"), (0.5, "2.25"), (70, "3"), (70.5, "0.001")]):
        event = envelope.market.events.add(symbol="A/B", ts_event_ns=1_700_000_000 * S + int(second * S))
        event.trade.trade_id, event.trade.price, event.trade.size = str(i), price, "0.1"
    notice = envelope.market.events.add(symbol="A/B", ts_event_ns=1_700_000_071 * S)
    notice.notice.kind, notice.notice.channel = md.NOTICE_KIND_GAP, md.CHANNEL_TRADES
    engine.process([("1800000000000-0", envelope)])
    sym = engine.symbols["A/B"]
    assert sym.seconds and any(p is not None for p in sym.partials) and sym.spans[-1].open_end
    loaded = load_symbol(dump_symbol(sym))
    sym.dirty = False
    assert loaded == sym


def candle(**fields: object) -> md.Candle:
    base: dict[str, object] = dict(
        timeframe=common.TIMEFRAME_1_MINUTE, open_time_ns=60 * S, open="10.50", high="11", low="10",
        close="10.7", volume="2.000", quote_volume="21.4", trade_count=7, closed=True,
    )  # fmt: skip
    base.update(fields)
    return md.Candle(**base)  # type: ignore[arg-type]


def test_a_venue_candle_becomes_a_flagged_bar_in_our_number_format() -> None:
    bar = candle_bar("sim", "A/B", Timeframe.M1, candle())
    assert bar is not None
    assert (bar.open, bar.volume, bar.vwap, bar.trade_count, bar.repaired) == ("10.5", "2", "10.7", 7, True)
    assert bar.timeframe == common.TIMEFRAME_1_MINUTE and bar.open_time_ns == 60 * S


def test_a_candle_without_trades_gives_no_bar_and_one_without_quote_volume_no_vwap() -> None:
    assert candle_bar("sim", "A/B", Timeframe.M1, candle(volume="0")) is None
    bar = candle_bar("sim", "A/B", Timeframe.M1, candle(quote_volume=""))
    assert bar is not None and (bar.quote_volume, bar.vwap) == ("", "")
