"""Bus entries to the recorder's row tuples, day partitions' names, the migration files, the
streams it consumes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import FIELD, decode_entry
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.errors import Corrupt, FailedPrecondition
from trademesh.core.recorder.app import RecorderConfig
from trademesh.core.recorder.command import COMMAND
from trademesh.core.recorder.migrate import load_migrations
from trademesh.core.recorder.partitions import (
    DAY_NS,
    FIRST_DAY,
    LAST_DAY,
    _day_of_name,
    day_of,
    partition_name,
)
from trademesh.core.recorder.rows import chunks, rows_of
from trademesh.core.recorder.schema import JOURNAL, TABLES
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

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


def test_funding_rates_and_their_notices_are_rows_of_their_own() -> None:
    funding = md.FundingRate(rate="-0.0001", next_funding_ns=T0 + 60 * 10**9, mark_price="65000.5")
    gap = md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=md.CHANNEL_FUNDING, reason="reconnect")
    rows = rows_of([market(event(funding_rate=funding), event(funding_rate=md.FundingRate(rate="0")),
                           event(notice=gap))])  # fmt: skip
    assert rows.funding_rates == [
        ("sim", "BTC/USDT", T0, T0 + 5, "-0.0001", T0 + 60 * 10**9, "65000.5", ""),
        ("sim", "BTC/USDT", T0, T0 + 5, "0", None, "", ""),  # no funding time said: NULL, not 0
    ]
    assert rows.notices == [("sim", "BTC/USDT", T0, T0 + 5, "gap", "funding", "reconnect", None)]


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
    ticker = md.Ticker(
        best_bid="1",
        best_bid_size="2",
        best_ask="3",
        best_ask_size="4",
        quote_volume_24h="1500.5",
        open_24h="0.95",
    )
    rows = rows_of([market(event(candle=candle), event(notice=notice), event(ticker=ticker))])
    assert rows.candles[0][4:] == ("1m", T0 - 60 * 10**9, "1", "2", "0.5", "1.5", "10", "", 3, True)
    assert rows.notices == [("sim", "BTC/USDT", T0, T0 + 5, "gap", "book", "reconnect", None)]
    assert rows.tickers[0][4:] == ("1", "2", "3", "4", "", "", "1500.5", "0.95")
    bar = bus.Bar(venue="sim", symbol="ETH/USDT", timeframe=common.TIMEFRAME_1_HOUR, open_time_ns=T0)
    bar.open, bar.high, bar.low, bar.close, bar.volume, bar.repaired = "1", "1", "1", "1", "0", True
    envelope = bus.Envelope(source="bars", ts_publish_ns=T0 + 9, bars=bus.Bars(bars=[bar]))
    assert rows_of([("2-0", envelope)]).bars == [
        ("sim", "ETH/USDT", "1h", T0, "1", "1", "1", "1", "0", "", 0, "", True, T0 + 9)
    ]


def signals_entry(*signals: sig.Signal) -> Entry:
    return ("3-0", bus.Envelope(source="detector", ts_publish_ns=T0, signals=bus.Signals(signals=signals)))


def requests_entry(*requests: sig.PositionRequest) -> Entry:
    envelope = bus.Envelope(source="detector", ts_publish_ns=T0)
    envelope.position_requests.requests.extend(requests)
    return ("4-0", envelope)


def signal(**fields: object) -> sig.Signal:
    values: dict[str, object] = {
        "signal_id": "0191e3c0-7a5b-7000-8000-000000000001",
        "venue": "sim",
        "symbol": "BTC/USDT",
        "direction": sig.DIRECTION_LONG,
        "conviction": "0.750",
        "score": "1.5",
        "threshold": "1.2",
        "strategy_id": "rsi-cross",
        "patch_version": 7,
        "ts_event_ns": T0,
        "ts_signal_ns": T0 + 3,
    }
    values.update(fields)
    return sig.Signal(**values)  # type: ignore[arg-type]


def request(**fields: object) -> sig.PositionRequest:
    values: dict[str, object] = {
        "request_id": "r1",
        "venue": "sim",
        "symbol": "ETH/USDT",
        "action": sig.POSITION_ACTION_OPEN,
        "direction": sig.DIRECTION_SHORT,
        "strategy_id": "rsi-cross",
        "patch_version": 2,
        "ts_event_ns": T0,
        "ts_request_ns": T0 + 4,
    }
    values.update(fields)
    return sig.PositionRequest(**values)  # type: ignore[arg-type]


def test_a_signal_becomes_a_row_with_its_rules_as_a_json_array() -> None:
    rules = [
        sig.RuleAttribution(name="rsi < 30", weight="1.0", value="28.4", fired=True),
        sig.RuleAttribution(name='vol "spike"', weight="0.50", value="", fired=False),
    ]
    rows = rows_of([signals_entry(signal(rules=rules), signal(signal_id="s2", direction=sig.DIRECTION_FLAT))])
    first = rows.signals[0]
    assert first[:9] == (
        "0191e3c0-7a5b-7000-8000-000000000001",
        "sim",
        "BTC/USDT",
        "long",
        "0.750",
        "1.5",
        "1.2",
        "rsi-cross",
        7,
    )
    assert json.loads(first[9]) == [
        {"name": "rsi < 30", "weight": "1.0", "value": "28.4", "fired": True},
        {"name": 'vol "spike"', "weight": "0.50", "value": "", "fired": False},
    ]
    assert first[10:] == (T0, T0 + 3)
    assert rows.signals[1][3] == "flat" and rows.signals[1][9] == "[]"
    assert [table.name for table, _ in rows.tables()] == ["signals"]


def test_position_requests_become_rows_with_no_direction_or_fraction_as_null_or_empty() -> None:
    reduce = request(request_id="r2", action=sig.POSITION_ACTION_REDUCE, direction=0, fraction="0.25")
    close = request(request_id="r3", action=sig.POSITION_ACTION_CLOSE, direction=0)
    rows = rows_of([requests_entry(request(), reduce, close)])
    assert rows.position_requests == [
        ("r1", "sim", "ETH/USDT", "open", "short", "", "rsi-cross", 2, T0, T0 + 4),
        ("r2", "sim", "ETH/USDT", "reduce", None, "0.25", "rsi-cross", 2, T0, T0 + 4),
        ("r3", "sim", "ETH/USDT", "close", None, "", "rsi-cross", 2, T0, T0 + 4),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (signals_entry(signal(direction=sig.DIRECTION_UNSPECIFIED)), "signal direction 0"),
        (signals_entry(signal(direction=9)), "signal direction 9"),
        (requests_entry(request(action=sig.POSITION_ACTION_UNSPECIFIED)), "position request action 0"),
        (requests_entry(request(action=17)), "position request action 17"),
        (requests_entry(request(direction=5)), "position request direction 5"),
    ],
    ids=["no-direction", "unknown-direction", "no-action", "unknown-action", "request-direction"],
)
def test_unknown_signal_and_request_enums_are_corrupt(entry: Entry, message: str) -> None:
    with pytest.raises(Corrupt, match=message):
        rows_of([entry])


def test_chunks_count_signals_and_position_requests() -> None:
    three = signals_entry(*(signal(signal_id=str(n)) for n in range(3)))
    entries = [three, requests_entry(request(), request())]
    assert [len(part) for part in chunks(entries, 3)] == [1, 1]
    assert [len(part) for part in chunks(entries, 5)] == [2]


def test_every_row_matches_its_staging_columns() -> None:
    rows = rows_of(
        [
            market(event(trade=md.Trade(trade_id="1", price="1", size="1"))),
            signals_entry(signal()),
            requests_entry(request()),
        ]
    )
    for table in TABLES:
        assert table.columns[table.time_index][0] == table.time_column
    assert [len(table_rows) for _, table_rows in rows.tables()] == [1, 1, 1]
    for table, table_rows in rows.tables():
        assert len(table_rows[0]) == len(table.columns), table.name


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


def recorder_config(*argv: str) -> RecorderConfig:
    parser = argparse.ArgumentParser()
    COMMAND.add_arguments(parser)
    args = parser.parse_args(["--database-url", "postgresql://db/x", "--redis-url", "redis://r", *argv])
    return COMMAND.config(args)


@pytest.mark.parametrize(
    ("argv", "patterns", "streams"),
    [
        (
            (),
            (
                "md.*",
                "bars.*",
                "exec.*",
                "funding.*",
                "inspector.journal.*",
                "regimes.*",
                "screens.*",
                "account.*",
            ),
            (
                "signals",
                "position_requests.{signals}",
                "decisions.{signals}",
                "intents.{signals}",
                "advisor.telemetry.{signals}",
                "supervisor.audit",
            ),
        ),
        (("--stream-pattern", "md.{sim}.*"), ("md.{sim}.*",), ()),
        (("--stream", "signals"), (), ("signals",)),
    ],
    ids=["default", "patterns-only", "names-only"],
)
def test_the_recorder_consumes_market_bar_trading_and_journal_streams_unless_told_which(
    argv: tuple[str, ...], patterns: tuple[str, ...], streams: tuple[str, ...]
) -> None:
    config = recorder_config(*argv)
    assert (config.patterns, config.streams) == (patterns, streams)
    options = config.consumer_options()
    assert (options.patterns, options.streams) == (patterns, streams)


def executions_entry(batch: bus.Executions, ts_publish_ns: int = T0) -> Entry:
    envelope = bus.Envelope(source="test", ts_publish_ns=ts_publish_ns)
    envelope.executions.CopyFrom(batch)
    return ("1-0", envelope)


def fill_execution(sequence: int) -> tf.Execution:
    order = tf.Order(
        venue="sim", order_id="o1", client_order_id="c1", symbol="BTC/USDT", side=common.SIDE_BUY,
        type=tf.ORDER_TYPE_LIMIT, time_in_force=tf.TIME_IN_FORCE_GTC, price="65000.5", size="0.01",
        filled_size="0.004", average_fill_price="65000.5", status=tf.ORDER_STATUS_PARTIALLY_FILLED,
        created_ns=T0 - 10, updated_ns=T0,
    )  # fmt: skip
    fill = tf.Fill(
        fill_id="f1", order_id="o1", symbol="BTC/USDT", side=common.SIDE_BUY, price="65000.5",
        size="0.004", fee="-0.0001", fee_asset="USDT", liquidity=tf.LIQUIDITY_MAKER, trade_id="t9",
        ts_event_ns=T0,
    )  # fmt: skip
    return tf.Execution(venue="sim", ts_event_ns=T0, order=order, fill=fill, sequence=sequence)


def test_an_execution_becomes_a_row_with_its_fill_and_epoch() -> None:
    open_update = fill_execution(1)
    open_update.ClearField("fill")
    open_update.order.type = tf.ORDER_TYPE_MARKET
    open_update.order.price = ""
    batch = bus.Executions(venue="sim", epoch=77, position=2, executions=[open_update, fill_execution(2)])
    rows = rows_of([executions_entry(batch)])
    assert [table.name for table, _ in rows.tables()] == ["executions"]
    first, second = rows.executions
    assert first[:4] == ("sim", 77, 1, T0) and first[8] == "market" and first[12] == ""
    assert first[20:28] == (None,) * 8
    assert second[7:12] == ("buy", "limit", "gtc", False, False)
    assert second[16] == "partially_filled"
    assert second[20:28] == ("f1", "65000.5", "0.004", "-0.0001", "USDT", "maker", "t9", T0)
    assert first[28] == second[28] == ""  # no trigger price: not a stop order


def test_a_stop_orders_trigger_price_is_kept() -> None:
    stop = fill_execution(1)
    stop.ClearField("fill")
    stop.order.type, stop.order.price, stop.order.trigger_price = tf.ORDER_TYPE_STOP_MARKET, "", "64000.5"
    rows = rows_of([executions_entry(bus.Executions(venue="sim", epoch=77, executions=[stop]))])
    (row,) = rows.executions
    assert (row[8], row[12], row[28]) == ("stop_market", "", "64000.5")


def test_an_executions_gap_marker_becomes_a_notice() -> None:
    marker = bus.Executions(venue="sim", epoch=77, position=4, gap=True, gap_reason="venue restarted")
    rows = rows_of([executions_entry(marker, ts_publish_ns=T0 + 1)])
    assert rows.notices == [("sim", "", T0 + 1, T0 + 1, "gap", "executions", "venue restarted", None)]
    with pytest.raises(Corrupt, match="without its venue"):
        rows_of([executions_entry(bus.Executions(gap=True))])


def test_an_execution_of_an_unknown_side_is_corrupt_an_unknown_type_kept() -> None:
    execution = fill_execution(1)
    execution.order.type = 99  # type: ignore[assignment]  # a newer venue's order type
    rows = rows_of([executions_entry(bus.Executions(epoch=1, executions=[execution]))])
    assert rows.executions[0][8] == "99"
    execution.order.side = common.SIDE_UNSPECIFIED
    with pytest.raises(Corrupt, match="order side"):
        rows_of([executions_entry(bus.Executions(epoch=1, executions=[execution]))])


def test_execution_rows_match_their_staging_columns() -> None:
    rows = rows_of([executions_entry(bus.Executions(venue="sim", epoch=1, executions=[fill_execution(1)]))])
    for table, table_rows in rows.tables():
        assert len(table_rows[0]) == len(table.columns), table.name
        assert table_rows[0][table.time_index] == T0


def journal_fill() -> jr.JournalEntry:
    fill = tf.Fill(fill_id="f1", client_order_id="c1", symbol="BTC/USDT", price="65000.5", size="0.004")
    return jr.JournalEntry(now_ns=T0 + 7, fill=jr.JournalFill(venue="sim", fill=fill))


def test_an_inspectors_journal_entry_is_read_wrapped_and_becomes_a_row_naming_its_venue_and_order() -> None:
    """The journal stream holds bare JournalEntry messages (trademesh.core.inspector.input_journal): a
    consumer reads each wrapped in an Envelope, and the recorder keeps it whole with its kind, the
    venue and the order it names, keyed by the stream entry's id."""
    mark = jr.JournalEntry(now_ns=T0 + 8, mark=jr.JournalMark(venue="sim", symbol="BTC/USDT", price="1"))
    unknown = jr.JournalEntry(now_ns=T0 + 9, placement_unknown="c2")
    entries = [
        (f"{1700 + n}-{n}", decode_entry("inspector.journal.{main}", {FIELD: e.SerializeToString()}))
        for n, e in enumerate((journal_fill(), mark, unknown))
    ]
    assert entries[0][1].ts_publish_ns == T0 + 7 and entries[0][1].source == "inspector/main"
    rows = rows_of(entries)
    assert [row[:7] for row in rows.journal] == [
        ("main", 1700, 0, T0 + 7, "fill", "sim", "c1"),
        ("main", 1701, 1, T0 + 8, "mark", "sim", ""),
        ("main", 1702, 2, T0 + 9, "placement_unknown", "", "c2"),
    ]
    assert jr.JournalEntry.FromString(rows.journal[0][7]) == journal_fill()
    assert [len(row) for row in rows.journal] == [len(JOURNAL.columns)] * 3
    assert len(next(chunks(entries, 2))) == 2  # an entry counts one event


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({FIELD: b"\x00 not a protobuf"}, "not a JournalEntry"),
        ({FIELD: jr.JournalEntry(now_ns=T0).SerializeToString()}, "has no input"),
        ({b"x": b""}, "has no 'd' field"),
    ],
)
def test_a_journal_entry_that_is_not_one_is_corrupt(fields: dict[bytes, bytes], message: str) -> None:
    with pytest.raises(Corrupt, match=message):
        decode_entry("inspector.journal.{main}", fields)


def test_any_other_streams_entry_is_read_as_its_envelope() -> None:
    envelope = bus.Envelope(source="test", ts_publish_ns=T0, executions=bus.Executions(venue="sim"))
    assert decode_entry("exec.{sim}", {FIELD: envelope.SerializeToString()}) == envelope
    with pytest.raises(Corrupt, match="not an Envelope"):  # a journal entry on any other stream
        decode_entry("intents", {FIELD: b"\x00 not a protobuf"})


def test_a_venues_funding_payments_become_rows_with_their_rates() -> None:
    batch = bus.FundingPayments(venue="sim")
    batch.payments.add(
        funding_id="BTCUSDT-PERP-60000", symbol="BTC/USDT:USDT", asset="USDT", amount="-0.65", rate="0.0001",
        position_size="0.1", ts_ns=60 * 10**9,
    )  # fmt: skip
    batch.payments.add(funding_id="x-1", symbol="BTC/USDT:USDT", asset="USDT", amount="1", ts_ns=61 * 10**9)
    envelope = bus.Envelope(source="t", funding=batch)
    rows = rows_of([("1-0", envelope)])
    assert [table.name for table, _ in rows.tables()] == ["funding"]
    assert rows.funding == [
        ("sim", "BTCUSDT-PERP-60000", 60 * 10**9, "BTC/USDT:USDT", "USDT", "-0.65", "0.0001", "0.1"),
        ("sim", "x-1", 61 * 10**9, "BTC/USDT:USDT", "USDT", "1", "", ""),  # no rate said: NULL
    ]
    with pytest.raises(Corrupt, match="without their venue"):
        rows_of([("2-0", bus.Envelope(funding=bus.FundingPayments()))])


def test_overwatchs_regime_changes_become_rows_with_their_figures_and_publish_time() -> None:
    changes = bus.RegimeChanges()
    changes.changes.add(
        venue="sim", symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_MINUTE, previous=ow.REGIME_UNKNOWN,
        regime=ow.REGIME_TREND_UP, since_ns=T0 - 120 * 10**9, at_bar_ns=T0 - 60 * 10**9, at_ns=T0,
        features=ow.Features(adx=31.25, di_plus=28.5, di_minus=9.0625, vol_ratio=1.125, volume_ratio=0.75),
    )  # fmt: skip
    changes.changes.add(
        venue="sim", symbol="ETH/USDT", timeframe=common.TIMEFRAME_1_MINUTE, previous=ow.REGIME_RANGE,
        regime=ow.REGIME_THIN_LIQUIDITY, since_ns=T0, at_bar_ns=T0, at_ns=T0 + 60 * 10**9,
    )  # fmt: skip
    rows = rows_of([("1-0", bus.Envelope(source="overwatch", ts_publish_ns=T0 + 7, regimes=changes))])
    assert [table.name for table, _ in rows.tables()] == ["regime_changes"]
    assert rows.regimes == [
        ("sim", "BTC/USDT", "1m", T0, T0 - 60 * 10**9, T0 - 120 * 10**9, "unknown", "trend_up",
         31.25, 28.5, 9.0625, 1.125, 0.75, T0 + 7),
        ("sim", "ETH/USDT", "1m", T0 + 60 * 10**9, T0, T0, "range", "thin_liquidity",
         0.0, 0.0, 0.0, 0.0, 0.0, T0 + 7),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"regime": ow.REGIME_UNSPECIFIED}, "regime 0"),
        ({"previous": 42}, "previous regime 42"),
        ({"timeframe": common.TIMEFRAME_UNSPECIFIED}, "regime change timeframe 0"),
    ],
)
def test_a_regime_change_without_a_known_regime_or_timeframe_is_corrupt(
    fields: dict[str, int], reason: str
) -> None:
    change = ow.RegimeChange(
        venue="sim", symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_MINUTE, previous=ow.REGIME_UNKNOWN,
        regime=ow.REGIME_RANGE, at_ns=T0,
    )  # fmt: skip
    for name, value in fields.items():
        setattr(change, name, value)
    envelope = bus.Envelope(source="overwatch", regimes=bus.RegimeChanges(changes=[change]))
    with pytest.raises(Corrupt, match=reason):
        rows_of([("1-0", envelope)])


def screen_result(**fields: object) -> sc.ScreenResult:
    """Three ranked of a top 2, each with its momentum; `fields` set over it."""
    result = sc.ScreenResult(
        screen="movers", venue="sim", computed_ns=T0, top_n=2, universe=5, left_out=1,
        missing={"momentum": 1, "bar_volume": 1}, stale=1, filtered_out=1, oldest_input_ns=T0 - 9,
        newest_input_ns=T0 - 1,
    )  # fmt: skip
    for rank, (symbol, score, value) in enumerate(
        [("ETH/USDT", 1.5, "0.25"), ("BTC/USDT", 0.1 + 0.2, "0.00001"), ("SOL/USDT", -1.0, "-0.5")], start=1
    ):
        result.ranked.add(rank=rank, symbol=symbol, score=score, as_of_ns=T0 - rank,
                          metrics=[sc.MetricValue(metric="momentum", value=value)])  # fmt: skip
    for name, set_to in fields.items():
        setattr(result, name, set_to)
    return result


def test_a_screen_result_becomes_one_row_with_its_top_ranking_and_counts() -> None:
    envelope = bus.Envelope(source="screener", ts_publish_ns=T0 + 7, screen_result=screen_result())
    rows = rows_of([("1-0", envelope)])
    assert [table.name for table, _ in rows.tables()] == ["screen_results"]
    [row] = rows.screens
    assert row[:4] == ("movers", "sim", T0, 2)
    assert json.loads(row[4]) == ["ETH/USDT", "BTC/USDT"]  # the top, in rank order
    ranked = json.loads(row[5])
    assert [(r["rank"], r["symbol"], r["metrics"]) for r in ranked] == [
        (1, "ETH/USDT", {"momentum": "0.25"}), (2, "BTC/USDT", {"momentum": "0.00001"}),
        (3, "SOL/USDT", {"momentum": "-0.5"}),
    ]  # fmt: skip
    assert ranked[1]["score"] == 0.1 + 0.2 and ranked[0]["as_of_ns"] == T0 - 1  # the double, exactly
    assert row[6:] == (5, 1, '{"bar_volume":1,"momentum":1}', 1, 1, T0 - 9, T0 - 1, T0 + 7)
    assert len(list(chunks([("1-0", envelope)] * 4, max_events=6))) == 2  # its ranked count as events


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"screen": ""}, "without its screen"),
        ({"top_n": 0}, "without its screen, venue or top"),
        ({"venue": ""}, "without its screen"),
    ],
)
def test_a_screen_result_without_its_screen_venue_or_top_is_corrupt(
    fields: dict[str, object], reason: str
) -> None:
    envelope = bus.Envelope(source="screener", screen_result=screen_result(**fields))
    with pytest.raises(Corrupt, match=reason):
        rows_of([("1-0", envelope)])


def test_a_ranked_score_that_is_not_finite_is_corrupt() -> None:
    result = screen_result()
    result.ranked[2].score = float("nan")
    with pytest.raises(Corrupt, match="SOL/USDT"):
        rows_of([("1-0", bus.Envelope(source="screener", screen_result=result))])


def audit_entry(*entries: sv.AuditEntry) -> Entry:
    envelope = bus.Envelope(source="test", ts_publish_ns=T0)
    envelope.supervisor_audit.entries.extend(entries)
    return ("1-0", envelope)


def test_the_supervisors_audit_entries_become_rows_and_one_without_its_id_is_corrupt() -> None:
    approved = sv.AuditEntry(
        ts_ns=T0 - 5,
        kind="approved",
        proposal_id="host-1-3",
        detail="resume trend",
        who="operator",
        id="host-1-a7",
    )
    rows = rows_of([audit_entry(approved)])
    assert rows.supervisor_audit == [
        ("host-1-a7", T0 - 5, "approved", "host-1-3", "resume trend", "operator", T0)
    ]
    with pytest.raises(Corrupt, match="without its id"):
        rows_of([audit_entry(sv.AuditEntry(ts_ns=T0, kind="observation"))])
