"""trademesh.core.detector.sequence: held market events come out in event-time order, one group per
timestamp and venue in the backtest's order (book, then trades by id); an event at or before a
time already released is late, goes out at that time and is counted."""

from __future__ import annotations

from tests.detector_support import market_trade
from trademesh.core.detector.sequence import Sequencer
from trademesh.marketdata.v1 import marketdata_pb2 as md


def _book(ts: int, sequence: int, snapshot: bool = False) -> md.MarketEvent:
    event = md.MarketEvent(symbol="BTC-USDT", ts_event_ns=ts)
    (event.book_snapshot if snapshot else event.book_delta).sequence = sequence
    return event


def _names(events: list[md.MarketEvent]) -> list[str]:
    return [
        e.trade.trade_id or f"{e.WhichOneof('payload')}:{e.book_delta.sequence or e.book_snapshot.sequence}"
        for e in events
    ]


def test_events_come_out_by_time_then_book_then_trades_by_id() -> None:
    sequencer = Sequencer()
    sequencer.add("v", [market_trade(20, 1.0, "b"), market_trade(10, 1.0, "z"), _book(20, 7, snapshot=True)])
    sequencer.add("v", [market_trade(20, 1.0, "a"), _book(20, 7), market_trade(30, 1.0, "c")], received_ns=99)

    groups = sequencer.release(20)

    assert [(g.time_ns, g.venue) for g in groups] == [(10, "v"), (20, "v")]
    assert _names(groups[0].events) == ["z"]
    assert _names(groups[1].events) == ["book_delta:7", "book_snapshot:7", "a", "b"]
    assert groups[1].received_ns == 99
    assert sequencer.earliest() == 30 and len(sequencer) == 1


def test_an_event_behind_the_released_time_is_late_and_goes_out_at_that_time() -> None:
    sequencer = Sequencer()
    sequencer.add("v", [market_trade(50, 1.0, "a")])
    sequencer.release(50)
    sequencer.reach(60)  # a tick ran at 60: what is at 60 still comes after it
    sequencer.add("v", [market_trade(40, 1.0, "late"), market_trade(60, 1.0, "on time")])

    (late, on_time) = sequencer.release(60)

    assert sequencer.late == 1
    assert (late.time_ns, _names(late.events)) == (59, ["late"])
    assert (on_time.time_ns, _names(on_time.events)) == (60, ["on time"])
