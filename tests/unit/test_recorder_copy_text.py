"""The market tables' rows as COPY text (trademesh.core.recorder.copy_text): what a COPY straight into the
table is given, and the values it leaves to the staged path (None)."""

from __future__ import annotations

import pytest

from trademesh.core.recorder.copy_text import COPY_COLUMNS, copy_text
from trademesh.core.recorder.rows import Row
from trademesh.core.recorder.schema import BARS, BOOK, TICKERS, TRADES


def trade_row(trade_id: str = "t1", price: str = "65000.50", side: str | None = "buy") -> Row:
    return (
        "binance",
        "BTC/USDT",
        1_700_000_000_000_000_001,
        1_700_000_000_000_000_002,
        trade_id,
        price,
        "0.0120",
        side,
    )


def book_row(bids: tuple[str, str] = ("65000.5 64999", "1.25 3"), asks: tuple[str, str] = ("", "")) -> Row:
    return ("sim", "ETH/USDT", 5, 6, 42, True, *bids, *asks)


def test_trades_are_lines_of_tab_separated_fields_and_a_missing_side_is_null() -> None:
    text = copy_text(TRADES, [trade_row(), trade_row("t2", "0.00000001", None)])
    assert text == (
        b"binance\tBTC/USDT\t1700000000000000001\t1700000000000000002\tt1\t65000.50\t0.0120\tbuy\n"
        b"binance\tBTC/USDT\t1700000000000000001\t1700000000000000002\tt2\t0.00000001\t0.0120\t\\N\n"
    )
    assert COPY_COLUMNS[TRADES.name] == [
        "venue", "symbol", "ts_event_ns", "ts_recv_ns", "trade_id", "price", "size", "taker_side"
    ]  # fmt: skip


def test_book_sides_are_array_literals_and_an_empty_side_an_empty_array() -> None:
    text = copy_text(BOOK, [book_row(), book_row(("1", "0"), ("2.5", "NaN"))])
    assert text == (
        b"sim\tETH/USDT\t5\t6\t42\tt\t{65000.5,64999}\t{1.25,3}\t{}\t{}\n"
        b"sim\tETH/USDT\t5\t6\t42\tt\t{1}\t{0}\t{2.5}\t{NaN}\n"  # the staged cast lets NaN in too
    )


def test_tickers_missing_values_are_null() -> None:
    row = ("okx", "BTC/USDT", 7, 8, "3000.1", "1.5", "", "", "3000.15")
    assert copy_text(TICKERS, [row]) == b"okx\tBTC/USDT\t7\t8\t3000.1\t1.5\t\\N\t\\N\t3000.15\n"


@pytest.mark.parametrize(
    "row",
    [
        trade_row(trade_id="a\tb"),  # COPY escapes: staged, stored as it is
        trade_row(trade_id="a\\N"),
        trade_row(trade_id="line\nbreak"),
        ("bin\\ance", *trade_row()[1:]),
        (trade_row()[0], "BTC\r/USDT", *trade_row()[2:]),
        trade_row(price="NaN"),  # tm_decimal refuses these: staged, refused with its error
        trade_row(price="1e5"),
        trade_row(price=""),
        trade_row(price=" 1"),
    ],
)
def test_a_trade_the_copy_would_read_otherwise_is_left_to_the_staged_path(row: Row) -> None:
    assert copy_text(TRADES, [trade_row(), row]) is None


@pytest.mark.parametrize(
    "bids",
    [
        ("1},{2", "1"),  # would close the literal
        ("NULL", "1"),  # would be a NULL element
        ('"1"', "1"),
        ("1,2", "1"),
        ("1", "x1"),  # not a number: the staged path's own error
        ("1\t2", "1"),
        ("1}\t{2", "1 2"),
        ("1{", "1"),  # one brace more than the rows' own: the chunk's count tells
        ("1", "2\n"),
    ],
)
def test_a_book_level_that_could_change_the_array_literal_is_left_to_the_staged_path(
    bids: tuple[str, str],
) -> None:
    assert copy_text(BOOK, [book_row(), book_row(bids)]) is None


def test_a_ticker_value_that_is_not_a_plain_decimal_is_left_to_the_staged_path() -> None:
    row = ("okx", "BTC/USDT", 7, 8, "Infinity", "1.5", "", "", "")
    assert copy_text(TICKERS, [row]) is None


def test_other_tables_are_always_staged() -> None:
    assert copy_text(BARS, [("sim",)]) is None
