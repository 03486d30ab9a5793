"""Exchange archives as `trademesh data import` reads them (trademesh.core.history.archives): Binance's
kline and aggTrades zips, monthly and daily, with and without a header row, times in ms and in µs;
a generic CSV by its column mapping and time unit; checksums; and every bad input refused naming
the file, row and value. The archives are written here in the exchanges' formats."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from trademesh.core.cli import main
from trademesh.core.history.archives import Archive, ImportOptions, open_archive
from trademesh.core.history.layouts import parse_columns
from trademesh.core.history.symbols import binance_symbol
from trademesh.core.platform.errors import Corrupt, InvalidArgument

KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
JAN_2024_MS = 1_704_067_200_000
JAN_2025_US = 1_735_689_600_000_000
MS_NS, US_NS = 10**6, 10**3


def kline(open_ms: int, close: str = "42298.61000000", scale: int = 1) -> str:
    return (
        f"{open_ms * scale},42283.58000000,42298.62000000,42283.57000000,{close},35.12345678,"
        f"{(open_ms + 59_999) * scale},1480000.12345678,1042,10.1,400000.2,0"
    )


def zipped(path: Path, lines: list[str], newline: str = "\n") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.with_suffix(".csv").name, newline.join(lines) + newline)
    return path


def checksum(path: Path, digest: str | None = None) -> None:
    digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")


def copy_rows(archive: Archive) -> list[list[str]]:
    return [line.split("\t") for chunk in archive.chunks() for line in chunk.text.decode().splitlines()]


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_monthly_kline_zip_becomes_bars_rows_with_the_archive_s_decimals(
    tmp_path: Path, header: bool, newline: str
) -> None:
    lines = [kline(JAN_2024_MS + n * 60_000) for n in range(3)]
    path = zipped(tmp_path / "BTCUSDT-1m-2024-01.zip", [KLINE_HEADER, *lines] if header else lines, newline)
    archive = open_archive(path, ImportOptions(publish_ns=7))
    assert (archive.table.name, archive.venue, archive.symbol, archive.timeframe) == (
        "bars", "binance", "BTC/USDT", "1m",
    )  # fmt: skip
    rows = copy_rows(archive)
    assert len(rows) == 3
    assert rows[0] == [
        "binance", "BTC/USDT", "1m", str(JAN_2024_MS * MS_NS), "42283.58000000", "42298.62000000",
        "42283.57000000", "42298.61000000", "35.12345678", "1480000.12345678", "1042",
        "42137.086128137641696", "t", "7",
    ]  # fmt: skip
    # the VWAP, 1480000.12345678 / 35.12345678, terminates within 38 digits: exact
    assert [int(row[3]) for row in rows] == [(JAN_2024_MS + n * 60_000) * MS_NS for n in range(3)]


def test_a_daily_spot_kline_zip_of_2025_in_microseconds_has_the_same_nanoseconds(tmp_path: Path) -> None:
    open_us = JAN_2025_US + 5 * 60_000_000
    path = zipped(tmp_path / "ETHUSDT-1m-2025-01-01.zip", [kline(open_us // 1000, scale=1000)])
    rows = copy_rows(open_archive(path, ImportOptions()))
    assert rows[0][1] == "ETH/USDT" and int(rows[0][3]) == open_us * US_NS


def test_a_futures_kline_is_of_the_linear_perpetual(tmp_path: Path) -> None:
    path = zipped(tmp_path / "BTCUSDT-1h-2024-01.zip", [KLINE_HEADER, kline(JAN_2024_MS)])
    archive = open_archive(path, ImportOptions(venue="binanceusdm"))
    assert (archive.venue, archive.symbol, archive.timeframe) == ("binanceusdm", "BTC/USDT:USDT", "1h")


def test_spot_agg_trades_in_microseconds_become_trades_with_the_taker_s_side(tmp_path: Path) -> None:
    lines = [
        f"101,42000.10000000,0.50000000,200,201,{JAN_2025_US},True,True",
        f"102,42000.20000000,0.00100000,202,202,{JAN_2025_US + 1500},False,True",
    ]
    archive = open_archive(zipped(tmp_path / "BTCUSDT-aggTrades-2025-01.zip", lines), ImportOptions())
    assert archive.table.name == "trades"
    ts, later = str(JAN_2025_US * US_NS), str(JAN_2025_US * US_NS + 1_500_000)
    assert copy_rows(archive) == [
        ["binance", "BTC/USDT", ts, ts, "101", "42000.10000000", "0.50000000", "sell"],
        ["binance", "BTC/USDT", later, later, "102", "42000.20000000", "0.00100000", "buy"],
    ]


def test_futures_agg_trades_with_a_header_and_seven_columns_in_ms(tmp_path: Path) -> None:
    lines = [AGG_HEADER, f"7,100.5,2,1,3,{JAN_2024_MS},false"]
    archive = open_archive(zipped(tmp_path / "ETHUSDT-aggTrades-2024-01-02.zip", lines), ImportOptions())
    assert copy_rows(archive) == [
        ["binance", "ETH/USDT", str(JAN_2024_MS * MS_NS), str(JAN_2024_MS * MS_NS), "7", "100.5", "2", "buy"]
    ]


def test_a_matching_checksum_passes_and_a_wrong_one_is_refused_naming_both(tmp_path: Path) -> None:
    path = zipped(tmp_path / "BTCUSDT-1m-2024-01.zip", [kline(JAN_2024_MS)])
    checksum(path)
    assert len(copy_rows(open_archive(path, ImportOptions()))) == 1
    checksum(path, "ab" * 32)
    with pytest.raises(Corrupt) as refused:
        list(open_archive(path, ImportOptions()).chunks())
    message = str(refused.value)
    assert (
        str(path) in message
        and "ab" * 32 in message
        and hashlib.sha256(path.read_bytes()).hexdigest() in message
    )


def test_a_corrupt_zip_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = zipped(tmp_path / "BTCUSDT-1m-2024-01.zip", [kline(JAN_2024_MS + n * 60_000) for n in range(500)])
    data = bytearray(path.read_bytes())
    data[60:90] = b"\x00" * 30  # inside the deflated member: its CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(Corrupt, match=r"BTCUSDT-1m-2024-01\.zip: not a readable zip archive"):
        list(open_archive(path, ImportOptions()).chunks())


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (kline(JAN_2024_MS + 60_000, close="abc"), "row 3: close 'abc' is not a plain decimal"),
        (kline(JAN_2024_MS + 60_000, close="1e5"), "row 3: close '1e5' is not a plain decimal"),
        (kline(JAN_2024_MS + 60_000, close="NaN"), "row 3: close 'NaN' is not a plain decimal"),
        ("1704067260000,1,2,3", "row 3: 4 fields where this file's kline rows have 12"),
        (kline(JAN_2024_MS + 60_000, scale=1000), "row 3: open_time '1704067260000000' is not a time in ms"),
        (kline(JAN_2024_MS + 30_000), "row 3: time 1704067230000 (ms) is not on the 1m grid"),
    ],
)
def test_a_malformed_row_is_refused_naming_file_row_and_value(tmp_path: Path, bad: str, said: str) -> None:
    path = zipped(
        tmp_path / "BTCUSDT-1m-2024-01.zip", [KLINE_HEADER, kline(JAN_2024_MS), bad, kline(JAN_2024_MS)]
    )
    with pytest.raises(Corrupt) as refused:
        list(open_archive(path, ImportOptions()).chunks())
    assert str(path) in str(refused.value) and said in str(refused.value)


def test_a_generic_csv_is_read_by_its_column_mapping_and_time_unit(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("volume,time,o,h,l,c,extra\n12.5,1704067200,1.1,2.2,0.9,-1.5,x\n3,1704067260,1,2,0,1,y\n")
    options = ImportOptions(
        venue="kraken", symbol="BTC/USD", timeframe="1m",
        columns=parse_columns("volume=0,ts=1,open=2,high=3,low=4,close=5"), time_unit="s", publish_ns=9,
    )  # fmt: skip
    rows = copy_rows(open_archive(path, options))
    start, then = str(1_704_067_200 * 10**9), str(1_704_067_260 * 10**9)
    tail = ["\\N", "0", "\\N", "t", "9"]  # no quote volume, no trade count, no vwap; repaired; publish
    assert rows == [
        ["kraken", "BTC/USD", "1m", start, "1.1", "2.2", "0.9", "-1.5", "12.5", *tail],
        ["kraken", "BTC/USD", "1m", then, "1", "2", "0", "1", "3", *tail],
    ]


@pytest.mark.parametrize(
    ("columns", "said"),
    [
        ("ts=0,open=1", "no column for high, low, close, volume"),
        ("ts=0,open=1,high=2,low=3,close=4,volume=4", "two fields read the same column"),
        ("ts=0,price=1", "'price' is not a field"),
    ],
)
def test_a_bad_column_mapping_is_refused_naming_it(columns: str, said: str) -> None:
    with pytest.raises(InvalidArgument, match=said):
        parse_columns(columns)


def test_binance_names_are_canonical_symbols_or_refused() -> None:
    assert binance_symbol("BTCFDUSD", "binance") == "BTC/FDUSD"
    assert binance_symbol("1000PEPEUSDT", "binanceusdm") == "1000PEPE/USDT:USDT"
    assert binance_symbol("ETHBTC", "binance") == "ETH/BTC"
    with pytest.raises(InvalidArgument, match="--symbol"):
        binance_symbol("XYZ", "binance")


@pytest.mark.parametrize(
    ("name", "args", "said"),
    [
        ("BTCUSDT-3m-2024-01.zip", [], "timeframe: BTCUSDT-3m-2024-01.zip: '3m' is not a timeframe"),
        ("BTCUSDT-1m-2024-01.zip", ["--venue", "nowhere"], "venue: 'nowhere' is not a venue"),
        ("BTCUSDT-1m-2024-01.zip", ["--symbol", "btcusdt"], "symbol: 'btcusdt' is not a canonical symbol"),
        ("prices.zip", [], "prices.zip is not a Binance archive's name"),
    ],
)
def test_an_unknown_venue_symbol_or_timeframe_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, args: list[str], said: str
) -> None:
    path = zipped(tmp_path / name, [kline(JAN_2024_MS)])
    url = "postgresql://nobody@127.0.0.1:1/none"  # never reached: names are checked first
    assert main(["data", "import", str(path), *args, "--database-url", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err
