"""Binance's replay stand-in's /klines for a symbol its capture shows nothing of: Binance has
klines of every listed symbol, so the stand-in answers its synthetic zig-zag, paged by startTime
and limit, up to the last candle closed by the stand-in's clock (the session's last frame)."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.replay import capture_files
from trademesh.venues.binance.standin.history import KlineHistory
from trademesh.venues.replay.candles import session_span
from trademesh.venues.replay.capture import load_capture

MINUTE = 60_000
CAPTURE = load_capture(capture_files("BINANCE"))
CLOCK_MS = session_span(CAPTURE)[1]  # 2021-10-12T00:29:02
LAST_CLOSED = CLOCK_MS // MINUTE * MINUTE - MINUTE
AUG_1_2021_MS = 1_627_776_000_000


def test_a_listed_symbol_never_streamed_has_klines_up_to_the_last_closed_by_the_clock() -> None:
    klines = KlineHistory(CAPTURE)
    page = klines.page(
        {"symbol": "BTCUSDT", "interval": "1m", "startTime": str(AUG_1_2021_MS), "limit": "1000"}
    )
    assert [row[0] for row in page] == list(range(AUG_1_2021_MS, AUG_1_2021_MS + 1000 * MINUTE, MINUTE))
    for open_ms, o, h, low, c, volume, close_ms, *_ in page:
        assert close_ms == open_ms + MINUTE - 1 and Decimal(volume) > 0
        assert Decimal(low) <= min(Decimal(o), Decimal(c)) <= max(Decimal(o), Decimal(c)) <= Decimal(h)
    # The end: the candle holding the clock is not closed, and nothing comes after it.
    tail = klines.page({"symbol": "BTCUSDT", "interval": "1m", "startTime": str(LAST_CLOSED - MINUTE)})
    assert [row[0] for row in tail] == [LAST_CLOSED - MINUTE, LAST_CLOSED]
    assert klines.page({"symbol": "BTCUSDT", "interval": "1m", "startTime": str(LAST_CLOSED + MINUTE)}) == []
    # endTime bounds a page (inclusive, as Binance's), and other intervals page alike.
    bounded = klines.page(
        {
            "symbol": "BTCUSDT",
            "interval": "1h",
            "startTime": str(AUG_1_2021_MS),
            "endTime": str(AUG_1_2021_MS + 3_600_000),
        }
    )
    assert [row[0] for row in bounded] == [AUG_1_2021_MS, AUG_1_2021_MS + 3_600_000]


def test_a_streamed_symbol_keeps_its_recorded_klines_and_the_made_up_past_before_them() -> None:
    klines = KlineHistory(CAPTURE)
    recorded = klines.recorded[("NKNUSDT", "1m")]
    first = min(recorded)
    page = klines.page({"symbol": "NKNUSDT", "interval": "1m", "startTime": str(first - MINUTE)})
    assert [row[0] for row in page] == [first - MINUTE, *sorted(recorded)]
    assert page[1:] == [recorded[t] for t in sorted(recorded)]
