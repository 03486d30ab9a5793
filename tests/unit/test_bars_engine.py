"""The aggregation engine against a plain group-by: duplicates, reordering, restarts, late trades."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bars.checkpoint import dump_symbol, load_symbol
from trademesh.core.bars.engine import BarsOutput, VenueBars
from trademesh.core.bars.spans import RepairTask
from trademesh.core.bars.timeframes import FROM_PB
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.model import Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md

S = 1_000_000_000
BASE_NS = 1_700_000_000 * S  # 2023-11-14T22:13:20Z: bars of every timeframe cross it
ENTRY_MS = 1_800_000_000_000  # bus entry times: after every trade
LATENESS_NS = 2 * S
# One venue-wide rule at a time: these tests look at the per-symbol watermark.
RULES = WatermarkRules(lateness_ns=LATENESS_NS, idle_close_ns=10**15)


@dataclass(frozen=True)
class Trade:
    symbol: str
    ts: int
    trade_id: str
    price: str
    size: str


Key = tuple[str, Timeframe, int]
Fields = tuple[Fraction, Fraction, Fraction, Fraction, Fraction, Fraction, int]


def envelope(trades: list[Trade]) -> bus.Envelope:
    out = bus.Envelope()
    for t in trades:
        event = out.market.events.add(venue="v", symbol=t.symbol, ts_event_ns=t.ts)
        event.trade.trade_id, event.trade.price, event.trade.size = t.trade_id, t.price, t.size
    return out


def feed(engine: VenueBars, batches: list[list[Trade]], first_entry: int = 0) -> list[BarsOutput]:
    return [
        engine.process([(f"{ENTRY_MS}-{first_entry + i}", envelope(batch))])
        for i, batch in enumerate(batches)
    ]


def reloaded(engine: VenueBars) -> VenueBars:
    """The engine as a restarted process gets it back from its checkpoint."""
    copy = VenueBars(engine.venue, engine.rules)
    copy.position, copy.max_ts_ns = engine.position, engine.max_ts_ns
    copy.symbols = {name: load_symbol(dump_symbol(sym)) for name, sym in engine.symbols.items()}
    copy.restore_seams()
    return copy


def published(outputs: list[BarsOutput]) -> dict[Key, list[Fields]]:
    found: dict[Key, list[Fields]] = defaultdict(list)
    for output in outputs:
        for timeframe, bars in output.bars.items():
            for bar in bars:
                assert FROM_PB[bar.timeframe] is timeframe and not bar.repaired
                found[(bar.symbol, timeframe, bar.open_time_ns)].append(_fields(bar))
    return found


def _fields(bar: bus.Bar) -> Fields:
    values = (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.quote_volume)
    vwap = Decimal(bar.vwap)
    exact = Fraction(Decimal(bar.quote_volume)) / Fraction(Decimal(bar.volume))
    assert abs(Fraction(vwap) - exact) <= Fraction(1, 2 * 10**16), f"vwap {vwap} is not {float(exact)}"
    o, h, lo, c, volume, quote = (Fraction(Decimal(v)) for v in values)
    return (o, h, lo, c, volume, quote, bar.trade_count)


def group_by(trades: list[Trade]) -> dict[Key, Fields]:
    """Every bar of the unique trades, the obvious way."""
    groups: dict[Key, list[Trade]] = defaultdict(list)
    for t in sorted(trades, key=lambda t: (t.ts, len(t.trade_id), t.trade_id)):
        for timeframe in Timeframe:
            groups[(t.symbol, timeframe, timeframe.open_time_ns(t.ts))].append(t)
    found = {}
    for key, group in groups.items():
        prices = [Fraction(t.price) for t in group]
        sizes = [Fraction(t.size) for t in group]
        quote = sum((p * s for p, s in zip(prices, sizes, strict=True)), Fraction(0))
        found[key] = (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(sizes, Fraction(0)),
            quote,
            len(group),
        )
    return found


# ---- the property


@st.composite
def tapes(draw: st.DrawFn) -> tuple[list[Trade], list[list[Trade]], set[int], int]:
    """(unique trades, arrival batches with copies and reordering within lateness, restart points, copies)."""
    seconds = draw(st.lists(st.integers(0, 3 * 86_400), min_size=1, max_size=25))
    count = draw(st.integers(1, 60))
    ids = draw(st.lists(st.integers(1, 10**6), min_size=count, max_size=count, unique=True))
    trades = []
    for trade_id in ids:
        second = draw(st.sampled_from(seconds))
        ts = BASE_NS + second * S + draw(st.sampled_from([0, 1, 999_999_999, draw(st.integers(0, S - 1))]))
        price = draw(st.decimals("0.001", "100000", places=3))
        size = draw(st.decimals("0.00001", "50", places=5))
        trades.append(Trade(draw(st.sampled_from(["BTC/USDT", "ETH/USDT"])), ts, str(trade_id), str(price),
                            str(size)))  # fmt: skip
    copies = draw(st.lists(st.sampled_from(trades), max_size=20))
    rng = random.Random(draw(st.integers(0, 2**32)))
    # Each trade arrives less than the lateness after its event time: never late.
    arrivals = sorted(trades + copies, key=lambda t: t.ts + rng.randrange(LATENESS_NS))
    cuts = sorted(rng.sample(range(1, len(arrivals)), min(len(arrivals) - 1, rng.randrange(6))))
    batches = [arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=True)]
    restarts = {i for i in range(len(batches)) if rng.random() < 0.3}
    return trades, batches, restarts, len(copies)


@pytest.mark.slow  # a long property test (seconds of examples): not in the fast tier
@settings(max_examples=300, deadline=None)
@given(tapes())
def test_any_arrival_within_lateness_gives_the_group_by_of_the_unique_trades(
    tape: tuple[list[Trade], list[list[Trade]], set[int], int],
) -> None:
    trades, batches, restarts, copies = tape
    engine = VenueBars("v", RULES)
    outputs = []
    for index, batch in enumerate(batches):
        if index in restarts:
            engine = reloaded(engine)
        outputs += feed(engine, [batch], first_entry=index)
    outputs.append(engine.close_all())
    bars = published(outputs)
    assert all(len(versions) == 1 for versions in bars.values()), "a bar was published twice"
    assert {key: versions[0] for key, versions in bars.items()} == group_by(trades)
    counts = [o.counts for o in outputs]
    assert sum(c.trades for c in counts) == len(trades)
    assert sum(c.duplicates for c in counts) == copies
    assert sum(c.late for c in counts) == 0


# ---- closing, late trades, duplicates


def trade(
    second: float, trade_id: int, price: str = "100", size: str = "1", symbol: str = "BTC/USDT"
) -> Trade:
    return Trade(symbol, BASE_NS + int(second * S), str(trade_id), price, size)


def closed(outputs: list[BarsOutput], timeframe: Timeframe = Timeframe.S1) -> list[int]:
    return [(bar.open_time_ns - BASE_NS) // S for o in outputs for bar in o.bars.get(timeframe, [])]


def test_a_bar_closes_when_the_watermark_passes_its_end() -> None:
    engine = VenueBars("v", RULES)
    outputs = feed(engine, [[trade(0.5, 1)], [trade(2.9, 2)]])
    assert closed(outputs) == [], "watermark 0.9 s: the bar [0, 1) is still open"
    outputs = feed(engine, [[trade(3.0, 3)]], first_entry=2)
    assert closed(outputs) == [0], "watermark 1.0 s: [0, 1) closes, [2, 3) does not"


def test_seconds_without_trades_give_no_bar() -> None:
    engine = VenueBars("v", RULES)
    outputs = feed(engine, [[trade(0.1, 1), trade(5.5, 2), trade(9.0, 3)]])
    assert closed(outputs) == [0, 5]


def test_a_late_trade_is_counted_not_merged_and_its_bars_are_scheduled_for_repair() -> None:
    engine = VenueBars("v", RULES)
    on_time = [trade(0.2, 1, "100"), trade(0.7, 2, "101"), trade(4.0, 3, "102")]
    outputs = feed(engine, [on_time, [trade(0.5, 4, "999")]])
    outputs.append(engine.close_all())
    assert {k: v[0] for k, v in published(outputs).items()} == group_by(on_time)
    assert sum(o.counts.late for o in outputs) == 1
    tasks = {task.timeframe: task for task in engine.repairs_due()}
    assert tasks[Timeframe.S1].first_open_ns == tasks[Timeframe.S1].last_open_ns == BASE_NS
    assert Timeframe.M1 not in tasks, "its minute is not closed yet"
    feed(engine, [[trade(100, 5)]], first_entry=2)
    assert tasks[Timeframe.S1] in engine.repairs_due()
    assert any(
        t.timeframe is Timeframe.M1 and t.first_open_ns == BASE_NS - 20 * S for t in engine.repairs_due()
    )


def test_a_copy_inside_the_window_is_dropped_whatever_its_price() -> None:
    engine = VenueBars("v", RULES)
    outputs = feed(engine, [[trade(0.2, 1, "100"), trade(0.3, 1, "555")], [trade(9, 2)]])
    (bar,) = outputs[1].bars[Timeframe.S1][:1]
    assert (bar.high, bar.trade_count) == ("100", 1)
    assert outputs[0].counts.duplicates == 1


def test_open_and_close_follow_event_time_then_trade_id_not_arrival() -> None:
    engine = VenueBars("v", RULES)
    arrivals = [trade(0.5, 10, "3"), trade(0.1, 9, "1"), trade(0.5, 9, "2"), trade(0.5, 11, "4")]
    outputs = feed(engine, [arrivals])
    outputs.append(engine.close_all())
    bar = outputs[1].bars[Timeframe.S1][0]
    assert (bar.open, bar.close, bar.high, bar.low) == ("1", "4", "4", "1")


def test_a_quiet_symbol_closes_when_its_venue_moves_on() -> None:
    engine = VenueBars("v", WatermarkRules(lateness_ns=S, idle_close_ns=10 * S))
    outputs = feed(engine, [[trade(0.5, 1, symbol="ETH/USDT")], [trade(11.9, 2)]])
    assert closed(outputs) == []
    outputs = feed(engine, [[trade(12.0, 3)]], first_entry=2)
    assert [b.symbol for b in outputs[0].bars[Timeframe.S1]] == ["ETH/USDT"]


def test_larger_timeframes_close_with_their_last_second() -> None:
    engine = VenueBars("v", RULES)
    # BASE_NS is 20 s into a minute: that minute ends at 40 s.
    outputs = feed(engine, [[trade(10, 1, "5"), trade(39.5, 2, "7")], [trade(42, 3, "6")]])
    (minute,) = outputs[1].bars[Timeframe.M1]
    assert (minute.open_time_ns, minute.open, minute.close, minute.trade_count) == (
        BASE_NS - 20 * S,
        "5",
        "7",
        2,
    )
    assert Timeframe.M5 not in outputs[1].bars


def test_an_entry_applied_twice_changes_nothing() -> None:
    engine = VenueBars("v", RULES)
    feed(engine, [[trade(0.5, 1)]])
    again = feed(engine, [[trade(0.6, 2)]], first_entry=0)  # the same entry id as before
    assert again[0].counts.trades == 0
    assert engine.symbols["BTC/USDT"].seconds[BASE_NS].trade_count == 1


def test_bad_trades_are_counted_and_skipped() -> None:
    engine = VenueBars("v", RULES)
    bad = [trade(0.1, 1, price="abc"), trade(0.1, 2, size="0.000"), trade(0.1, 3, price="-1"),
           trade(0.1, 4, price="NaN"), trade(0.1, 5, size="Infinity"), trade(0.1, 6, price="1e5"),
           trade(0.1, 7, price="1" * 39), trade(0.1, 8, symbol="")]  # fmt: skip
    far_future = Trade("BTC/USDT", ENTRY_MS * 1_000_000 + 61 * S, "9", "1", "1")
    (output,) = feed(engine, [[*bad, far_future, trade(0.2, 10, price="1" * 38)]])
    assert (output.counts.invalid, output.counts.trades) == (len(bad) + 1, 1)
    assert engine.symbols["BTC/USDT"].max_ts_ns == BASE_NS + S // 5


# ---- seams and gaps


def gap_notice(symbol: str, since_ns: int, resumed_ns: int) -> bus.Envelope:
    out = bus.Envelope()
    event = out.market.events.add(venue="v", symbol=symbol, ts_event_ns=resumed_ns)
    event.notice.kind, event.notice.channel = md.NOTICE_KIND_GAP, md.CHANNEL_TRADES
    event.notice.since_ns = since_ns
    return out


def test_the_first_trade_of_a_symbol_is_a_seam_repaired_at_every_timeframe() -> None:
    engine = VenueBars("v", RULES)
    feed(engine, [[trade(30.5, 1)], [trade(8 * 86_400, 2)]])  # past the week's end: every bar closed
    tasks = {t.timeframe: (t.first_open_ns, t.last_open_ns) for t in engine.repairs_due()}
    assert tasks[Timeframe.S1] == (BASE_NS + 30 * S, BASE_NS + 30 * S)
    assert tasks[Timeframe.M1] == (BASE_NS - 20 * S, BASE_NS - 20 * S)
    assert set(tasks) == set(Timeframe)


def test_with_a_backfill_the_first_trade_of_a_symbol_repairs_the_window_before_it_too() -> None:
    """A fresh mesh's bars of the last minutes come from the venue's candles (`--backfill-s`)."""
    engine = VenueBars("v", replace(RULES, backfill_ns=600 * S))
    feed(engine, [[trade(30.5, 1)], [trade(8 * 86_400, 2)]])  # past the week's end: every bar closed
    tasks = {t.timeframe: (t.first_open_ns, t.last_open_ns) for t in engine.repairs_due()}
    # From 600 s before the first trade (BASE_NS + 30.5 s) to its own bar.
    assert tasks[Timeframe.S1] == (BASE_NS - 570 * S, BASE_NS + 30 * S)
    assert tasks[Timeframe.M1] == (BASE_NS - 620 * S, BASE_NS - 20 * S)
    assert set(tasks) == set(Timeframe)


def test_a_gap_marker_spans_from_the_last_trade_before_to_the_first_after() -> None:
    engine = VenueBars("v", RULES)
    feed(engine, [[trade(0.5, 1), trade(5, 2)]])
    engine.symbols["BTC/USDT"].spans.clear()  # the first trade's seam: not what this test is about
    engine.process([(f"{ENTRY_MS}-5", gap_notice("BTC/USDT", BASE_NS + 5 * S, BASE_NS + 7 * S))])
    feed(engine, [[trade(8.25, 3)], [trade(20, 4)]], first_entry=6)
    spans = engine.symbols["BTC/USDT"].spans
    assert [(s.start_ns - BASE_NS, s.end_ns - BASE_NS, s.open_end) for s in spans] == [
        (5 * S, 8 * S + S // 4, False)
    ]
    seconds = {t.first_open_ns: t.last_open_ns for t in engine.repairs_due() if t.timeframe is Timeframe.S1}
    assert seconds == {BASE_NS + 5 * S: BASE_NS + 8 * S}


def test_a_repair_of_a_span_that_grew_since_is_done_again_over_the_bars_it_gained() -> None:
    engine = VenueBars("v", RULES)
    feed(engine, [[trade(0.5, 1)], [trade(10, 2)]])
    (task,) = [t for t in engine.repairs_due() if t.timeframe is Timeframe.S1]
    feed(engine, [[trade(3.0, 3)]], first_entry=2)  # late: the span grows to 3 s
    engine.repaired(task)
    (redo,) = [t for t in engine.repairs_due() if t.timeframe is Timeframe.S1]
    # The bar of 0 s is the venue's already; those the span gained are repaired.
    assert (redo.first_open_ns, redo.last_open_ns) == (BASE_NS + S, BASE_NS + 3 * S)
    engine.repaired(redo)
    assert [t for t in engine.repairs_due() if t.timeframe is Timeframe.S1] == []


def test_a_late_trade_merged_with_a_span_into_open_bars_has_its_closed_bar_repaired_at_once() -> None:
    """Seed 2612 of a random search, made minimal: the first trade of a symbol is a seam over its
    own second (1 s, still open); a trade of 0 s comes after that bar closed (late): its span
    merges with the seam's. The bar of 0 s, published without it, is repaired now, not when the
    second of 1 s closes, which it never does once the stream goes quiet."""
    engine = VenueBars("v", WatermarkRules(lateness_ns=S, idle_close_ns=10 * S))
    arrivals = [trade(1.25, 4, "96"), trade(0.93, 5, "51"), trade(2.93, 1, "29"), trade(0.19, 11, "6")]
    (output,) = feed(engine, [arrivals])
    assert output.counts.late == 1
    assert closed([output]) == [0], "0 s closed (watermark 1.93 s), 1 s and 2 s still open"
    live = _fields(output.bars[Timeframe.S1][0])
    assert live != group_by(arrivals)[("BTC/USDT", Timeframe.S1, BASE_NS)], "published without the late trade"
    (span,) = engine.symbols["BTC/USDT"].spans
    assert (span.start_ns - BASE_NS, span.end_ns - BASE_NS) == (S * 19 // 100, S * 125 // 100)
    # The input stops here: what is due must already repair the bar published wrong.
    for restarted in (False, True):
        engine = reloaded(engine) if restarted else engine
        tasks = [t for t in engine.repairs_due() if t.timeframe is Timeframe.S1]
        assert tasks == [RepairTask("BTC/USDT", Timeframe.S1, BASE_NS, BASE_NS)]
    engine.repaired(tasks[0])
    assert [t for t in reloaded(engine).repairs_due() if t.timeframe is Timeframe.S1] == []
    # The seam's own second is repaired once it closes, and only it.
    feed(engine, [[trade(3.5, 6)]], first_entry=1)
    tasks = [t for t in engine.repairs_due() if t.timeframe is Timeframe.S1]
    assert tasks == [RepairTask("BTC/USDT", Timeframe.S1, BASE_NS + S, BASE_NS + S)]
    engine.repaired(tasks[0])
    assert [t for t in engine.repairs_due() if t.timeframe is Timeframe.S1] == []


def test_an_entry_given_up_is_a_seam_from_each_symbols_watermark_to_its_next_trade() -> None:
    engine = VenueBars("v", RULES)
    feed(engine, [[trade(10, 1), trade(12, 2, symbol="ETH/USDT")]])
    for sym in engine.symbols.values():
        sym.spans.clear()  # the first trades' seams: not what this test is about
    output = engine.entry_lost(f"{ENTRY_MS}-1")  # its trades are lost
    assert output.counts.gaps == 1 and engine.position == (ENTRY_MS, 1)
    feed(engine, [[trade(13, 3), trade(14, 4, symbol="ETH/USDT")]], first_entry=2)
    spans = {symbol: [(s.start_ns - BASE_NS, s.end_ns - BASE_NS, s.open_end) for s in sym.spans]
             for symbol, sym in engine.symbols.items()}  # fmt: skip
    # From each symbol's watermark (its latest trade less 2 s of lateness) to its next trade.
    assert spans == {"BTC/USDT": [(8 * S, 13 * S, False)], "ETH/USDT": [(10 * S, 14 * S, False)]}
    assert engine.entry_lost(f"{ENTRY_MS}-1").counts.gaps == 0, "an entry applied already: nothing"


def test_an_engine_is_fresh_until_an_entry_is_applied_or_given_up() -> None:
    """Fresh: the aggregator's cue that the entries before its first were never its engine's (no gap
    for them)."""
    engine, given_up = VenueBars("v", RULES), VenueBars("v", RULES)
    before = engine.fresh
    feed(engine, [[trade(1, 1)]])
    given_up.entry_lost(f"{ENTRY_MS}-0")
    assert (before, engine.fresh, reloaded(engine).fresh, given_up.fresh) == (True, False, False, False)
