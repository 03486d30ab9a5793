"""Bus entries to the recorder's row tuples, day partitions' names, the migration files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.bus.consumer import Entry
from core.errors import Corrupt, FailedPrecondition
from core.recorder.migrate import load_migrations
from core.recorder.partitions import DAY_NS, FIRST_DAY, LAST_DAY, _day_of_name, day_of, partition_name
from core.recorder.rows import chunks, rows_of
from core.recorder.schema import TABLES
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

T0 = 1_763_700_000_000_000_000


def market(*events: md.MarketEvent) -> Entry:
    envelope = bus.Envelope(source="test", ts_publish_ns=T0)
    envelope.market.events.extend(events)
    return ("1-0", envelope)


def event(**payload: object) -> md.MarketEvent:
    return md.MarketEvent(venue="sim", symbol="BTC/USDT", ts_event_ns=T0, ts_recv_ns=T0 + 5, **payload)  # type: ignore[arg-type]


def test_a_trade_becomes_a_row_in_staging_column_order() -> None:
    trade = md.Trade(trade_id="t1", price="65000.50", size="0.010", taker_side=common.SIDE_SELL)
    rows = rows_of([market(event(trade=trade))])
    assert rows.trades == [("sim", "BTC/USDT", T0, T0 + 5, "t1", "65000.50", "0.010", "sell")]
    assert len(rows) == 1 and [table.name for table, _ in rows.tables()] == ["trades"]


def test_book_levels_are_joined_per_side_and_field() -> None:
    levels = [md.BookLevel(price="100.5", size="2"), md.BookLevel(price="100", size="0")]
    delta = md.BookDelta(sequence=7, bids=levels, asks=[])
    snapshot = md.BookSnapshot(sequence=6, bids=levels[:1], asks=levels[1:])
    rows = rows_of([market(event(book_snapshot=snapshot), event(book_delta=delta))])
    assert rows.book == [
        ("sim", "BTC/USDT", T0, T0 + 5, 6, True, "100.5", "2", "100", "0"),
        ("sim", "BTC/USDT", T0, T0 + 5, 7, False, "100.5 100", "2 0", "", ""),
    ]


@given(st.lists(st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str), max_size=30))
def test_joined_levels_split_back_into_the_same_values(prices: list[str]) -> None:
    levels = [md.BookLevel(price=price, size="1") for price in prices]
    row = rows_of([market(event(book_delta=md.BookDelta(sequence=1, bids=levels)))]).book[0]
    assert (row[6].split(" ") if row[6] else []) == prices


@pytest.mark.parametrize(
    ("bids", "asks"),
    [([], [("100 5", "1")]), ([("100", "1"), ("99", "1 0")], []), ([(" 1", "1"), ("2", "1")], [])],
)
def test_a_level_value_holding_a_space_is_corrupt(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> None:
    delta = md.BookDelta(
        sequence=1,
        bids=[md.BookLevel(price=p, size=s) for p, s in bids],
        asks=[md.BookLevel(price=p, size=s) for p, s in asks],
    )
    with pytest.raises(Corrupt, match="level price or size holds a space"):
        rows_of([market(event(book_delta=delta))])


def test_chunks_hold_about_the_events_asked_for_and_never_split_an_entry() -> None:
    sizes = [3, 1, 7, 2, 2, 2, 9, 1]
    entries = [
        market(*(event(trade=md.Trade(trade_id=f"{i}.{j}", price="1", size="1")) for j in range(n)))
        for i, n in enumerate(sizes)
    ]
    parts = list(chunks(entries, 5))
    assert [len(part) for part in parts] == [3, 3, 1, 1]  # 3+1+7 | 2+2+2 | 9 | 1: closed at >= 5
    assert [entry for part in parts for entry in part] == entries
    assert list(chunks([], 5)) == []


def test_an_event_without_a_payload_is_corrupt() -> None:
    with pytest.raises(Corrupt, match="no known payload"):
        rows_of([market(event(trade=md.Trade(trade_id="1", price="1", size="1")), event())])


def test_unknown_enums_are_corrupt() -> None:
    candle = md.Candle(timeframe=common.TIMEFRAME_UNSPECIFIED, open="1", high="1", low="1", close="1")
    with pytest.raises(Corrupt, match="candle timeframe 0"):
        rows_of([market(event(candle=candle))])
    notice = md.StreamNotice(kind=md.NOTICE_KIND_UNSPECIFIED, channel=md.CHANNEL_TRADES)
    with pytest.raises(Corrupt, match="notice kind 0"):
        rows_of([market(event(notice=notice))])


def test_candles_tickers_notices_and_bars_rows() -> None:
    candle = md.Candle(
        timeframe=common.TIMEFRAME_1_MINUTE,
        open_time_ns=T0 - 60 * 10**9,
        open="1",
        high="2",
        low="0.5",
        close="1.5",
        volume="10",
        trade_count=3,
        closed=True,
    )
    notice = md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=md.CHANNEL_BOOK, reason="reconnect")
    ticker = md.Ticker(best_bid="1", best_bid_size="2", best_ask="3", best_ask_size="4")
    rows = rows_of([market(event(candle=candle), event(notice=notice), event(ticker=ticker))])
    assert rows.candles[0][4:] == ("1m", T0 - 60 * 10**9, "1", "2", "0.5", "1.5", "10", "", 3, True)
    assert rows.notices == [("sim", "BTC/USDT", T0, T0 + 5, "gap", "book", "reconnect", None)]
    assert rows.tickers[0][4:] == ("1", "2", "3", "4", "")
    bar = bus.Bar(venue="sim", symbol="ETH/USDT", timeframe=common.TIMEFRAME_1_HOUR, open_time_ns=T0)
    bar.open, bar.high, bar.low, bar.close, bar.volume, bar.repaired = "1", "1", "1", "1", "0", True
    envelope = bus.Envelope(source="bars", ts_publish_ns=T0 + 9, bars=bus.Bars(bars=[bar]))
    assert rows_of([("2-0", envelope)]).bars == [
        ("sim", "ETH/USDT", "1h", T0, "1", "1", "1", "1", "0", "", 0, "", True, T0 + 9)
    ]


def test_every_row_matches_its_staging_columns() -> None:
    rows = rows_of([market(event(trade=md.Trade(trade_id="1", price="1", size="1")))])
    for table in TABLES:
        assert table.columns[table.time_index][0] == table.time_column
    assert len(rows.trades[0]) == len(TABLES[0].columns)


def test_partition_names_follow_the_utc_day() -> None:
    day = day_of(T0)
    assert partition_name("trades", day) == "trades_20251121"
    assert _day_of_name(partition_name("book_events", day)) == day
    assert day_of(day * DAY_NS) == day and day_of(day * DAY_NS - 1) == day - 1
    assert partition_name("x", FIRST_DAY) == "x_20000101" and partition_name("x", LAST_DAY) == "x_20991231"
    assert _day_of_name("trades_default") is None


def test_migrations_are_numbered_in_order() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "helpers"


def test_a_misnamed_migration_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "2_bad.sql").write_text("SELECT 1;")
    with pytest.raises(FailedPrecondition, match=r"2_bad\.sql"):
        load_migrations(tmp_path)
