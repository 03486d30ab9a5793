"""Kraken's GET /0/public/OHLC on the replay stand-in (trademesh/venues/kraken/standin/history.py), on the
recorded session of 2021 (fixtures/exchange-captures/KRAKEN.*): the format, `since` (excluded),
the 720 most recent candles, the current candle always there, `last`, and the refusals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.replay import capture_files
from trademesh.venues.replay.adapter import ReplayAdapter, RestRequest
from trademesh.venues.replay.loader import load_adapter

MINUTE_S = 60
CURRENT = 1618678140  # the session runs 16:48:52 to 16:49:23 UTC
D = Decimal


@pytest.fixture(scope="module")
def adapter() -> ReplayAdapter:
    return load_adapter("trademesh.venues.kraken.standin", capture_files("KRAKEN"))


def ohlc(adapter: ReplayAdapter, **query: str) -> dict[str, Any]:
    answer = adapter.rest(
        RestRequest("GET", "api.kraken.com/0/public/OHLC", {"pair": "XXMRZUSD", **query}, "")
    )
    assert answer.status == 200  # Kraken answers its refusals with HTTP 200 too
    body: dict[str, Any] = json.loads(answer.body)
    return body


def rows(body: dict[str, Any], key: str = "XXMRZUSD") -> list[list[Any]]:
    assert body["error"] == [], body
    found: list[list[Any]] = body["result"][key]
    return found


def captured_trades(pair: str) -> list[list[str]]:
    """The v1 trade frames' trades of a pair ([price, volume, time, side, type, misc])."""
    found: list[list[str]] = []
    for path in capture_files("KRAKEN"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.endswith(f'"trade","{pair}"]'):
                found += json.loads(line.split(": ", 1)[1])[1]
    return found


def test_the_answer_is_krakens_oldest_first_and_the_720_most_recent(adapter: ReplayAdapter) -> None:
    body = ohlc(adapter)
    assert set(body["result"]) == {"XXMRZUSD", "last"}
    found = rows(body)
    assert len(found) == 720 and found[-1][0] == CURRENT
    assert [row[0] for row in found] == list(range(CURRENT - 719 * MINUTE_S, CURRENT + 1, MINUTE_S))
    assert body["result"]["last"] == CURRENT - MINUTE_S, "the newest committed candle"
    for time, *prices, volume, count in found:
        assert isinstance(time, int) and isinstance(count, int)
        o, h, low, c, vwap = map(D, prices)
        assert all(len(p.split(".")[1]) == 2 for p in prices), "XMR/USD's pair_decimals"
        assert low <= min(o, c) <= max(o, c) <= h and (vwap == 0) == (D(volume) == 0)
        assert len(volume.split(".")[1]) == 8


def test_the_session_candle_is_its_trades(adapter: ReplayAdapter) -> None:
    trades = [t for t in captured_trades("XMR/USD") if int(D(t[2])) // MINUTE_S * MINUTE_S == CURRENT]
    assert trades, "the capture's XMR/USD trades fall in the current minute"
    row = rows(ohlc(adapter))[-1]
    prices, volume = [D(t[0]) for t in trades], sum((D(t[1]) for t in trades), D(0))
    vwap = sum((D(t[0]) * D(t[1]) for t in trades), D(0)) / volume
    assert row[1:5] == [f"{p:.2f}" for p in (prices[0], max(prices), min(prices), prices[-1])]
    assert (D(row[5]), D(row[6]), row[7]) == (vwap.quantize(D("0.01")), volume, len(trades))


def test_ccxts_first_page_from_0_and_the_pages_after_it(adapter: ReplayAdapter) -> None:
    # ccxt asks since - one interval: -60 for a since of 0. Older than 720 candles cannot be had.
    first = rows(ohlc(adapter, since="-60"))
    assert len(first) == 720
    # ccxt's next `since`: a candle's own time (one interval before the next), excluded.
    middle = rows(ohlc(adapter, since=str(first[99][0])))
    assert middle == first[100:]


def test_the_current_candle_is_always_there(adapter: ReplayAdapter) -> None:
    body = ohlc(adapter, since=str(CURRENT - MINUTE_S))
    assert [row[0] for row in rows(body)] == [CURRENT]
    assert [row[0] for row in rows(ohlc(adapter, since=str(CURRENT + 10 * MINUTE_S)))] == [CURRENT]


def test_a_quiet_minute_is_flat_with_no_volume(adapter: ReplayAdapter) -> None:
    # XBT/CHF never traded in the session: its minutes are the made-up past, then flat ones.
    current = rows(ohlc(adapter, pair="XBTCHF"), "XBTCHF")[-1]
    assert current[0] == CURRENT and len(set(current[1:5])) == 1 and current[5:] == ["0.0", "0.00000000", 0]


def test_the_pair_may_be_named_by_its_key_altname_or_wsname(adapter: ReplayAdapter) -> None:
    by_key = ohlc(adapter, pair="XXMRZUSD")
    assert ohlc(adapter, pair="XMRUSD") == by_key == ohlc(adapter, pair="XMR/USD")


def test_larger_intervals_are_epoch_aligned(adapter: ReplayAdapter) -> None:
    for minutes in (5, 60, 1440, 10080):
        newest = rows(ohlc(adapter, interval=str(minutes)))[-1][0]
        assert newest == CURRENT // (minutes * MINUTE_S) * (minutes * MINUTE_S)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"pair": "DOGEUSD"}, "EQuery:Unknown asset pair"),
        ({"pair": ""}, "EQuery:Unknown asset pair"),
        ({"interval": "2"}, "EGeneral:Invalid arguments"),
        ({"interval": "hour"}, "EGeneral:Invalid arguments"),
        ({"since": "yesterday"}, "EGeneral:Invalid arguments"),
    ],
)
def test_a_bad_query_is_refused_with_krakens_error(
    adapter: ReplayAdapter, query: dict[str, str], error: str
) -> None:
    assert ohlc(adapter, **query) == {"error": [error]}
