"""Market entries straight to COPY text in one pass (trademesh.core.recorder.market_text): the same text,
row counts and event times as rows_of then copy_text, and None wherever those would not copy
the chunk as it is (a value for the staged path, an error, another payload)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.errors import Corrupt
from trademesh.core.recorder.copy_text import copy_text
from trademesh.core.recorder.market_text import market_text
from trademesh.core.recorder.rows import rows_of
from trademesh.marketdata.v1 import marketdata_pb2 as md

Edit = Callable[[md.MarketEvent], None]


def _event(n: int, edit: Edit, venue: str = "sim", symbol: str = "BTC/USDT") -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=1_000 + n, ts_recv_ns=2_000 + n)
    edit(event)
    return event


def _entries(*events: md.MarketEvent) -> list[Entry]:
    return [(f"1-{n}", decode({FIELD: encode_market("t", [e])})) for n, e in enumerate(events)]


def _general(entries: list[Entry]) -> Any:
    """What the general path copies straight in: (table, text, rows, times), or None."""
    out = []
    for table, rows in rows_of(entries).tables():
        text = copy_text(table, rows)
        if text is None:
            return None
        out.append((table.name, text, len(rows), [row[table.time_index] for row in rows]))
    return out


def _fused(entries: list[Entry]) -> Any:
    copied = market_text(entries)
    return None if copied is None else [(c.table.name, c.text, c.rows, c.times) for c in copied]


def _delta(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]] = ()) -> Edit:
    def edit(event: md.MarketEvent) -> None:
        event.book_delta.sequence = 7
        event.book_delta.bids.extend(md.BookLevel(price=p, size=s) for p, s in bids)
        event.book_delta.asks.extend(md.BookLevel(price=p, size=s) for p, s in asks)

    return edit


def _trade(
    price: str = "65000.5",
    size: str = "0.01",
    trade_id: str = "t1",
    side: common.Side.ValueType = common.SIDE_BUY,
) -> Edit:
    def edit(event: md.MarketEvent) -> None:
        event.trade.CopyFrom(md.Trade(trade_id=trade_id, price=price, size=size, taker_side=side))

    return edit


def _ticker(best_bid: str = "1.5", last_price: str = "") -> Edit:
    def edit(event: md.MarketEvent) -> None:
        event.ticker.best_bid, event.ticker.last_price = best_bid, last_price

    return edit


def _snapshot(event: md.MarketEvent) -> None:
    event.book_snapshot.sequence = 3
    event.book_snapshot.bids.add(price="10", size="1")


def test_a_mix_of_trades_book_events_and_tickers_is_the_general_paths_text() -> None:
    edits = [_delta([("100.5", "2")]), _trade(), _delta([], [("101", "0")]), _snapshot, _ticker(),
             _trade("1", "2", "t2", common.SIDE_SELL), _trade(side=common.SIDE_UNSPECIFIED),
             _delta([("1", "2"), ("3", "4")], [("5", "6"), ("7", "8"), ("9", "1")]),
             _delta([("NaN", "1e5")]), _ticker("", "")]  # fmt: skip
    entries = _entries(*(_event(n, edit) for n, edit in enumerate(edits)))
    fused = _fused(entries)
    assert fused is not None and fused == _general(entries)
    assert {name for name, *_ in fused} == {"trades", "book_events", "tickers"}


@pytest.mark.parametrize(
    "edit",
    [
        _delta([("1,5", "2")]),
        _delta([("{1}", "2")]),
        _trade(price=""),
        _trade(price="1 2"),
        _trade(price="1e3"),
        _trade(trade_id="a\tb"),
        _ticker("1 2"),
        _ticker("x"),
    ],
)
def test_a_value_for_the_staged_path_leaves_the_chunk_to_the_general_path(edit: Edit) -> None:
    entries = _entries(_event(0, _trade()), _event(1, edit))
    assert _general(entries) is None
    assert market_text(entries) is None


def test_a_level_value_holding_a_space_is_left_to_the_general_path_which_refuses_it() -> None:
    for bids in ([("1 5", "2")], [("1 5", "2"), ("3", "4")]):
        entries = _entries(_event(0, _delta(bids)))
        assert market_text(entries) is None
        with pytest.raises(Corrupt):
            rows_of(entries)


def test_other_payloads_names_to_escape_and_other_bodies_are_left_to_the_general_path() -> None:
    def notice(event: md.MarketEvent) -> None:
        event.notice.kind = md.NOTICE_KIND_GAP

    assert market_text(_entries(_event(0, _trade()), _event(1, notice))) is None
    assert market_text(_entries(_event(0, _trade(), venue="a\\b"))) is None
    envelope = decode({FIELD: encode_market("t", [])})
    envelope.ClearField("market")
    envelope.bars.bars.add(venue="sim")
    assert market_text([("1-0", envelope)]) is None
