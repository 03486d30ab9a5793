"""A bar downloaded is the bar the bar service stores from the same venue candle: `data download`'s
rows (trademesh.core.history.download.bar_records) against the bar service's repair
(trademesh.core.bars.repair.candle_bar), field for field. Found by
tests/integration/test_history_download_parity.py: the download stored no VWAP where the bar
service computes one from the candle's quote volume, and would store a bar for a candle with no
volume, where the bar service stores none."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.bars.repair import candle_bar
from trademesh.core.domain.convert import candle_to_pb
from trademesh.core.domain.model import Timeframe
from trademesh.core.history.download import bar_records
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.normalize import candle_from_row

MINUTE = 60 * 10**9
T0 = 1_704_067_200 * 10**9

CANDLES = [
    # A VWAP that terminates: exact.
    md.Candle(open_time_ns=T0, open="100", high="101", low="99.5", close="100.25", volume="4",
              quote_volume="401", trade_count=3, closed=True),
    # One that does not: rounded half-even to 16 places, by the bars' rule.
    md.Candle(open_time_ns=T0 + MINUTE, open="100.25", high="100.5", low="100", close="100",
              volume="3", quote_volume="301", trade_count=2, closed=True),
    # Trailing zeros as a venue writes them (Binance: 8 decimals).
    md.Candle(open_time_ns=T0 + 2 * MINUTE, open="100.00000000", high="100.10000000",
              low="99.90000000", close="100.00000000", volume="2.50000000", quote_volume="250.12500000",
              trade_count=7, closed=True),
    # No quote volume (ccxt's OHLCV): no VWAP.
    md.Candle(open_time_ns=T0 + 3 * MINUTE, open="100", high="100", low="100", close="100", volume="1",
              trade_count=0, closed=True),
]  # fmt: skip
QUIET = md.Candle(
    open_time_ns=T0 + 4 * MINUTE, open="100", high="100", low="100", close="100", volume="0.00000000",
    quote_volume="0.00000000", trade_count=0, closed=True,
)  # fmt: skip
_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trade_count", "vwap")


def _bar_service_row(candle: md.Candle) -> tuple[object, ...] | None:
    bar = candle_bar("binance", "BTC/USDT", Timeframe.M1, candle)
    if bar is None:
        return None
    values = [getattr(bar, name) for name in _FIELDS]
    return (
        bar.open_time_ns,
        *(Decimal(v) if v != "" else None for v in values[:6]),
        values[6],
        Decimal(values[7]) if values[7] else None,
        bar.repaired,
    )


def test_a_downloaded_bar_is_the_bar_the_bar_service_stores_from_the_same_candle() -> None:
    rows = bar_records("binance", "BTC/USDT", Timeframe.M1, [*CANDLES, QUIET], publish_ns=5)
    assert [row[:3] for row in rows] == [("binance", "BTC/USDT", "1m")] * len(CANDLES)
    assert all(row[-1] == 5 for row in rows)  # ts_publish_ns: the download's time
    assert [row[3:-1] for row in rows] == [_bar_service_row(c) for c in CANDLES]
    assert [row[11] for row in rows] == [
        Decimal("100.25"), Decimal("100.3333333333333333"), Decimal("100.05"), None,
    ]  # fmt: skip


def test_a_candle_with_no_volume_is_no_bar_as_live() -> None:
    assert _bar_service_row(QUIET) is None
    assert bar_records("binance", "BTC/USDT", Timeframe.M1, [QUIET], publish_ns=5) == []


def test_a_live_venues_candle_states_no_quote_volume_so_its_bar_has_no_vwap_rather_than_0() -> None:
    # ccxt's OHLCV rows carry no quote volume: a live venue's GetCandles said "0", so the bar
    # service's repairs from a live venue and the download stored a quote volume of 0 and a VWAP
    # of 0, where a bar built from the same trades holds both. Not known is "" on the wire.
    candle = candle_from_row(Timeframe.M1, [T0 // 10**6, "100", "101", "99", "100.5", "2.5"], True)
    assert candle.quote_volume is None and candle.trade_count == 0
    wire = candle_to_pb(candle)
    assert wire.quote_volume == "" and wire.volume == "2.5"
    bar = candle_bar("binance", "BTC/USDT", Timeframe.M1, wire)
    assert bar is not None and (bar.quote_volume, bar.vwap) == ("", "")
    [row] = bar_records("binance", "BTC/USDT", Timeframe.M1, [wire], publish_ns=5)
    assert row[3:-1] == _bar_service_row(wire)
    assert (row[9], row[11]) == (None, None)  # quote_volume, vwap


def test_a_binance_kline_row_keeps_its_quote_volume_and_trade_count() -> None:
    kline = [T0 // 10**6, "100.0", "101.0", "99.0", "100.5", "2.50000000", T0 // 10**6 + 59_999,
             "250.12500000", 7, "1.2", "120.0", "0"]  # fmt: skip
    candle = candle_from_row(Timeframe.M1, kline, True)
    assert (candle.quote_volume, candle.trade_count) == (Decimal("250.125"), 7)
    [row] = bar_records("binance", "BTC/USDT", Timeframe.M1, [candle_to_pb(candle)], publish_ns=5)
    assert (row[9], row[10], row[11]) == (Decimal("250.125"), 7, Decimal("100.05"))
