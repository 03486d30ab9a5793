"""trademesh.core.backtest.report: the files a run's report writes, the page's content and escaping, and
that the same input gives the same bytes (in one process and in a fresh one)."""

from __future__ import annotations

import calendar
import dataclasses
import os
import struct
import subprocess
import sys
import zlib
from decimal import Decimal as D
from pathlib import Path

import matplotlib
import pytest

from trademesh.core.backtest.metrics import DAY_NS, TOTAL, by_strategy
from trademesh.core.backtest.report import (
    DRAWDOWN_PNG,
    EQUITY_PNG,
    METRIC_ROWS,
    MONTHLY_PNG,
    REPORT_HTML,
    write_report,
)
from trademesh.core.backtest.results import BacktestRoundTrip, EquityPoint, FillRecord, Metrics, RunReport
from trademesh.core.domain.decimals import format_decimal

T0 = calendar.timegm((2024, 11, 20, 0, 0, 0)) * 10**9
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert('x')</script>"


def curve(scale: int, days: int = 80) -> list[EquityPoint]:
    return [
        EquityPoint(T0 + i * DAY_NS, D(scale * (1000 + (i * 37) % 23 - i // 3)), D(i % 2 * 100))
        for i in range(days)
    ]


def run_report() -> RunReport:
    fills = [
        FillRecord(T0 + 3 * DAY_NS, "trend <a>", "sim", "BTC/USDT", "buy", D("100"), D("1"), D("0.1")),
        FillRecord(T0 + 9 * DAY_NS, "trend <a>", "sim", "BTC/USDT", "sell", D("104"), D("1"), D("0.1")),
        FillRecord(T0 + 20 * DAY_NS, "mean-rev", "sim", "ETH/USDT", "sell", D("11"), D("5"), D("0.05")),
        FillRecord(T0 + 30 * DAY_NS, "mean-rev", "sim", "ETH/USDT", "buy", D("10"), D("5"), D("0.05")),
        FillRecord(
            T0 + 40 * DAY_NS, "mean-rev", "sim", "SOL/USDT", "buy", D("7"), D("1"), D("0")
        ),  # no prices
    ]
    trips = [
        BacktestRoundTrip(
            "trend <a>", "sim", "BTC/USDT", "long", T0, T0, D(1), D(100), D(104), D("0.2"), D("3.8")
        ),
        BacktestRoundTrip(
            "mean-rev", "sim", "ETH/USDT", "short", T0, T0, D(5), D(11), D(10), D("0.1"), D("4.9")
        ),
    ]
    strategy_curves = {"trend <a>": curve(1), "mean-rev": curve(2)}
    metrics = by_strategy(curve(3), strategy_curves, trips, fills)
    prices = {
        "BTC/USDT": [(T0 + i * DAY_NS, D(100 + i % 7)) for i in range(80)],
        "ETH/USDT": [(T0 + i * DAY_NS, D(10 + i % 3)) for i in range(80)],
    }
    config = {"strategy": "trend", "fee_bps": "2.5", "note": SCRIPT}
    return RunReport("run-42 & co", 'Backtest "A" <b>', config, metrics, curve(3), fills, prices)


def png_chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, checking each chunk's CRC."""
    assert data[:8] == PNG_SIGNATURE
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks.append(kind)
        at += 12 + length
    return chunks


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample run's report, written once for the tests that only read it: its page."""
    return write_report(run_report(), tmp_path_factory.mktemp("report") / "out")


def test_the_report_writes_valid_pngs_and_a_page_that_links_them(written: Path) -> None:
    page = written
    assert page.name == REPORT_HTML
    out = page.parent
    names = {p.name for p in out.iterdir()}
    pngs = {EQUITY_PNG, DRAWDOWN_PNG, MONTHLY_PNG, "trades-01.png", "trades-02.png", "trades-03.png"}
    assert names == pngs | {REPORT_HTML}
    for name in pngs:
        data = (out / name).read_bytes()
        chunks = png_chunks(data)
        assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
        width, height = struct.unpack(">II", data[16:24])
        assert width > 100 and height > 100
    text = page.read_text(encoding="utf-8")
    for name in pngs:
        assert f'<img src="{name}"' in text
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):  # SOL has fills and no prices
        assert f"<h3>{symbol}</h3>" in text


def test_the_page_names_every_strategy_and_metric_and_shows_their_values(written: Path) -> None:
    report = run_report()
    text = written.read_text(encoding="utf-8")
    assert {field for field, _ in METRIC_ROWS} == {f.name for f in dataclasses.fields(Metrics)}
    for _, label in METRIC_ROWS:
        assert f"<td>{label}</td>" in text
    for name in ("trend &lt;a&gt;", "mean-rev", TOTAL):
        assert f"<th>{name}</th>" in text
    total = report.metrics[TOTAL]
    assert f"<td>{100 * float(total.total_return):.2f} %</td>" in text
    assert f"<td>{total.sharpe:.3f}</td>" in text
    assert f"<td>{format_decimal(total.end_equity)}</td>" in text
    assert "<td>0.3</td>" in text  # the total fees, exact
    assert "<td>n/a</td>" in text  # profit factor without a losing trade


def test_the_page_escapes_what_it_repeats(written: Path) -> None:
    text = written.read_text(encoding="utf-8")
    assert "<script" not in text
    assert "<td>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</td>" in text
    assert "<title>Backtest &quot;A&quot; &lt;b&gt;</title>" in text
    assert "<code>run-42 &amp; co</code>" in text
    assert "<b>" not in text and "<a>" not in text


def test_two_writes_of_the_same_report_are_byte_identical(written: Path, tmp_path: Path) -> None:
    first, second = written.parent, tmp_path / "two"  # the first: this process's write of it
    matplotlib.rcParams["lines.linewidth"] = 7.0  # the caller's style does not leak in
    try:
        write_report(run_report(), second)
    finally:
        matplotlib.rcParams.update(matplotlib.rcParamsDefault)
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in second.iterdir())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    # No text chunk: no "Software" (matplotlib's version) and no time.
    assert b"tEXt" not in png_chunks((first / EQUITY_PNG).read_bytes())


def test_a_fresh_process_writes_the_same_bytes(written: Path, tmp_path: Path) -> None:
    here = written.parent  # this process's write of it
    there = tmp_path / "there"
    script = (
        f"from tests.unit.test_backtest_report import *; write_report(run_report(), Path({str(there)!r}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", script], check=True, env=env, cwd=Path(__file__).parents[2], timeout=120
    )
    for name in sorted(p.name for p in here.iterdir()):
        assert (here / name).read_bytes() == (there / name).read_bytes(), name


def test_a_report_without_data_still_writes_every_chart(tmp_path: Path) -> None:
    empty = RunReport("r", "empty", {}, {}, [], [], {})
    text = write_report(empty, tmp_path).read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == [DRAWDOWN_PNG, EQUITY_PNG, MONTHLY_PNG, REPORT_HTML]
    for name in (EQUITY_PNG, DRAWDOWN_PNG, MONTHLY_PNG):
        assert png_chunks((tmp_path / name).read_bytes())[-1] == b"IEND"
    assert "No equity curve." in text


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_infinite_ratios_show_as_words(tmp_path: Path, value: float) -> None:
    metrics = {"x": dataclasses.replace(run_report().metrics[TOTAL], cagr=value, calmar=value)}
    # The metrics alone: the page's table is what shows them (the charts, then empty, draw faster).
    report = RunReport("r", "infinite ratios", {}, metrics, [], [], {})
    text = write_report(report, tmp_path).read_text(encoding="utf-8")
    assert text.count(f"<td>{'inf' if value > 0 else '-inf'}</td>") == 2
